"""The two players: G and D with their optimizers and learning-rate schedules."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .config import OptimizerConfig
from .errors import ConfigError


def make_optimizer(params, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    impl = {}
    if cfg.implementation == "fused" or (cfg.implementation == "auto" and device.type == "cuda"):
        impl = {"fused": True}
    elif cfg.implementation in ("foreach", "auto"):
        impl = {"foreach": True}
    elif cfg.implementation == "for-loop":
        impl = {"foreach": False}
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas),
                                weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas),
                                 weight_decay=cfg.weight_decay, **impl)
    impl.pop("fused", None)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.betas[0],
                               weight_decay=cfg.weight_decay, **impl)
    raise ConfigError(f"optim.name: unknown optimizer {cfg.name!r}")


def decayed_lr(cfg: OptimizerConfig, iteration: int, total: int) -> float:
    """The learning rate at ``iteration`` under ``cfg.decay`` (stateless, so resume is exact)."""
    if cfg.decay == "none" or total <= 0:
        return cfg.lr
    start = cfg.decay_start * total
    if iteration <= start:
        return cfg.lr
    return cfg.lr * max(0.0, 1.0 - (iteration - start) / (total - start))


def autocast(forward, device: torch.device, dtype: torch.dtype):
    """``forward`` run under torch's autocast to ``dtype`` on ``device`` (mixed precision: the
    convolutions and matrix products in ``dtype``, the weights float32), its floating outputs
    handed back as float32 so that the losses and the penalties are computed as before."""
    def run(*args, **kwargs):
        with torch.autocast(device.type, dtype=dtype):
            out = forward(*args, **kwargs)
        return _float32(out)
    return run


def _float32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_float32(o) for o in out)
    return out


def set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


class Players:
    """G and D on their device, their forward functions (compiled with ``compile``), their
    optimizers, and the learning-rate schedule of each (``decay`` over ``total`` iterations).

    Built in two steps: the networks first, so that the model transforms (spectral norm,
    virtual batch norm) can rewrite them; then :meth:`prepare` makes the optimizers."""

    def __init__(self, G: nn.Module, D: nn.Module, device: torch.device,
                 channels_last: bool = False, precision: str = "float32"):
        self.G, self.D, self.device = G.to(device), D.to(device), device
        self.channels_last, self.precision = channels_last, precision

    def in_format(self, module: nn.Module) -> nn.Module:
        """``module`` (in place) in the memory format G and D train in."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def in_precision(self, forward):
        """``forward`` run in the number format G and D train in (bfloat16 autocast with
        float32 outputs under ``train.precision: bfloat16``; as it is otherwise)."""
        if self.precision == "bfloat16":
            return autocast(forward, self.device, torch.bfloat16)
        return forward

    def prepare(self, optim_g: OptimizerConfig, optim_d: OptimizerConfig, total: int = 0,
                compile: bool = False) -> None:
        self.total = total
        self.in_format(self.G)
        self.in_format(self.D)
        self.G_fwd = self.in_precision(torch.compile(self.G) if compile else self.G)
        self.D_fwd = self.in_precision(torch.compile(self.D) if compile else self.D)
        self.schedules = [(cfg, which) for cfg, which in ((optim_g, "g"), (optim_d, "d"))
                          if cfg.decay != "none"]
        self.opt_g = make_optimizer(self.G.parameters(), optim_g, self.device)
        self.opt_d = make_optimizer(self.D.parameters(), optim_d, self.device)

    def optimizer(self, player: str) -> torch.optim.Optimizer:
        return self.opt_d if player == "d" else self.opt_g

    def set_learning_rates(self, iteration: int) -> None:
        for cfg, which in self.schedules:
            lr = decayed_lr(cfg, iteration, self.total)
            for group in self.optimizer(which).param_groups:
                group["lr"] = lr

    def train_only(self, player: Optional[str]) -> None:
        """``requires_grad`` on for ``player``'s parameters only (None: both)."""
        set_requires_grad(self.G, player in (None, "g"))
        set_requires_grad(self.D, player in (None, "d"))

    def replace_discriminator(self, D: nn.Module, optim_cfg: OptimizerConfig) -> None:
        """Swap in a new D (already initialised) with a fresh optimizer and schedule."""
        self.D = self.in_format(D.to(self.device))
        self.D_fwd = self.in_precision(self.D)
        self.opt_d = make_optimizer(self.D.parameters(), optim_cfg, self.device)
        self.schedules = [(c, w) for c, w in self.schedules if w != "d"]
        if optim_cfg.decay != "none":
            self.schedules.append((optim_cfg, "d"))
