"""The reconstruction term of paired games (pix2pix, BicycleGAN's conditional-VAE half, and the
multiple-choice form), for generators that predict an output from a paired input."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace
from typing import Optional

import torch
from torch import Tensor

from ..distributed import world
from ..hooks import Penalty, StepBatch, StepCallback, derived_seed
from ..models.encoders import PairEncoder, ResidualClusters
from ..registry import TRICKS


CODES = ("sampled", "all", "encoded", "learned", "clustered")


@TRICKS.register("reconstruction")
class Reconstruction(Penalty, StepCallback):
    """A reconstruction term for paired games (pix2pix, Isola et al. 2017), in its best-of-many
    form against blur and mode collapse (Bhattacharyya et al. 2018): G makes ``k`` predictions
    per condition and only the closest to the truth is penalised, so a deterministic target is
    learnt exactly while a random one (a spawned piece) leaves room for every outcome.
    ``loss``: ``ce`` (outputs are per-cell probabilities over channels, e.g. Tetris) or ``l1``.

    ``codes: all`` is the multiple-choice form (Guzman-Rivera et al. 2012) for a ``categorical``
    latent and a task that marks which pairs have a random outcome (``task.stochastic``, e.g.
    Tetris spawns): on those, G predicts under every code and only the closest prediction is
    penalised (each code learns one outcome); on the others the sampled code's prediction must
    be the truth (every code learns the deterministic rule). ``diversity`` > 0 adds a hinge that
    keeps the codes' predictions for a random-outcome pair at least ``margin`` apart (mean
    absolute difference summed over the example, so ``margin: 4`` is two one-hot cells), the
    diversity-sensitive term of Yang et al. 2019 / Mao et al. 2019: no two codes may settle on
    the same outcome, so a code that wins nothing is pushed to an outcome nobody covers.
    ``relax`` = epsilon gives the losing codes epsilon of the loss, the relaxed winner-takes-all
    of Rupprecht et al. 2017, so that no code goes unused ("dead") for lack of a gradient.

    ``codes: encoded`` is the conditional-VAE half of BicycleGAN (Zhu et al. 2017) with a fixed
    encoder: the task names the random outcome of each pair (``task.encode``: an outcome
    index per pair, -1 where the outcome is not random; for Tetris, which of the seven pieces
    spawned) and G must reproduce the truth from that outcome's code, while every sampled code
    must reproduce the deterministic pairs. Each code then means one outcome, so uniformly drawn
    codes give each outcome equally often; D still judges G's predictions under random codes.

    ``codes: learned`` is the same conditional-VAE half with the encoder learnt, as BicycleGAN
    has it: a :class:`~ganlab.models.encoders.PairEncoder` E reads logits over the latent's codes
    off (condition, truth); G must reproduce the truth from E's code (the argmax, one-hot, with
    the softmax's gradient passed straight through to E: Bengio et al. 2013), and ``kl`` weighs
    each example's KL(softmax(E) || uniform), the VAE's pull towards the prior: where the code
    does not matter (a deterministic pair) E's choice stays near uniform, so G sees every code
    there and learns to ignore it; where it does (a random outcome) the reconstruction makes E
    confident and distinct outcomes take distinct codes. Nothing of the data is told to it. E has
    its own Adam (``encoder_lr``), stepped after G's; ``encoder_width``/``encoder_depth`` size
    it.

    ``codes: clustered`` is ``codes: encoded`` with the reader learnt from the data instead of
    written by hand (:class:`~ganlab.models.encoders.ResidualClusters`): for the first
    ``warmup`` iterations a predictor P (a copy of G, fed no code, with its own Adam at
    ``encoder_lr``) learns each pair's truth from its condition by cross-entropy alone, while G
    is trained as under ``codes: sampled``. At the warm-up's end up to ``fit_pairs`` training
    pairs (a seeded draw) are read by P, and those it cannot predict (residual L1 over
    ``threshold``) are clustered by k-means on their residuals into ``latent.dim`` clusters.
    From then on P is frozen, each pair's cluster is its outcome and G reproduces the truth
    from that outcome's code, exactly as with the hand-written reader, and the categorical
    latent is drawn with a learnt prior: ``prior: outcomes`` gives each outcome the same
    weight (a cluster with under ``min_share`` of the largest one's pairs, or whose pairs'
    changes agree less than ``coherence`` (see ResidualClusters), holds falls P got wrong and
    is no outcome, clusters less than half a cell apart are one, and a code k-means
    left empty is never drawn), so ``latent.dim`` need only be at least the number of
    outcomes; ``prior: shares`` weighs each outcome cluster by its share of the random pairs;
    ``prior: uniform`` keeps the latent's own. ``clusters: m`` (> ``latent.dim``) clusters
    into m and gives each outcome one code (``ResidualClusters``' ``clusters``): the spare
    clusters take the determined pairs P still gets wrong apart from the outcomes. Since P
    is frozen, every training pair is read once at the fit (the fit pairs from the residuals just clustered, the rest by P) and a
    batch's outcomes are then a lookup by its rows (``StepBatch.index``), with no forward of
    P in the steps; the reconstruction under the outcome's code is kept for the pairs that
    G's fake under the sampled code got wrong: one it got right is trained right already. What
    the fit found (pairs read, random pairs,
    each cluster's share and outcome) is kept as ``fit_info`` and in the checkpoint. Nothing of
    the game is told to it: which pairs are random and what their outcomes are both come from
    what P could not learn. The fit is one process's: under torchrun each rank would find its
    own clusters, so ``codes: clustered`` refuses more than one rank.

    A fixed warm-up can end before P has learnt the determined pairs: those it still gets
    wrong join the clusters and take codes from the outcomes (seen on 2,000 Tetris pairs: after
    500 iterations one seed's P still got 80 falls wrong, and two pieces shared a code).
    ``settle: s`` (a share, 0 = off) ends it when P has settled instead: from ``warmup`` on,
    every ``settle_every`` iterations P's unpredictable fit pairs are counted, and the fit
    comes at the first count that changed by at most s since the last, down or up (or at
    ``warmup_max``): a count that rose means P got worse, a spike of its training, and a fit
    then takes P's new errors for outcomes (seen on 2,000 pairs: 207 then 271 unpredictable
    pairs, a fit of 4 outcomes for 7 pieces, and a collapsed run). The counts and the
    iteration of the fit are in ``fit_info``.

    Three augmentations of the reconstruction, from the fit on (``codes: clustered`` only): each
    adds, per batch, a reconstruction of an altered copy of the pairs they alter, averaged over
    the batch as the pairs' own term is. ``swap: true`` gives every random pair a second outcome
    drawn from the prior, written into its truth by
    :meth:`~ganlab.models.encoders.ResidualClusters.with_outcome` (truth - centroid of its
    cluster + centroid of the drawn one): G learns every outcome on every board that has one,
    not only the outcome recorded there, so a drawn code that was not the recorded one is drawn
    as well (with few recordings, 190 spawns on 2,000 Tetris pairs, each board is seen under
    one piece only). ``mirror: true`` mirrors half of the pairs left to right, for games whose
    rule is the same in the mirror apart from the random outcome (gravity is; a spawn's place
    and the pieces are not, and a condition holding directions, such as the interactive
    Tetris's left and right events, is not either): a determined pair is mirrored whole, a
    random pair's board is mirrored and takes an unmirrored outcome drawn from the prior
    (``with_outcome`` with the mirror as its transform), so the game's own outcomes are kept.
    ``shift: s`` moves each pair's boards by up to s columns left or right (uniformly over the
    moves that push only wholly empty columns off either board), for games whose rule does not
    depend on where along a row things are apart from the random outcome, which again stays
    where it was. All three read channel 0 of the one-hot boards as the empty cell (the Tetris
    encoding); mirror and shift need conditions shaped like the examples (board t and board
    t+1 alike). Each costs G a forward and backward pass over the pairs it alters.

    ``link: m`` (``codes: clustered`` only) trains G on transitions that the recording left
    out. A recording in the original layout keeps pairs (0,1), (2,3), ... of each game, so
    the transition from board 1 to board 2 is in no pair, and some boards never appear as a
    board t at all: in classic Tetris the first piece of every game locks on an odd frame (a
    two-row piece lands 20 ticks after its spawn on frame 1), so the board with one piece
    locked on the floor, which every game passes through, is never a board t there. At the
    fit, :meth:`~ganlab.models.encoders.ResidualClusters.links` links each pair's board t+1
    to a pair whose board t is its successor as the fitted reader proposes it (exact matches
    of recorded boards only), and from then on every G step also reconstructs ``m`` linked
    pairs drawn uniformly, each under its reading (its outcome's code, or a sampled code for
    a determined one), with swap, mirror and shift applied to them as to the batch; each
    linked pair weighs as much as one pair of the batch. ``link_random: true`` keeps only the
    links whose new pair has a random outcome (in Tetris, the spawns): the determined ones
    are steps the batch already teaches (a piece falling one row; every fall board the
    layout leaves out as a board t is one later pieces pass through), while a board that no
    game records as a board t, such as the first piece locked on the floor, is followed by a
    random outcome that only a link shows. On 20,000 Tetris pairs about 1,700 of 19,600 links
    are random. How many links were found is in ``fit_info``; the links are kept in the
    checkpoint."""

    name = "reconstruction"

    def __init__(self, weight: float = 1.0, k: int = 1, loss: str = "ce", codes: str = "sampled",
                 diversity: float = 0.0, margin: float = 4.0, relax: float = 0.0,
                 kl: float = 0.1, encoder_lr: float = 1e-3, encoder_width: int = 32,
                 encoder_depth: int = 2, warmup: int = 500, fit_pairs: int = 16384,
                 threshold: float = 2.0, prior: str = "outcomes", min_share: float = 0.25,
                 swap: bool = False, mirror: bool = False, shift: int = 0,
                 settle: float = 0.0, settle_every: int = 250, warmup_max: int = 5000,
                 coherence: float = 0.9, link: int = 0, link_random: bool = False,
                 clusters: int = 0):
        if k < 1 or loss not in ("ce", "l1"):
            raise ValueError(f"k must be >= 1 and loss ce or l1; got {k}, {loss!r}")
        if codes not in CODES:
            raise ValueError(f"codes must be one of {', '.join(CODES)}; got {codes!r}")
        if warmup < 1 or fit_pairs < 1 or threshold <= 0 \
                or prior not in ResidualClusters.PRIORS + ("uniform",):
            raise ValueError(f"warmup >= 1, fit_pairs >= 1, threshold > 0 and prior one of "
                             f"{ResidualClusters.PRIORS + ('uniform',)}; got {warmup}, "
                             f"{fit_pairs}, {threshold}, {prior!r}")
        self.warmup, self.fit_pairs, self.threshold = int(warmup), int(fit_pairs), float(threshold)
        self.prior, self.min_share, self.coherence = prior, float(min_share), float(coherence)
        if (swap or mirror or shift) and codes != "clustered":
            raise ValueError("swap, mirror and shift write the clusters' outcomes into pairs: "
                             f"they need codes: clustered, got codes: {codes}")
        if shift < 0:
            raise ValueError(f"shift is a number of columns, >= 0; got {shift}")
        if link < 0 or (link and codes != "clustered"):
            raise ValueError(f"link is a number of linked pairs per batch (>= 0) and needs "
                             f"codes: clustered; got link: {link}, codes: {codes}")
        if link_random and not link:
            raise ValueError("link_random keeps only the random links of link: m; set link too")
        self.link, self.link_random = int(link), bool(link_random)
        if clusters < 0 or (clusters and codes != "clustered"):
            raise ValueError(f"clusters is the k-means clusters of codes: clustered (0: one per "
                             f"code); got clusters: {clusters}, codes: {codes}")
        self.clusters = int(clusters)
        self.links: tuple = ()  # (i, j, outcome) after the fit, with link on
        self.swap, self.mirror, self.shift = bool(swap), bool(mirror), int(shift)
        if settle and codes != "clustered":
            raise ValueError(f"settle ends codes: clustered's warm-up; got codes: {codes}")
        if not 0 <= settle < 1 or settle_every < 1 or (settle and warmup_max < warmup):
            raise ValueError(f"settle in [0, 1), settle_every >= 1 and warmup_max >= warmup; "
                             f"got {settle}, {settle_every}, {warmup_max} (warmup {warmup})")
        self.settle, self.settle_every = float(settle), int(settle_every)
        self.warmup_max = int(warmup_max)
        self.counts: list = []  # (iteration, P's unpredictable pairs) at each settle check
        self.readings: Optional[Tensor] = None  # after the fit: every training pair's outcome
        self._settled: Optional[tuple] = None  # (iteration, residuals) of the check that ended
        #                                        the warm-up, for the fit to reuse
        self.fit_info: dict = {}
        if kl < 0 or encoder_lr <= 0:
            raise ValueError(f"kl must be >= 0 and encoder_lr > 0; got {kl}, {encoder_lr}")
        self.kl, self.encoder_lr = float(kl), float(encoder_lr)
        self.encoder_width, self.encoder_depth = int(encoder_width), int(encoder_depth)
        self.encoder = None
        if codes != "sampled" and k != 1:
            raise ValueError(f"codes: {codes} chooses the codes itself; leave k at 1")
        if diversity < 0 or margin <= 0:
            raise ValueError(f"diversity must be >= 0 and margin > 0; got {diversity}, {margin}")
        if not 0 <= relax < 1:
            raise ValueError(f"relax must be in [0, 1), got {relax}")
        if (diversity or relax) and codes != "all":
            raise ValueError("diversity and relax need codes: all")
        self.weight, self.k, self.loss, self.codes = float(weight), int(k), loss, codes
        self.relax = float(relax)
        self.diversity, self.margin = float(diversity), float(margin)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if ctx.conditioning.kind != "paired":
            raise ValueError("needs a paired game (a dataset with conditions, e.g. tetris)")
        if self.codes != "sampled":
            if ctx.latent_dist != "categorical":
                raise ValueError(f"codes: {self.codes} needs latent.dist: categorical (one code "
                                 f"per outcome), got {ctx.latent_dist!r}")
            if self.codes == "learned":
                self._make_encoder(ctx)
                return
            if self.codes == "clustered":
                self._make_clusters(ctx)
                return
            key = "stochastic" if self.codes == "all" else "encode"
            if not callable(getattr(ctx.task, key, None)):
                raise ValueError(f"codes: {self.codes} needs a task that marks random-outcome "
                                 f"pairs (task.{key}); {ctx.data.name or 'this dataset'} "
                                 "does not (codes: clustered and learned need nothing from "
                                 "the task)")

    def _make_encoder(self, ctx) -> None:
        cond = ctx.conditioning.values
        channels = cond.shape[1] + ctx.examples.shape[1]
        with torch.random.fork_rng(devices=[]):  # its own init from the run's seed, leaving
            torch.manual_seed(derived_seed(ctx.seed, self.key or self.name))  # the rest as is
            self.encoder = PairEncoder(channels, ctx.latent_dim, self.encoder_width,
                                       self.encoder_depth).to(ctx.device)
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=self.encoder_lr,
                                            betas=(0.5, 0.999))

    def _make_clusters(self, ctx) -> None:
        if world()[1] > 1:
            raise ValueError("codes: clustered fits its clusters in one process; under "
                             "torchrun each rank would find its own (train it on one rank)")
        # G's architecture, its own weights from here on, trained in G's formats
        predictor = ctx.in_training_format(copy.deepcopy(ctx.G))
        if not any(p.requires_grad for p in predictor.parameters()):
            raise ValueError("codes: clustered trains a copy of G as its predictor, and this G "
                             "has no trainable parameters")
        if self.clusters and self.clusters < ctx.latent_dim:
            raise ValueError(f"clusters ({self.clusters}) must be at least latent.dim "
                             f"({ctx.latent_dim}): each outcome takes a code")
        self.encoder = ResidualClusters(predictor, ctx.latent_dim, self.threshold,
                                        "shares" if self.prior == "shares" else "outcomes",
                                        self.min_share, self.coherence,
                                        self.clusters or None)
        self.encoder.precision = ctx.in_training_precision
        self.encoder_opt = torch.optim.Adam(predictor.parameters(), lr=self.encoder_lr)
        cond = ctx.conditioning.values
        if self.link and cond.shape[1:] != ctx.examples.shape[1:]:
            raise ValueError(f"link follows a pair's board t+1 to another pair's board t: it "
                             f"needs conditions shaped like the examples, got "
                             f"{tuple(cond.shape[1:])} and {tuple(ctx.examples.shape[1:])}")
        if (self.mirror or self.shift) and cond.shape[1:] != ctx.examples.shape[1:]:
            raise ValueError(f"mirror and shift move board t and board t+1 alike: they need "
                             f"conditions shaped like the examples, got {tuple(cond.shape[1:])} "
                             f"and {tuple(ctx.examples.shape[1:])} (a condition with more "
                             "than the board, such as an event, may not be mirrored)")
        self.aug_gen = torch.Generator(device=ctx.device).manual_seed(
            derived_seed(ctx.seed, (self.key or self.name) + "/augment"))

    def after_update(self, player: str) -> None:
        if self.encoder is not None and player == "g":
            if self.codes == "clustered" and self.encoder.fitted:
                return
            self.encoder_opt.step()
            self.encoder_opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        if self.encoder is None:
            return {}
        state = {"encoder": self.encoder.state_dict(),
                 "encoder_opt": self.encoder_opt.state_dict()}
        if self.codes == "clustered":
            state["fit_info"] = self.fit_info
            state["augment_rng"] = self.aug_gen.get_state()
            state["counts"] = [list(c) for c in self.counts]
            if self.links:
                state["links"] = [t.clone() for t in self.links]
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.encoder is not None and state:
            if self.codes == "clustered":  # the buffers' sizes say whether it was fitted
                self.encoder.resize_like(state["encoder"])
                self.fit_info = state.get("fit_info", {})
                if "augment_rng" in state:  # checkpoints from before swap and mirror lack it
                    self.aug_gen.set_state(state["augment_rng"])
                self.counts = [tuple(c) for c in state.get("counts", [])]
                self.links = tuple(t.to(self.ctx.device) for t in state.get("links", ()))
            self.encoder.load_state_dict(state["encoder"])
            if self.codes == "clustered" and self.encoder.fitted:
                self._freeze()
                self.readings = self._read_all()
            self.encoder_opt.load_state_dict(state["encoder_opt"])

    def _freeze(self) -> None:
        self.encoder.predictor.requires_grad_(False).eval()
        if self.prior != "uniform":
            self.ctx.set_latent_prior(self.encoder.prior.cpu())

    def _fit_rows(self) -> Tensor:
        """Which training pairs (up to ``fit_pairs``, a seeded draw) the settle checks and the
        fit read: the same at every check and at the fit."""
        ctx = self.ctx
        gen = torch.Generator().manual_seed(derived_seed(ctx.seed, (self.key or self.name)
                                                         + "/fit"))
        idx = torch.randperm(len(ctx.examples), generator=gen)[:self.fit_pairs]
        return idx.sort().values.to(ctx.device)

    def _fit_pairs(self) -> tuple[Tensor, Tensor]:
        """The fit pairs (:meth:`_fit_rows`): (conditions, examples)."""
        idx = self._fit_rows()
        return self.ctx.conditioning.of_rows(idx), self.ctx.examples.index_select(0, idx)

    def _read_all(self, res: Optional[Tensor] = None) -> Tensor:
        """Every training pair's outcome as the frozen reader reads it (``res``: the fit pairs'
        residuals, where known). P is frozen after the fit, so a pair's reading never changes:
        read once here, a batch's outcomes are a lookup by its rows, with no forward of P."""
        ctx, rows = self.ctx, self._fit_rows()
        if res is None:
            res = self.encoder.residuals(*self._fit_pairs())
        return self.encoder.readings(ctx.conditioning.values, ctx.examples,
                                     residuals=(rows, res))

    def _warm(self, iteration: int) -> bool:
        """Whether P's warm-up is over: at ``warmup`` without ``settle``; with it, from
        ``warmup`` on, every ``settle_every`` iterations P's unpredictable fit pairs are
        counted and the warm-up ends once the count changed by at most ``settle`` (a share)
        since the last count, either way, or at ``warmup_max``. What P still gets wrong of the
        determined pairs falls while it learns; what it cannot learn, the random outcomes,
        stays; a count that rose is P unsettled, not settled."""
        if iteration < self.warmup:
            return False
        if not self.settle or iteration >= self.warmup_max:
            return True
        if (iteration - self.warmup) % self.settle_every:
            return False
        res = self.encoder.residuals(*self._fit_pairs())
        count = self.encoder.count_unpredictable(res)
        last = self.counts[-1][1] if self.counts else None
        self.counts.append((iteration, count))
        settled = last is not None and abs(count - last) <= self.settle * last
        self._settled = (iteration, res) if settled else None  # P unchanged till the fit
        return settled

    def _fit(self, iteration: int) -> None:
        """Cluster the residuals of the fit pairs."""
        seed = derived_seed(self.ctx.seed, (self.key or self.name) + "/kmeans")
        res = self._settled[1] if self._settled and self._settled[0] == iteration else None
        self._settled = None
        pairs = self._fit_pairs()
        if res is None:
            res = self.encoder.residuals(*pairs)
        self.fit_info = self.encoder.fit(*pairs, seed=seed, residuals=res)
        self.readings = self._read_all(res)
        self.fit_info.update(warmup=iteration, counts=[list(c) for c in self.counts])
        self._freeze()
        if self.link:
            ctx = self.ctx
            self.links = self.encoder.links(ctx.conditioning.values, ctx.examples)
            self.fit_info["links"] = {"pairs": len(self.links[0]),
                                      "random": int((self.links[2] >= 0).sum())}
            if self.link_random:
                keep = self.links[2] >= 0
                self.links = tuple(t[keep] for t in self.links)
            self.fit_info["links"]["drawn from"] = len(self.links[0])

    def _clustered(self, per: Tensor, batch: StepBatch) -> tuple[Tensor, Optional[Tensor]]:
        """Before the warm-up's end: train P on this batch (its loss is returned added, with no
        path to G); at the end: fit the clusters; after: G's reconstruction under each random
        pair's cluster, as ``codes: encoded`` does with the task's reader, with the altered
        copies. Returns the per-pair losses and the linked pairs' term (None without)."""
        cond, real, enc = batch.fake_cond, batch.real, self.encoder
        if not enc.fitted and self._warm(batch.iteration):
            self._fit(batch.iteration)
        if not enc.fitted:
            p_loss = self._per_example(enc.run(cond.detach()), real).mean()
            return per + p_loss, None  # P's loss on every example; only P's weights see its
            # gradient
        altered = self.swap or self.mirror or self.shift
        moves = self._moves(batch.fake_cond, batch.real) if altered else None
        outcome, miss, _ = self._outcomes(batch, None if moves is None else moves[2])
        n = len(batch.real)
        parts = [self._encoded_part(batch, torch.where(miss, outcome, -1))]
        if altered:
            parts.append(self._augmented_part(batch, outcome, moves))
        linked = self._linked_parts()
        losses = self._reconstruct(parts + linked)
        per = per.index_put((parts[0][0],), losses[0])  # a random pair: under its outcome's code
        for (idx, *_), loss in zip(parts[1:], losses[1:len(parts)]):
            per = per + per.new_zeros(n).index_put((idx,), loss)
        if not linked:
            return per, None
        lper = losses[len(parts)]  # the linked pairs, with their altered copies added per pair
        for (idx, *_), loss in zip(linked[1:], losses[len(parts) + 1:]):
            lper = lper + lper.new_zeros(len(lper)).index_put((idx,), loss)
        return per, self.weight * lper.sum() / n

    def _reconstruct(self, parts: list) -> list:
        """G's reconstruction losses of several parts, each ``(idx, codes, conditions,
        truths)``, in one forward over all of them (one pass costs less than several small
        ones): the per-example losses of each part, in order."""
        sizes = [len(p[1]) for p in parts]
        if not sum(sizes):
            return [parts[0][1].new_zeros(0) for _ in parts]
        codes, cond, real = (torch.cat([p[i] for p in parts]) for i in (1, 2, 3))
        return list(self._per_example(self.ctx.generate(codes, cond), real).split(sizes))

    def _moves(self, cond: Tensor, real: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Each pair's ``mirror`` and ``shift`` draw: (flip, shift in columns, moved)."""
        gen, n, dev = self.aug_gen, len(real), real.device
        flip = (torch.rand(n, generator=gen, device=dev) < 0.5) if self.mirror \
            else torch.zeros(n, dtype=torch.bool, device=dev)
        shift = torch.zeros(n, dtype=torch.long, device=dev)
        if self.shift:  # only over columns that are empty on both boards
            empty = (cond[:, 0] * real[:, 0]).amin(1) >= 1  # (N, W): a wholly empty column
            left = empty.long().cumprod(1).sum(1)
            right = empty.flip(1).long().cumprod(1).sum(1)
            left, right = torch.where(flip, right, left), torch.where(flip, left, right)
            lo, hi = left.clamp_max(self.shift), right.clamp_max(self.shift)
            u = torch.rand(n, generator=gen, device=dev)
            shift = (u * (lo + hi + 1)).floor().long().clamp_max(lo + hi) - lo
        return flip, shift, flip | (shift != 0)

    def _augmented_part(self, batch, outcome: Tensor, moves: Optional[tuple] = None) -> tuple:
        """The ``swap``/``mirror``/``shift`` copies of the pairs they alter, as a part for
        :meth:`_reconstruct` (see the class docstring): (which pairs, codes, conditions,
        truths). ``outcome`` must hold the reading of every pair that ``moves`` moves
        (:meth:`_outcomes` with ``also``): G may have drawn a random pair right, and moved
        whole, its outcome would move off the place the game puts it (an unread pair is -1 and
        keeps its outcome). ``moves``: :meth:`_moves`' draw, made here when None (then every
        pair must be read)."""
        ctx, enc, gen = self.ctx, self.encoder, self.aug_gen
        cond, real = batch.fake_cond, batch.real
        n, dev = len(real), real.device
        flip, shift, moved = moves if moves is not None else self._moves(cond, real)
        drawn = torch.multinomial(enc.prior.to(dev), n, replacement=True, generator=gen)
        draw = (outcome >= 0) & (moved | self.swap)  # a moved random pair takes one too
        new = torch.where(draw, drawn, outcome)
        changed = moved | (new != outcome)
        idx = changed.nonzero().flatten()
        c, y, was, now, f, sh = (v[idx] for v in (cond, real, outcome, new, flip, shift))
        c = _move(c, f, sh, True)  # y is a copy (indexed), written in place below
        r = now >= 0
        if (~r).any():  # a determined pair: both boards moved alike
            y[~r] = _move(y[~r], f[~r], sh[~r], True)
        if r.any():
            fr, sr = f[r], sh[r]
            y[r] = enc.with_outcome(y[r], was[r], now[r], lambda v, board: _move(v, fr, sr, board),
                                    cond=c[r])
        codes = ctx.sample_latent(len(idx), generator=gen).to(real.dtype)
        codes[r] = torch.nn.functional.one_hot(now[r], ctx.latent_dim).to(real.dtype)
        return idx, codes, c, y

    def _linked_parts(self) -> list:
        """``link`` linked pairs drawn uniformly (class docstring) as a part for
        :meth:`_reconstruct`, then their altered copies as another (with the batch's
        augmentations); none before the fit or without links."""
        if not self.link or not self.links or len(self.links[0]) == 0:
            return []
        ctx, gen = self.ctx, self.aug_gen
        i, j, outcome = self.links
        pick = torch.randint(len(i), (self.link,), generator=gen, device=i.device)
        cond = ctx.examples.index_select(0, i[pick])
        real = ctx.conditioning.of_rows(j[pick])
        outcome = outcome[pick]
        codes = ctx.sample_latent(self.link, generator=gen).to(real.dtype)
        r = outcome >= 0
        codes[r] = torch.nn.functional.one_hot(outcome[r], ctx.latent_dim).to(real.dtype)
        parts = [(torch.arange(self.link, device=real.device), codes, cond, real)]
        if self.swap or self.mirror or self.shift:
            pairs = SimpleNamespace(fake_cond=cond, real=real)
            parts.append(self._augmented_part(pairs, outcome))
        return parts

    def _outcomes(self, batch: StepBatch,
                  also: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        """Each pair's cluster (-1: determined or unread), which pairs G's fake got wrong and
        which pairs were read. A pair whose truth G's fake under the sampled code already is,
        cell for cell, needs no reconstruction under its outcome's code: that is already the
        right one (a determined pair, or a random one G drew right); the augmentations need the
        pairs they move (``also``) read too; the others stay -1, unread (a random pair G drew
        right and no augmentation moves is not swapped either). After the fit the readings
        are a lookup by the batch's rows (:meth:`_read_all`); without rows (a batch built by
        hand) P reads the missed and ``also`` pairs in one forward."""
        cond, real = batch.fake_cond, batch.real
        every = torch.ones(len(real), dtype=torch.bool, device=real.device)
        if self.loss != "ce":  # cells are not one-hot: no cell-for-cell reading of G's fake
            miss = every
        else:
            miss = (batch.fake.detach().argmax(1) != real.argmax(1)).flatten(1).any(1)
        read = miss if also is None else miss | also
        if self.readings is not None and batch.index is not None:  # read once, at the fit
            outcome = self.readings.index_select(0, batch.index)
            return torch.where(read, outcome, torch.full_like(outcome, -1)), miss, read
        if self.loss != "ce":
            return self.encoder(cond, real), every, every
        outcome = torch.full((len(real),), -1, dtype=torch.long, device=real.device)
        idx = read.nonzero().flatten()
        if idx.numel():
            outcome[idx] = self.encoder(cond[idx], real[idx])
        return outcome, miss, read

    def _learned(self, batch: StepBatch) -> Tensor:
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        logits = self.encoder(cond, real)
        q = torch.softmax(logits, 1)
        hard = torch.nn.functional.one_hot(q.argmax(1), q.shape[1]).to(q.dtype)
        code = hard + q - q.detach()  # straight-through
        per = self._per_example(ctx.generate(code.to(real.dtype), cond), real)
        if self.kl:
            logq = torch.log_softmax(logits, 1)
            per = per + self.kl * ((q * logq).sum(1) + math.log(q.shape[1]))  # KL(q || U)
        return per

    def _per_example(self, pred: Tensor, real: Tensor) -> Tensor:
        if self.loss == "ce":
            # the smallest normal float, not a round 1e-7: below the clamp the log passes no
            # gradient, and a cell G is sure of wrongly (p < 1e-7) must still be pulled back
            tiny = torch.finfo(pred.dtype).tiny
            return -(real * pred.clamp_min(tiny).log()).sum(1).flatten(1).mean(1)
        return (pred - real).abs().flatten(1).mean(1)

    def g_penalty(self, batch: StepBatch) -> Tensor:
        ctx = self.ctx
        if self.codes == "learned":
            return self.weight * self._learned(batch).mean()
        losses = [self._per_example(batch.fake, batch.real)]
        for _ in range(self.k - 1):
            more = ctx.generate(ctx.noise(batch.real.shape[0]), batch.fake_cond)
            losses.append(self._per_example(more, batch.real))
        per = torch.stack(losses).min(0).values
        extra = None
        if self.codes == "all":
            per, extra = self._multiple_choice(per, batch)
        elif self.codes == "encoded":
            outcome = self.ctx.task.encode(batch.fake_cond, batch.real)
            part = self._encoded_part(batch, outcome)
            per = per.index_put((part[0],), self._reconstruct([part])[0])
        elif self.codes == "clustered":
            per, extra = self._clustered(per, batch)
        loss = self.weight * per.mean()
        return loss if extra is None else loss + extra

    def _encoded_part(self, batch: StepBatch, outcome: Tensor) -> tuple:
        """The random pairs (``outcome`` >= 0) under their outcomes' codes, as a part for
        :meth:`_reconstruct`: (which pairs, codes, conditions, truths)."""
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        if outcome.max() >= ctx.latent_dim:
            raise ValueError(f"the task names outcome {int(outcome.max())} but the latent has "
                             f"only {ctx.latent_dim} codes (latent.dim)")
        idx = (outcome >= 0).nonzero().flatten()
        codes = torch.nn.functional.one_hot(outcome[idx], ctx.latent_dim).to(real.dtype)
        return idx, codes, cond[idx], real[idx]

    def _multiple_choice(self, per: Tensor, batch: StepBatch):
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        idx = ctx.task.stochastic(cond, real).nonzero().flatten()
        if idx.numel() == 0:
            return per, None
        m, k = idx.numel(), ctx.latent_dim
        codes = torch.eye(k, device=real.device, dtype=real.dtype).repeat(m, 1)
        preds = ctx.generate(codes, cond[idx].repeat_interleave(k, 0))
        choice = self._per_example(preds, real[idx].repeat_interleave(k, 0)).view(m, k)
        best = choice.min(1).values
        if self.relax:
            best = (1 - self.relax) * best + self.relax * choice.mean(1)
        per = per.index_put((idx,), best)
        if not self.diversity:
            return per, None
        flat = preds.reshape(m, k, -1)
        dist = (flat[:, :, None] - flat[:, None]).abs().sum(-1)  # (m, k, k)
        off = ~torch.eye(k, dtype=torch.bool, device=dist.device)
        hinge = torch.relu(self.margin - dist[:, off]).mean()
        return per, self.diversity * hinge


def _move(v: Tensor, flip: Tensor, shift: Tensor, board: bool) -> Tensor:
    """(N, C, H, W) maps mirrored left to right where ``flip``, then moved ``shift`` columns
    (right for > 0); columns moved in from off the map are empty cells (channel 0 set) for a
    ``board``, zeros otherwise."""
    v = torch.where(flip.view(-1, 1, 1, 1), v.flip(-1), v)
    if not bool((shift != 0).any()):
        return v
    w = v.shape[-1]
    src = torch.arange(w, device=v.device)[None] - shift[:, None]  # (N, W): the source column
    inside = (src >= 0) & (src < w)
    idx = src.clamp(0, w - 1).view(-1, 1, 1, w).expand_as(v)
    out = v.gather(3, idx)
    fill = torch.zeros_like(v[:1, :, :1, :1])
    if board:
        fill[:, 0] = 1
    return torch.where(inside.view(-1, 1, 1, w), out, fill)
