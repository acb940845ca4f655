"""One-sided training (the Tetris experiments): freeze a player, or replace D mid-run."""
from __future__ import annotations

from typing import Optional

from ..config import OptimizerConfig
from ..hooks import IterationHook
from ..init import apply_init
from ..registry import MODELS, TRICKS


@TRICKS.register("schedule")
class Schedule(IterationHook):
    """Freeze and replace schedules. Iterations are counted from the start of the run;
    ``*_epoch`` forms count epochs of ``len(data) // batch_size`` iterations.

    - ``freeze_g_at`` / ``freeze_d_at``: from that iteration on the player is not trained;
    - ``replace_d_at``: at that iteration D is replaced by a fresh ``replace_d`` (a model
      ``{name, args}``; default: D's own registered class and arguments), initialised with
      ``replace_init`` (default: the config's init), with a fresh optimizer of D's kind (the
      config's ``optim.d``: name, betas, weight decay, implementation) at ``replace_d_lr``
      (default: D's learning rate) and no learning-rate decay.
    """

    name = "schedule"

    def __init__(self, freeze_g_at: Optional[int] = None, freeze_d_at: Optional[int] = None,
                 replace_d_at: Optional[int] = None, replace_d: Optional[dict] = None,
                 replace_init: Optional[str] = None, replace_d_lr: Optional[float] = None,
                 freeze_g_at_epoch: Optional[float] = None,
                 freeze_d_at_epoch: Optional[float] = None,
                 replace_d_at_epoch: Optional[float] = None):
        self.raw = {"freeze_g": (freeze_g_at, freeze_g_at_epoch),
                    "freeze_d": (freeze_d_at, freeze_d_at_epoch),
                    "replace_d": (replace_d_at, replace_d_at_epoch)}
        for key, (it, ep) in self.raw.items():
            if it is not None and ep is not None:
                raise ValueError(f"give {key}_at or {key}_at_epoch, not both")
        self.replace_spec, self.replace_init, self.replace_lr = replace_d, replace_init, replace_d_lr
        self.replaced = False

    def setup(self, ctx) -> None:
        super().setup(ctx)
        per_epoch = max(1, len(ctx.data) // ctx.batch_size)
        self.at = {k: (int(it) if it is not None else
                       (int(round(ep * per_epoch)) if ep is not None else None))
                   for k, (it, ep) in self.raw.items()}
        if self.replace_spec is not None and "name" not in self.replace_spec:
            raise ValueError("replace_d: expected {name: MODEL, args: {...}}")
        self.spec = self.replace_spec or getattr(ctx.D, "ganlab_spec", None)
        if self.at["replace_d"] is not None and self.spec is None:
            raise ValueError("replace_d: D was not built from the model registry, so give the "
                             "model to replace it with: replace_d: {name: MODEL, args: {...}}")

    def trains(self, player: str) -> bool:
        at = self.at[f"freeze_{player}"]
        return at is None or self.ctx.iteration < at

    def before_iteration(self) -> None:
        at = self.at["replace_d"]
        if at is not None and not self.replaced and self.ctx.iteration >= at:
            self._replace()

    def _replace(self) -> None:
        cfg, spec = self.ctx.config, self.spec
        D = MODELS.build(spec["name"], spec.get("args", {}), where="schedule.replace_d")
        apply_init(D, self.replace_init or cfg.model.init)
        base = cfg.optim.d
        opt = OptimizerConfig(name=base.name, lr=self.replace_lr or base.lr, betas=base.betas,
                              weight_decay=base.weight_decay, implementation=base.implementation)
        self.ctx.replace_discriminator(D, opt)
        self.replaced = True

    def state_dict(self) -> dict:
        return {"replaced": self.replaced}

    def load_state_dict(self, state: dict) -> None:
        if state["replaced"] and not self.replaced:
            self._replace()  # rebuild the swapped-in D before its weights load
