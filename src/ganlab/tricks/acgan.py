"""ACGAN's class losses for a discriminator with an auxiliary classifier head."""
from __future__ import annotations

from torch import Tensor, nn

from ..hooks import Penalty, StepBatch
from ..registry import TRICKS


@TRICKS.register("acgan")
class ACGAN(Penalty):
    """ACGAN's class losses (Odena et al. 2017, eq. 2-3): D minimises
    ``weight * (CE(c(x), y) + CE(c(G(z, y')), y'))``; G minimises ``weight * CE(c(G(z, y')), y')``.
    Needs a class-conditional game whose discriminator is built with ``mode: acgan``."""

    name = "acgan"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if getattr(ctx.D, "mode", None) != "acgan" or ctx.conditioning.kind != "labels":
            raise ValueError("needs a conditional game whose discriminator has mode: acgan")

    def d_penalty(self, batch: StepBatch) -> Tensor:
        ce = nn.functional.cross_entropy
        return self.weight * (ce(batch.real_aux, batch.real_cond) +
                              ce(batch.fake_aux, batch.fake_cond))

    def g_penalty(self, batch: StepBatch) -> Tensor:
        return self.weight * nn.functional.cross_entropy(batch.fake_aux, batch.fake_cond)
