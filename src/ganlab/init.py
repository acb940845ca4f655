"""Weight initialisation schemes, selectable by name (``model.init`` in a config).

``apply_init(model, name)`` re-initialises the model in place. Schemes:

- ``default``: PyTorch's own initialisation, untouched.
- ``dcgan``: Radford et al. 2016, section 4: conv / transposed-conv / linear weights N(0, 0.02),
  normalisation weights N(1, 0.02), all biases 0 (the Goethe assignment's ``init_params``).
- ``xavier``: Xavier (Glorot) uniform weights, zero biases (CS231N's ``initialize_weights``).
- ``kaiming-fan-in`` / ``kaiming-fan-out``: He et al. 2015 uniform, ReLU gain, in the given mode,
  zero biases (the Tetris experiment 025 variants).
- ``smart``: Kaiming uniform fan_in on every conv/linear layer that feeds a ReLU (possibly through
  a normalisation layer), with its bias (if any) set to 0.01; every other layer keeps PyTorch's
  default (Tetris experiment 025, "respecting the activation").
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from .registry import INITS

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
          nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm)


def _zero_bias(m: nn.Module) -> None:
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)


@INITS.register("default")
def init_default(model: nn.Module) -> None:
    """Leave PyTorch's initialisation as it is."""


@INITS.register("dcgan")
def init_dcgan(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, 0.02)
            _zero_bias(m)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            _zero_bias(m)


@INITS.register("xavier")
def init_xavier(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(m.weight)
            _zero_bias(m)


def _kaiming(model: nn.Module, mode: str) -> None:
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.kaiming_uniform_(m.weight, mode=mode, nonlinearity="relu")
            _zero_bias(m)


@INITS.register("kaiming-fan-in")
def init_kaiming_fan_in(model: nn.Module) -> None:
    _kaiming(model, "fan_in")


@INITS.register("kaiming-fan-out")
def init_kaiming_fan_out(model: nn.Module) -> None:
    _kaiming(model, "fan_out")


def layers_feeding_relu(model: nn.Module) -> Iterator[nn.Module]:
    """Conv/linear layers followed, in their ``nn.Sequential``, by a ReLU (norms may sit between)."""
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.children())
        for i, m in enumerate(children):
            if not isinstance(m, _WEIGHTED):
                continue
            for nxt in children[i + 1:]:
                if isinstance(nxt, _NORMS):
                    continue
                if isinstance(nxt, nn.ReLU):
                    yield m
                break


@INITS.register("smart")
def init_smart(model: nn.Module) -> None:
    for m in layers_feeding_relu(model):
        nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.01)


@torch.no_grad()
def apply_init(model: nn.Module, name: str) -> nn.Module:
    INITS.get(name, "model.init")(model)
    return model
