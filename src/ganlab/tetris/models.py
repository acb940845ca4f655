"""The Tetris emulator's networks, from the original experiments.

ganlab's calling convention: ``G(z, x)`` predicts board t+1 from noise ``z`` and the one-hot
board t ``x`` (N, 2, 22, 10); ``D(y, x)`` scores a (board t, board t+1) pair. Internally the
originals' order is kept (noise broadcast after the board; D sees ``cat(x, y)``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..models import MODELS
from ..models.layers import Scores


def _cbr(c_in, c_out, k=3, pad=1):
    return [nn.Conv2d(c_in, c_out, k, padding=pad, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


@MODELS.register("tetris-g")
class TetrisGenerator(nn.Module):
    """The original generator: a local block (two 3x3 conv+BN+ReLU on the board with the noise
    broadcast to every cell), a global block (conv, pool, conv, pool, linear to 10, ReLU)
    broadcast back to every cell, and a head (three conv+BN+ReLU, 1x1 conv to 2 channels,
    softmax). ``global_relu: false`` drops the ReLU after the global linear layer, as in the
    first experiments. ``rows``/``cols``: the board (22 x 10; the data decides them)."""

    def __init__(self, latent_dim: int = 4, width: int = 16, global_features: int = 10,
                 global_relu: bool = True, rows: int = 22, cols: int = 10):
        super().__init__()
        if rows < 4 or cols < 4:
            raise ValueError(f"boards of {rows} x {cols} are too small (at least 4 x 4)")
        w = width
        self.loc = nn.Sequential(*_cbr(2 + latent_dim, w), *_cbr(w, w))
        self.glob = nn.Sequential(*_cbr(w, w), nn.MaxPool2d(2), *_cbr(w, w), nn.MaxPool2d(2),
                                  nn.Flatten(),
                                  nn.Linear(w * (rows // 4) * (cols // 4), global_features),
                                  *([nn.ReLU()] if global_relu else []))
        self.head = nn.Sequential(*_cbr(w + global_features, w), *_cbr(w, w), *_cbr(w, w),
                                  nn.Conv2d(w, 2, 1), nn.Softmax(dim=1))

    def forward(self, z, x):
        n, _, h, w = x.shape
        zz = z.reshape(n, -1, 1, 1).expand(-1, -1, h, w)
        loc = self.loc(torch.cat([x, zz.to(x.dtype)], 1))
        g = self.glob(loc)[:, :, None, None].expand(-1, -1, h, w)
        return self.head(torch.cat([loc, g], 1))


class _PairD(nn.Module):
    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body

    def forward(self, y, x):
        return self.body(torch.cat([x, y], 1))


@MODELS.register("tetris-d")
class TetrisDiscriminator(_PairD):
    """conv, pool, conv+BN, pool, linear 16, linear 1 (the original; 160 features on 22 x 10,
    sized to the board otherwise)."""

    def __init__(self, rows: int = 22, cols: int = 10):
        if rows < 4 or cols < 4:
            raise ValueError(f"boards of {rows} x {cols} are too small for this discriminator "
                             "(at least 4 x 4)")
        super().__init__(nn.Sequential(
            nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            *_cbr(16, 16), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * (rows // 4) * (cols // 4), 16), nn.ReLU(), nn.Linear(16, 1), Scores()))


def _conv(c_in: int, c_out: int, pad: int, batchnorm: bool) -> list:
    if batchnorm:
        return [nn.Conv2d(c_in, c_out, 3, padding=pad, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU()]
    return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]


def _more_conv_body(pads: tuple, batchnorm: bool, in_channels: int = 4, rows: int = 22,
                    cols: int = 10) -> nn.Sequential:
    """conv, pool, then a 3x3 conv per entry of ``pads``; on 22 x 10 boards the 11x5 maps end
    as 7x1 (112 features); other board sizes size the linear layer to match."""
    h, w = rows // 2, cols // 2
    for pad in pads:
        h, w = h - 2 + 2 * pad, w - 2 + 2 * pad
    if h < 1 or w < 1:
        least = 2 * (1 + 2 * sum(1 for pad in pads if pad == 0))
        raise ValueError(f"boards of {rows} x {cols} are too small for this discriminator "
                         f"(at least {least} x {least})")
    convs = [m for pad in pads for m in _conv(16, 16, pad, batchnorm)]
    return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         *convs, nn.Flatten(), nn.Linear(16 * h * w, 16), nn.ReLU(),
                         nn.Linear(16, 1), Scores())


@MODELS.register("tetris-d-more-conv")
class DiscWithMoreConv(_PairD):
    """conv, pool, two unpadded convs (with BN if ``batchnorm``), linear 16, linear 1."""

    def __init__(self, batchnorm: bool = False, rows: int = 22, cols: int = 10):
        super().__init__(_more_conv_body((0, 0), batchnorm, 4, rows, cols))


@MODELS.register("tetris-d-more-conv-pad")
class DiscWithMoreConvPad(_PairD):
    """conv, pool, a padded conv, two unpadded convs (BN optional), linear 16, linear 1.
    ``in_channels``: board t's and board t+1's channels together (4 for the classic boards);
    ``rows``/``cols``: the board (the data decides them)."""

    def __init__(self, batchnorm: bool = False, in_channels: int = 4, rows: int = 22,
                 cols: int = 10):
        super().__init__(_more_conv_body((1, 0, 0), batchnorm, in_channels, rows, cols))


def gravity_features(x: torch.Tensor) -> torch.Tensor:
    """Per cell, how many filled cells lie above it in its column (0, 1, 2 or more, one-hot)
    and its row and column as coordinates in [0, 1]: (N, 5, 22, 10) from one-hot boards
    (channel 0 empty, any number of filled kinds after it; further channels are ignored).

    In a falling-block game the falling piece is always the topmost in its columns (nothing can
    be above it: it came down from row 0 and never moves sideways), so "filled cells above"
    marks the piece's candidate cells; the coordinates locate the spawn cells, which no
    translation-invariant convolution can find on its own (CoordConv, Liu et al. 2018)."""
    filled = 1 - x[:, :1]  # every channel but "empty" (x[:, 0]) is a filled cell
    above = filled.cumsum(2) - filled
    n, _, h, w = x.shape
    rows = torch.linspace(0, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    cols = torch.linspace(0, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([(above == 0).to(x.dtype), (above == 1).to(x.dtype),
                      (above >= 2).to(x.dtype), rows, cols], 1)


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h):
        return torch.relu(h + self.conv2(torch.relu(self.conv1(h))))


@MODELS.register("tetris-emulator")
class TetrisEmulator(nn.Module):
    """ganlab's emulator generator: the original's local-global-head plan, made deep enough and
    told where it is.

    Input channels: board t (one-hot), the noise broadcast to every cell (with the
    ``categorical`` latent, a one-hot code: the emulator's choice of piece) and
    :func:`gravity_features`. A stem conv plus a learned per-cell position embedding (as in
    ViT; spawn cells are fixed places on the board), ``depth`` residual blocks of two 3x3 convs (a
    receptive field of the whole board height at depth 5), with a global block after every
    ``global_every`` blocks: max- and mean-pooled features through a linear layer, added back
    to every cell (whether a piece is falling anywhere decides whether one spawns). Head: a
    per-cell two-layer MLP (1x1 convs) on the features and the noise again, so the code acts
    directly at every cell, then a softmax over the ``cells`` channels (2, as the original; 8 for
    the interactive ruleset's colours). ``extra``: condition channels after board t (the
    interactive emulator's event, one constant plane per event). ``axial``: each global block
    also pools every column (over its rows) and every row (over its columns) and adds the mixed
    result back along it, axial attention's cheapest form (Ho et al. 2019), so one block sees a
    whole column (how far a piece can fall) and a whole row (whether it is full). No batch norm:
    a prediction for one board must not depend on the rest of the batch.

    ``copy_init``: a learnt skip from board t to the output logits (``logits + c * board t``,
    ``c`` starting at ``copy_init``; None: no skip), the input-to-output skip of pix2pix's U-Net
    (Isola et al. 2017) in its simplest form. A tick changes at most 8 of 220 cells, so the
    network only has to learn the change; without the skip every locked cell must be carried
    through all the blocks, and a stray flip of one of them is an illegal board."""

    def __init__(self, latent_dim: int = 7, width: int = 32, depth: int = 5,
                 global_every: int = 2, rows: int = 22, cols: int = 10,
                 copy_init: Optional[float] = None, cells: int = 2, extra: int = 0,
                 axial: bool = False):
        super().__init__()
        if depth < 1 or width < 1 or global_every < 1 or cells < 2 or extra < 0:
            raise ValueError(f"depth, width and global_every must be >= 1, cells >= 2 and "
                             f"extra >= 0; got {depth}, {width}, {global_every}, {cells}, {extra}")
        self.cells = cells
        self.stem = nn.Conv2d(cells + extra + latent_dim + 5, width, 3, padding=1)
        self.pos = nn.Parameter(torch.zeros(1, width, rows, cols))
        self.blocks = nn.ModuleList(_Residual(width) for _ in range(depth))
        self.global_at = {i for i in range(depth) if (i + 1) % global_every == 0}
        self.globals = nn.ModuleDict({str(i): nn.Linear(2 * width, width) for i in self.global_at})
        self.axial = axial
        if axial:  # per column and per row: max- and mean-pooled features, mixed, added back
            self.cols_mix = nn.ModuleDict({str(i): nn.Conv2d(2 * width, width, 1)
                                           for i in self.global_at})
            self.rows_mix = nn.ModuleDict({str(i): nn.Conv2d(2 * width, width, 1)
                                           for i in self.global_at})
        self.head = nn.Sequential(nn.Conv2d(width + latent_dim, width, 1), nn.ReLU(),
                                  nn.Conv2d(width, cells, 1))
        self.copy = None if copy_init is None else nn.Parameter(torch.tensor(float(copy_init)))

    def forward(self, z, x):
        n, _, h, w = x.shape
        if (h, w) != tuple(self.pos.shape[2:]):
            raise ValueError(f"boards must be {tuple(self.pos.shape[2:])}, got {(h, w)}")
        zz = z.reshape(n, -1, 1, 1).to(x.dtype).expand(-1, -1, h, w)
        a = torch.relu(self.stem(torch.cat([x, zz, gravity_features(x)], 1)) + self.pos)
        for i, block in enumerate(self.blocks):
            a = block(a)
            if i in self.global_at:
                pooled = torch.cat([a.amax((2, 3)), a.mean((2, 3))], 1)
                g = self.globals[str(i)](pooled)[:, :, None, None]
                if self.axial:
                    cols = torch.cat([a.amax(2, True), a.mean(2, True)], 1)
                    rows = torch.cat([a.amax(3, True), a.mean(3, True)], 1)
                    g = g + self.cols_mix[str(i)](cols) + self.rows_mix[str(i)](rows)
                a = torch.relu(a + g)
        logits = self.head(torch.cat([a, zz], 1))
        if self.copy is not None:  # a skip from board t: keeping a cell as it is costs nothing
            logits = logits + self.copy * x[:, :self.cells]
        return torch.softmax(logits, 1)


@MODELS.register("tetris-play-original-g")
class PlayOriginalGenerator(nn.Module):
    """The original project's final interactive design: a board encoder (convolutions to a
    ``state``-d vector), an event embedding and the noise (4 uniform values) mixed into one
    ``state``-d vector, a two-layer dynamics MLP, and a transposed-convolution renderer to the 8
    cell kinds (softmax). Input: the conditions of ``tetris-play`` (8 board channels, then one
    plane per event)."""

    def __init__(self, latent_dim: int = 4, state: int = 256, cells: int = 8, events: int = 5,
                 rows: int = 22, cols: int = 10):
        super().__init__()
        self.cells, self.events, self.rows, self.cols = cells, events, rows, cols
        h, w = -(-rows // 4), -(-cols // 4)  # after two stride-2 convs
        self.encoder = nn.Sequential(
            nn.Conv2d(cells, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * h * w, state), nn.ReLU())
        self.event = nn.Linear(events, state)  # an embedding of the one-hot event
        self.noise = nn.Linear(latent_dim, state)
        self.mix = nn.Sequential(nn.Linear(3 * state, state), nn.ReLU())
        self.dynamics = nn.Sequential(nn.Linear(state, state), nn.ReLU(),
                                      nn.Linear(state, state), nn.ReLU())
        self.render = nn.Sequential(
            nn.Linear(state, 64 * h * w), nn.ReLU(), nn.Unflatten(1, (64, h, w)),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, cells, 3, padding=1))

    def forward(self, z, x):
        board, ev = x[:, :self.cells], x[:, self.cells:self.cells + self.events, 0, 0]
        s = torch.cat([self.encoder(board), self.event(ev), self.noise(z.to(x.dtype))], 1)
        s = self.dynamics(self.mix(s))
        logits = self.render(s)[:, :, :self.rows, :self.cols]
        return torch.softmax(logits, 1)
