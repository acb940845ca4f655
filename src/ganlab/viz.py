"""Pictures of a run: sample grids (Pillow), 2-D scatter plots and loss curves (matplotlib)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [-1, 1] into one uint8 ``(H', W', C)`` array (C = 1 or 3)."""
    if images.dim() != 4:
        raise ValueError(f"make_grid: expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    n, c, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), np.uint8)
    arr = x.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = arr[i]
    return grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
              scale: int = 2) -> np.ndarray:
    from PIL import Image
    grid = make_grid(images, nrow)
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return grid


def save_rgb(array: np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Save an (H, W, 3) or (H, W, 1) uint8 array as a PNG."""
    from PIL import Image
    img = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def save_scatter(points: torch.Tensor, path: str | Path, modes: torch.Tensor | None = None,
                 title: str = "") -> None:
    plt = _plt()
    p = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, label="generated")
    if modes is not None:
        m = modes.cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], s=30, marker="x", c="red", label="modes")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def save_loss_plot(history: dict, path: str | Path, smooth: int = 0) -> None:
    """Plot every per-iteration series in ``history`` (e.g. ``d_loss``, ``g_loss``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for name, values in history.items():
        v = np.asarray(values, dtype=np.float64)
        if len(v) == 0:
            continue
        k = smooth or max(1, len(v) // 200)
        if k > 1 and len(v) >= k:
            v = np.convolve(v, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(v)) + (k - 1 if k > 1 else 0), v, label=name, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def save_animation(frames: list, path: str | Path, scale: int = 3, ms: int = 80,
                   nrow: int | None = None) -> Path:
    """An animated GIF of image batches (each (N, C, H, W) in [-1, 1], tiled in a row)."""
    from PIL import Image
    imgs = []
    for batch in frames:
        grid = make_grid(batch, nrow=nrow or len(batch))
        im = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
        imgs.append(im.resize((im.width * scale, im.height * scale), Image.NEAREST))
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)
    return Path(path)
