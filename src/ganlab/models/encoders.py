"""Encoders that read a latent code off a (condition, example) pair, for BicycleGAN-style
training (Zhu et al. 2017): the network learns which part of the example is the random outcome.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from torch import nn

from ..errors import ConfigError


class PairEncoder(nn.Module):
    """Logits over ``codes`` from a paired condition and example stacked as channels
    (N, C, H, W): a residual CNN of ``depth`` 3x3 conv pairs, then max- and mean-pooled features
    through a two-layer MLP. Pooling over the whole map makes it size-agnostic; the example is
    concatenated after the condition, so the change between them is one conv away."""

    def __init__(self, in_channels: int, codes: int, width: int = 32, depth: int = 2):
        super().__init__()
        if in_channels < 1 or codes < 2 or width < 1 or depth < 1:
            raise ValueError(f"in_channels >= 1, codes >= 2, width >= 1 and depth >= 1; got "
                             f"{in_channels}, {codes}, {width}, {depth}")
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(width, width, 3, padding=1)) for _ in range(depth))
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, codes))

    def forward(self, cond: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
        h = self.stem(torch.cat([cond, example], 1))
        for block in self.blocks:
            h = h + block(h)
        h = torch.relu(h)
        return self.head(torch.cat([h.amax((2, 3)), h.mean((2, 3))], 1))


class ResidualClusters(nn.Module):
    """A learnt reader of a pair's random outcome without a network to train against G: what a
    *predictor* of the example from its condition (a network trained on the pairs alone, by the
    caller) gets wrong is the part of the example that the condition does not determine; pairs
    whose residual ``example - predictor(condition)`` exceeds ``threshold`` (L1 over the
    example, so 2.0 is one one-hot cell wholly wrong) have a random outcome, and k-means
    (Lloyd 1982, k-means++ seeding: Arthur and Vassilvitskii 2007) over their residuals gives
    ``codes`` clusters. Outcomes that the data tell apart are far apart in residual space, so
    the clusters are the outcomes, found from the recordings alone (for Tetris: which piece
    spawned, with nothing of the pieces known). ``forward`` gives each pair its cluster, -1
    for a pair with a determined outcome, or for every pair before :meth:`fit`.

    With more codes than outcomes, k-means spends the spare clusters on what is left: the few
    determined pairs the predictor still gets wrong (small, scattered clusters) or two halves
    of one outcome. So a cluster is an *outcome* only if it holds at least ``min_share`` of
    the largest cluster's pairs and its pairs share their change: an outcome is the same change
    on every board it happens on, so the L1 norm of the cluster's mean residual is at least
    ``coherence`` of its pairs' mean L1 residual (0.994-0.999 for each piece of the Tetris
    games measured), while the errors of a predictor that has not learnt some determined pairs
    lie in different cells on different boards (0.77-0.80 for the falls P got wrong in the
    tromino and pentomino games, as many pairs as a piece's spawns). The rest are pairs with a
    determined outcome (``forward`` gives them -1), and outcomes whose centroids differ by less
    than half a cell everywhere (L-infinity < 0.5) are one. :attr:`prior` is each cluster's
    probability: ``"outcomes"`` gives every outcome the same share (split over its clusters by
    their sizes), ``"shares"`` is each outcome cluster's share of the random pairs.

    ``clusters`` > ``codes`` runs k-means with that many clusters and gives each outcome one
    code (the largest outcomes first, each centroid the mean residual of its clusters' pairs);
    the clusters that hold no outcome stay as centroids after the codes, and a pair nearest
    one of them reads as determined. With exactly as many clusters as codes, a predictor
    that still gets some determined pairs wrong can leave one cluster too few for the
    outcomes, and k-means then puts an outcome's pairs in with those errors, where the
    incoherent mixture is no outcome and the outcome is lost (seen on 20,000 Tetris pairs:
    J spawns and about 220 falls in one cluster, coherence 0.64, and J never drawn); spare
    clusters take the errors apart from the outcomes.

    :meth:`with_outcome` writes a chosen outcome into a pair: the same condition's example with
    cluster j's outcome where it had cluster k's."""

    PRIORS = ("outcomes", "shares")

    def resize_like(self, state: dict) -> None:
        """Size the fitted buffers as ``state`` has them, before ``load_state_dict``."""
        for name in ("centroids", "prior", "share"):
            setattr(self, name, state[name].clone())

    def __init__(self, predictor: nn.Module, codes: int, threshold: float = 2.0,
                 prior: str = "outcomes", min_share: float = 0.25, coherence: float = 0.9,
                 clusters: Optional[int] = None):
        super().__init__()
        clusters = codes if clusters is None else clusters
        if codes < 2 or threshold <= 0 or prior not in self.PRIORS or not 0 <= min_share <= 1 \
                or not 0 <= coherence <= 1 or clusters < codes:
            raise ValueError(f"codes >= 2, threshold > 0, prior one of {self.PRIORS}, "
                             f"0 <= min_share <= 1, 0 <= coherence <= 1 and clusters >= codes; "
                             f"got {codes}, {threshold}, {prior!r}, {min_share}, {coherence}, "
                             f"{clusters}")
        self.predictor, self.codes, self.threshold = predictor, int(codes), float(threshold)
        self.clusters = int(clusters)
        self.prior_kind, self.min_share = prior, float(min_share)
        self.coherence = float(coherence)
        self.precision = None  # wraps the predictor's forward (mixed precision), or None
        self.register_buffer("centroids", torch.zeros(0))
        self.register_buffer("prior", torch.zeros(0))
        self.register_buffer("share", torch.zeros(0))

    @property
    def fitted(self) -> bool:
        return self.centroids.numel() > 0

    def run(self, cond: torch.Tensor) -> torch.Tensor:
        """The predictor's example for each condition (fed the zero code), with its graph: the
        forward that trains it. ``precision``, where set, wraps the forward (the run's mixed
        precision)."""
        z = torch.zeros(len(cond), self.codes, device=cond.device, dtype=cond.dtype)
        forward = self.predictor if self.precision is None else self.precision(self.predictor)
        return forward(z, cond)

    @torch.no_grad()
    def predict(self, cond: torch.Tensor) -> torch.Tensor:
        """The predictor's example for each condition (fed the zero code)."""
        return self.run(cond)

    @torch.no_grad()
    def residual(self, cond: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
        return (example - self.predict(cond)).flatten(1)

    def deltas(self, shape: tuple) -> torch.Tensor:
        """Each cluster's outcome as a change to a one-hot example of ``shape`` (C, H, W) whose
        channel 0 is the empty cell (the Tetris encoding): (codes, C, H, W), +1 in the channel a
        cell takes, -1 in channel 0, 0 where the outcome leaves the cell alone. A centroid is
        that change less the predictor's mean hedge (the probability it spreads over outcomes
        it cannot tell apart), the same in every cluster; where some outcome leaves a cell
        alone, its centroid there is minus the hedge, which is the largest entry of channel 0
        and the smallest of the others among the outcome clusters. So the change is the
        centroid plus the hedge estimated so. (A cell that every outcome changes has no such
        witness; a spawn region never has one.)"""
        c = self.centroids[:len(self.prior)].view((len(self.prior),) + tuple(shape))
        kept = c[self.prior > 0]
        hedge = -kept.min(0).values
        hedge[0] = -kept[:, 0].max(0).values
        return c + hedge

    @torch.no_grad()
    def with_outcome(self, example: torch.Tensor, was: torch.Tensor, new: torch.Tensor,
                     transform=None, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One-hot examples with cluster ``new``'s outcome in place of cluster ``was``'s, on the
        example's board put through ``transform`` (``transform(v, board)`` of (N, C, H, W)
        tensors, such as a mirror; ``board`` says whether ``v`` is a board, whose cells moved in
        from off the board are empty, or a change, whose are 0; the identity when None):
        ``T(example) - T(delta[was]) + delta[new]``
        (:meth:`deltas`), rounded to the nearest one-hot per cell (argmax over channels). The
        outcome stays where the game puts it while the rest of the board is transformed; for a
        spawn, the piece is swapped and the board kept.

        ``cond``: the pairs' conditions, already put through the transform, where they are
        boards like the examples. An outcome sets cells to its kinds; a cell the condition
        already held in that kind was not changed by it, so the undoing of ``was`` leaves it
        as it is (a Tetris piece that spawned over a locked cell in row 1 covers it: taking
        the piece away must not empty the locked cell)."""
        d = self.deltas(tuple(example.shape[1:])).to(example.dtype)
        t = transform or (lambda v, board: v)
        undo = t(d[was], False)
        if cond is not None:
            kind = undo.argmax(1, keepdim=True)
            held = (cond.argmax(1, keepdim=True) == kind) & (undo.amax(1, keepdim=True) > 0.5)
            undo = undo * ~held
        soft = t(example, True) - undo + d[new]
        return torch.zeros_like(soft).scatter_(1, soft.argmax(1, keepdim=True), 1.0)

    @torch.no_grad()
    def residuals(self, cond: torch.Tensor, example: torch.Tensor,
                  chunk: int = 512) -> torch.Tensor:
        """:meth:`residual` of many pairs, ``chunk`` at a time."""
        return torch.cat([self.residual(cond[i:i + chunk], example[i:i + chunk])
                          for i in range(0, len(cond), chunk)])

    def unpredictable(self, cond: torch.Tensor, example: torch.Tensor) -> int:
        """How many of these pairs the predictor cannot predict (residual over ``threshold``):
        the pairs :meth:`fit` would cluster."""
        return self.count_unpredictable(self.residuals(cond, example))

    def count_unpredictable(self, res: torch.Tensor) -> int:
        """How many of these residuals (:meth:`residuals`) exceed ``threshold``."""
        return int(self._unpredictable(res).sum())

    def _unpredictable(self, res: torch.Tensor) -> torch.Tensor:
        """Which of these residuals (N, D) exceed ``threshold``: the random-outcome pairs."""
        return res.abs().sum(1) > self.threshold

    @torch.no_grad()
    def fit(self, cond: torch.Tensor, example: torch.Tensor, seed: int,
            restarts: int = 10, residuals: Optional[torch.Tensor] = None) -> dict:
        """Cluster the residuals of these pairs (the best of ``restarts`` k-means runs) and set
        :attr:`prior`; returns how many pairs were random, each cluster's share of them and
        the outcome (group of clusters) each cluster belongs to. ``residuals``: these pairs'
        :meth:`residuals`, where the caller has them already (P's forward is not repeated)."""
        res = self.residuals(cond, example) if residuals is None else residuals
        random = res[self._unpredictable(res)].double().cpu().numpy()
        if len(random) < self.clusters:
            raise ConfigError(f"only {len(random)} of {len(cond)} pairs have an outcome the "
                              f"predictor cannot tell (residual > {self.threshold}); "
                              f"{self.clusters} clusters need at least as many: record more "
                              "data or lower the threshold")
        rng = np.random.default_rng(seed)
        best = None
        for _ in range(restarts):
            with warnings.catch_warnings():  # fewer distinct outcomes than codes: an empty
                warnings.simplefilter("ignore")  # cluster, which the prior gives no weight
                centroids, labels = kmeans2(random, self.clusters, minit="++", seed=rng)
            cost = ((random - centroids[labels]) ** 2).sum()
            if best is None or cost < best[0]:
                best = (cost, centroids, labels)
        _, centroids, labels = best
        share = np.bincount(labels, minlength=self.clusters) / len(random)
        coherent = _coherence(random, labels, self.clusters)
        large = (share > 0) & (share >= self.min_share * share.max())
        kept = large & (coherent >= self.coherence)
        if not kept.any():  # every large cluster holds pairs whose changes disagree: P's errors
            raise ConfigError(
                f"the reader's fit found no outcome: none of the {self.clusters} clusters of the "
                f"{len(random)} pairs the predictor cannot tell is both coherent (coherence >= "
                f"{self.coherence}) and at least min_share ({self.min_share}) of the largest "
                f"(the largest holds {share.max():.0%} of the pairs, coherence "
                f"{coherent[share.argmax()]:.3f}; the best coherence of a cluster large "
                f"enough is {coherent[large].max():.3f}), so the predictor has not learnt the "
                "determined pairs yet: give it a longer warmup (or settle), or lower coherence")
        group = _groups(centroids, kept)
        outcomes = sorted(set(group[kept].tolist()))
        info = {"random": len(random), "pairs": len(cond), "share": share.round(4).tolist(),
                "coherence": coherent.round(4).tolist(),
                "outcome": [int(g) if k else -1 for g, k in zip(group, kept)],
                "outcomes": len(outcomes)}
        if self.clusters > self.codes:
            centroids, share, prior, info["code"] = self._one_code_per_outcome(
                random, labels, share, kept, group, outcomes)
            info["codes used"] = int((prior > 0).sum())
        else:
            prior = np.where(kept, share, 0.0)
            if self.prior_kind == "outcomes":  # every outcome alike, split over its clusters
                for g in outcomes:
                    members = (group == g) & kept
                    prior[members] = share[members] / share[members].sum() / len(outcomes)
        self.centroids = torch.as_tensor(centroids, dtype=res.dtype, device=res.device)
        self.prior = torch.as_tensor(prior / prior.sum(), dtype=res.dtype, device=res.device)
        self.share = torch.as_tensor(share, dtype=res.dtype, device=res.device)
        return info

    def _one_code_per_outcome(self, random: np.ndarray, labels: np.ndarray, share: np.ndarray,
                              kept: np.ndarray, group: np.ndarray, outcomes: list) -> tuple:
        """With more clusters than codes: each outcome (a group of kept clusters) becomes one
        code, the largest outcomes first, its centroid the mean residual of all its pairs;
        the other clusters (P's errors, and any outcome beyond the codes) stay as centroids
        after the codes, so that a pair near one of them reads as determined (-1). Returns
        (centroids, share per centroid, prior over the codes, each cluster's code or -1)."""
        order = sorted(outcomes, key=lambda g: -share[(group == g) & kept].sum())[:self.codes]
        code = np.full(len(share), -1)
        rows, shares = [], []
        for c, g in enumerate(order):
            members = np.nonzero((group == g) & kept)[0]
            code[members] = c
            rows.append(random[np.isin(labels, members)].mean(0))
            shares.append(share[members].sum())
        spare = self.codes - len(order)  # codes no outcome took: never read, never drawn
        rows += [np.zeros_like(random[0])] * spare
        shares += [0.0] * spare
        rest = np.nonzero((code < 0) & (share > 0))[0]
        centroids = np.stack(rows + [random[labels == j].mean(0) for j in rest])
        share_all = np.array(shares + [share[j] for j in rest])
        prior = share_all[:self.codes].copy()
        if self.prior_kind == "outcomes":
            prior = (prior > 0) / max(len(order), 1)
        return centroids, share_all, prior, code.tolist()

    @torch.no_grad()
    def links(self, cond: torch.Tensor, example: torch.Tensor,
              chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The transitions that the pairs leave out, found among the pairs themselves. Where a
        recording keeps every other transition of each game (the original Tetris layout: pairs
        (0,1), (2,3), ...), the example of one pair (board 1) is followed by the condition of
        another (board 2), and that transition is in no pair. For every example, the fitted
        reader proposes its successors: the predictor's argmax (a determined step) and the
        example with each outcome cluster's change (:meth:`deltas`); a proposal that is,
        cell for cell, the condition of some pair links the two. Only exact matches of
        recorded boards are taken, so a link is a transition that happened (or the same
        transition in another game). Returns ``(i, j, outcome)``: example i is followed by
        condition j, with the reader's reading of that new pair (-1 determined, else its
        cluster). Needs conditions shaped like the examples (boards)."""
        if not self.fitted:
            raise ValueError("links need the fitted reader (call fit first)")
        firsts = {}
        for j, board in enumerate(cond.argmax(1).to(torch.uint8).cpu().numpy()):
            firsts.setdefault(board.tobytes(), j)
        d = self.deltas(tuple(example.shape[1:])).to(example.dtype)
        kept = (self.prior > 0).nonzero().flatten().tolist()
        dev = example.device
        found_i, found_j, readings = [], [], []
        for s in range(0, len(example), chunk):
            ex = example[s:s + chunk]
            pred = self.predict(ex)
            proposals = [pred.argmax(1)] + [(ex + d[k]).argmax(1) for k in kept]
            proposals = [b.to(torch.uint8).cpu().numpy() for b in proposals]
            rows, succ = [], []
            for r in range(len(ex)):
                for boards in proposals:
                    j = firsts.get(boards[r].tobytes())
                    if j is not None:
                        rows.append(r)
                        succ.append(j)
                        break
            if rows:  # the new pairs' readings, from the same predictions
                rows_t = torch.as_tensor(rows, dtype=torch.long, device=dev)
                succ_t = torch.as_tensor(succ, dtype=torch.long, device=dev)
                readings.append(self.read((cond[succ_t] - pred[rows_t]).flatten(1)))
                found_i.append(rows_t + s)
                found_j.append(succ_t)
        if not found_i:
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            return empty, empty.clone(), empty.clone()
        return torch.cat(found_i), torch.cat(found_j), torch.cat(readings)

    @torch.no_grad()
    def forward(self, cond: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
        if not self.fitted:  # no reading before the fit: spare P's forward
            return torch.full((len(cond),), -1, dtype=torch.long, device=cond.device)
        return self.read(self.residual(cond, example))

    @torch.no_grad()
    def readings(self, cond: torch.Tensor, example: torch.Tensor, chunk: int = 512,
                 residuals: Optional[tuple] = None) -> torch.Tensor:
        """:meth:`forward` of many pairs, ``chunk`` at a time. ``residuals``: ``(rows, res)``,
        the :meth:`residuals` of some of the pairs already computed (P runs on the others)."""
        out = torch.full((len(cond),), -1, dtype=torch.long, device=cond.device)
        todo = torch.ones(len(cond), dtype=torch.bool, device=cond.device)
        if residuals is not None:
            rows, res = residuals
            out[rows] = torch.cat([self.read(res[i:i + chunk])
                                   for i in range(0, len(res), chunk)])
            todo[rows] = False
        rest = todo.nonzero().flatten()
        for i in range(0, len(rest), chunk):
            r = rest[i:i + chunk]
            out[r] = self(cond.index_select(0, r), example.index_select(0, r))
        return out

    def read(self, res: torch.Tensor) -> torch.Tensor:
        """Each residual's cluster, -1 for a determined one (after :meth:`fit`)."""
        dist = torch.cdist(res, self.centroids)  # an empty cluster's centroid is no one's
        code = dist.masked_fill(self.share <= 0, float("inf")).argmin(1)
        codes = len(self.prior)  # centroids after the codes: P's errors (``clusters``)
        outcome = (code < codes) & (self.prior[code.clamp_max(codes - 1)] > 0)
        random = self._unpredictable(res) & outcome
        return torch.where(random, code, torch.full_like(code, -1))


def _coherence(res: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per cluster, the L1 norm of its mean residual over its pairs' mean L1 residual: 1 when
    every pair changes the same cells alike, less the more their changes differ (0 for an
    empty cluster)."""
    out = np.zeros(k)
    for j in range(k):
        r = res[labels == j]
        if len(r):
            out[j] = np.abs(r.mean(0)).sum() / max(np.abs(r).sum(1).mean(), 1e-12)
    return out


def _groups(centroids: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Each cluster's outcome: kept clusters joined (transitively) where their centroids differ
    by less than half a cell everywhere; any other cluster is a group of its own."""
    k = len(centroids)
    group = np.arange(k)
    for i in range(k):
        for j in range(i + 1, k):
            if kept[i] and kept[j] and np.abs(centroids[i] - centroids[j]).max() < 0.5:
                group[group == group[j]] = group[i]
    return group
