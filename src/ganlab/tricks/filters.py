"""Sampling filters: discriminator rejection sampling and Jacobian truncation. Each decides
which samples to keep after training; neither changes training nor keeps checkpoint state, so
either can be added to a run trained without it (``Game.add_filter``)."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn

from ..hooks import SampleFilter
from ..registry import TRICKS


def _data_rows(ctx, n: int, gen: torch.Generator):
    """``n`` random example indices and their own labels or paired conditions (None in an
    unconditional game): what G is conditioned on when a sampling filter calibrates."""
    idx = torch.randint(len(ctx.examples), (n,), generator=gen, device=ctx.device)
    return idx, ctx.conditioning.of_rows(idx)


@TRICKS.register("discriminator-rejection")
class DiscriminatorRejection(SampleFilter):
    """Discriminator rejection sampling (Azadi et al. 2019, Algorithm 1): samples are kept with
    probability ``sigmoid(F(x))``, ``F(x) = D(x) - M - log(1 - exp(D(x) - M - eps)) - gamma``,
    ``D(x)`` a logit and ``M`` the largest logit seen (a burn-in of ``burn_in`` samples, then
    every scored one). With ``gamma = 0`` that is ``exp(D(x) - M)``: exact rejection sampling
    from p_data when ``exp(D)`` is the density ratio p_data / p_G, as it is for an optimal
    non-saturating D. Training is untouched; the game's samples and evaluation use it (the
    sample grids, drawn from fixed noise, do not).

    Before sampling from a new iteration, a copy of D is calibrated (the paper's sec. 3.2):
    ``calibrate`` steps of logistic regression (Adam, ``lr``) on real examples against samples of
    the sampling generator, so the logits estimate the density ratio whatever the training loss
    (hinge and Wasserstein critics are not ratios). ``gamma_quantile`` (the paper uses 0.95 of the
    burn-in's F) sets gamma from the burn-in instead of ``gamma``, trading diversity for
    quality. Its own RNG (from the game's seed) keeps training and sampling reproducible."""

    name = "discriminator_rejection"

    def __init__(self, calibrate: int = 2000, lr: float = 1.0e-4, burn_in: int = 10000,
                 gamma: float = 0.0, gamma_quantile: Optional[float] = None, eps: float = 1.0e-6):
        if calibrate < 0 or burn_in < 1:
            raise ValueError(f"calibrate must be >= 0 and burn_in >= 1, got {calibrate}, "
                             f"{burn_in}")
        if gamma_quantile is not None and not 0 < gamma_quantile < 1:
            raise ValueError(f"gamma_quantile must be in (0, 1), got {gamma_quantile}")
        if gamma_quantile is not None and gamma:
            raise ValueError("give gamma or gamma_quantile, not both")
        self.calibrate, self.lr, self.burn_in = int(calibrate), float(lr), int(burn_in)
        self.gamma, self.gamma_quantile, self.eps = float(gamma), gamma_quantile, float(eps)
        self._at = None  # the iteration the calibrated critic belongs to

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if any(t.groups_d_rows for t in ctx.tricks):
            raise ValueError("scores one sample at a time, but with `pack` D judges m at once")

    def _scores(self, D, x: Tensor, cond) -> Tensor:
        out = D(x) if cond is None else D(x, cond)
        return (out[0] if isinstance(out, tuple) else out).reshape(-1).float()

    def _draw(self, n: int, gen: torch.Generator):
        """A real batch and fakes of the sampling generator under the same labels/conditions."""
        ctx = self.ctx
        idx, cond = _data_rows(ctx, n, gen)
        z = ctx.sample_latent(n, generator=gen)
        with torch.no_grad():
            fake = ctx.generate_chunked(ctx.sampling_generator, z, cond)
        return ctx.examples.index_select(0, idx), fake, cond

    def _prepare(self) -> None:
        ctx = self.ctx
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed + 303 + ctx.iteration)
        G = ctx.sampling_generator
        was = G.training
        G.eval()
        # D's own randomness (dropout) must not move training's global RNG
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            try:
                self.D = self._calibrated_critic(gen)
                with torch.no_grad():
                    logits = torch.cat([self._scores(self.D, fake, cond) for _, fake, cond in (
                        self._draw(min(4096, self.burn_in - i), gen)
                        for i in range(0, self.burn_in, 4096))])
            finally:
                G.train(was)
        self.max_logit = logits.max()
        self._gamma = (self.gamma if self.gamma_quantile is None
                       else float(torch.quantile(self._f(logits), self.gamma_quantile)))
        self.acceptance = float(torch.sigmoid(self._f(logits) - self._gamma).mean())
        self._at = ctx.iteration

    @torch.enable_grad()
    def _calibrated_critic(self, gen: torch.Generator) -> nn.Module:
        """A copy of D fitted by logistic regression on real against generated examples."""
        D = copy.deepcopy(self.ctx.D).train()
        for p in D.parameters():  # the copy trains whatever step the game's D is frozen for
            p.requires_grad_(True)
        opt = torch.optim.Adam(D.parameters(), lr=self.lr, betas=(0.5, 0.999))
        softplus = nn.functional.softplus
        for _ in range(self.calibrate):
            real, fake, cond = self._draw(self.ctx.batch_size, gen)
            loss = (softplus(-self._scores(D, real, cond)).mean()
                    + softplus(self._scores(D, fake, cond)).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return D.eval()

    def _f(self, logits: Tensor) -> Tensor:
        d = (logits - self.max_logit).clamp(max=0.0)
        return d - torch.log1p(-torch.exp(d - self.eps))

    @torch.no_grad()
    def accept(self, z: Tensor, x: Tensor, cond, generator: torch.Generator) -> Tensor:
        if self._at != self.ctx.iteration:
            self._prepare()
        logits = self._scores(self.D, x, cond)
        self.max_logit = torch.maximum(self.max_logit, logits.max())
        p = torch.sigmoid(self._f(logits) - self._gamma)
        return torch.rand(p.shape, generator=generator, device=p.device) < p


@TRICKS.register("jacobian-truncation")
class JacobianTruncation(SampleFilter):
    """Jacobian-based truncation sampling (Tanielian et al. 2020, "Learning disconnected
    manifolds: a no GAN's land", sec. 4). A generator that maps a connected latent space onto
    separate modes must stretch thin slabs of latents across the gaps between them, and those
    latents are where ``||J_G(z)||_F`` is largest. A sample is kept when its Jacobian norm is at
    most the ``keep`` quantile of the norms of ``burn_in`` draws of the sampling generator, so
    about a fraction ``keep`` of draws pass, and the ones between modes are dropped first.
    Training is untouched; the game's samples and evaluation use it (the sample grids, drawn
    from fixed noise, do not).

    The norm is exact (one forward-mode product per latent dimension) when ``probes`` is None;
    otherwise it is the unbiased estimate ``mean_k ||J v_k||^2`` over ``probes`` Gaussian
    directions (Hutchinson), cheaper for a latent of many dimensions. It needs a generator
    differentiable in z; its cost per sample is that many forward passes."""

    name = "jacobian_truncation"

    def __init__(self, keep: float = 0.9, burn_in: int = 10000, probes: Optional[int] = None):
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        if burn_in < 1 or (probes is not None and probes < 1):
            raise ValueError(f"burn_in and probes must be >= 1, got {burn_in}, {probes}")
        self.keep, self.burn_in, self.probes = float(keep), int(burn_in), probes
        self._at = None  # the iteration the threshold belongs to

    @torch.no_grad()
    def norms(self, z: Tensor, labels: Optional[Tensor] = None,
              generator: Optional[torch.Generator] = None) -> Tensor:
        """``||J_G(z)||_F^2`` of the sampling generator (in eval mode) for each row of ``z``;
        ``labels`` are G's second input in conditional games."""
        G = self.ctx.sampling_generator
        was = G.training
        G.eval()
        try:
            return torch.cat([self._norms(G, z[i:i + 1024],
                                          labels[i:i + 1024] if labels is not None else None,
                                          generator) for i in range(0, len(z), 1024)])
        finally:
            G.train(was)

    def _norms(self, G: nn.Module, z: Tensor, y: Optional[Tensor], generator) -> Tensor:
        def f(u):
            return G(u) if y is None else G(u, y)

        flat = z.reshape(len(z), -1)
        if self.probes is None:  # the columns of J, one basis direction at a time
            dirs = torch.eye(flat.shape[1], device=z.device, dtype=z.dtype)[:, None].expand(
                -1, len(z), -1)
        else:
            dirs = (torch.randn(flat.shape, generator=generator, device=z.device, dtype=z.dtype)
                    for _ in range(self.probes))
        sq = torch.zeros(len(z), device=z.device)
        for v in dirs:
            try:
                _, jv = torch.func.jvp(f, (z,), (v.reshape(z.shape),))
            except RuntimeError as exc:
                raise RuntimeError(f"jacobian-truncation: the generator is not differentiable "
                                   f"in z: {str(exc).splitlines()[0]}") from None
            sq += jv.reshape(len(z), -1).float().pow(2).sum(1)
        return sq if self.probes is None else sq / self.probes

    def _prepare(self) -> None:
        ctx = self.ctx
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed + 505 + ctx.iteration)
        z = ctx.sample_latent(self.burn_in, generator=gen)
        sq = self.norms(z, _data_rows(ctx, self.burn_in, gen)[1], gen)
        self.threshold = float(torch.quantile(sq.double(), self.keep))
        self.acceptance = float((sq <= self.threshold).float().mean())
        self._at = ctx.iteration

    def accept(self, z: Tensor, x: Tensor, cond, generator: torch.Generator) -> Tensor:
        if self._at != self.ctx.iteration:
            self._prepare()
        return self.norms(z, cond, generator) <= self.threshold
