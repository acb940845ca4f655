"""Normalisation layers, chosen by name in a model's ``norm`` argument.

- ``batch``: batch normalisation (Ioffe & Szegedy 2015).
- ``instance``: instance normalisation with affine parameters (Ulyanov et al. 2016); images only.
- ``layer``: layer normalisation (Ba et al. 2016): every example normalised over all its
  features (``GroupNorm`` with one group for images).
- ``none``: no normalisation.

Virtual batch normalisation (Salimans et al. 2016, sec. 3.5) is not a per-layer choice: it needs
a reference batch pushed through the whole network, so it is the ``virtual-batch-norm`` trick
(:mod:`ganlab.tricks`), which turns a model's batch-norm layers into :class:`VirtualBatchNorm`
and prepends the reference batch with :func:`attach_reference`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

NORMS = ("batch", "instance", "layer", "none")


def norm_layer(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """A normalisation layer for ``(N, channels, H, W)`` (``dims=2``) or ``(N, channels)``
    (``dims=0``) activations."""
    if kind not in NORMS:
        raise ValueError(f"norm: unknown normalisation {kind!r}; valid: {', '.join(NORMS)}")
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "instance":
        if dims != 2:
            raise ValueError("norm: instance normalisation needs feature maps; for vectors use "
                             "layer")
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels) if dims == 2 else nn.LayerNorm(channels)
    return nn.Identity()


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016, sec. 3.5): each example is normalised
    with the statistics of a fixed reference batch *and itself*, so its output does not depend on
    the other examples of its batch.

    The input holds the reference batch's activations in its first ``n_ref`` rows (``n_ref`` set
    by :func:`attach_reference`, whose hooks prepend them) and the examples after them. The
    reference rows are normalised with the reference statistics (as batch norm would); example
    ``x`` with mean ``(n_ref * E_ref[x] + E[x]) / (n_ref + 1)`` and the matching second moment,
    expectations per channel over rows and spatial positions. Gradients flow through the reference
    statistics, as in the paper: the reference is re-evaluated with the current weights at every
    call.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.n_ref: Optional[int] = None

    @classmethod
    def from_batch_norm(cls, bn: nn.modules.batchnorm._BatchNorm) -> "VirtualBatchNorm":
        vbn = cls(bn.num_features, bn.eps, bn.affine)
        if bn.affine:
            with torch.no_grad():
                vbn.weight.copy_(bn.weight)
                vbn.bias.copy_(bn.bias)
        return vbn.to(bn.weight.device if bn.affine else None)

    def forward(self, x: Tensor) -> Tensor:
        n = self.n_ref
        if not n:
            raise RuntimeError("VirtualBatchNorm: no reference batch; attach one to the model "
                               "with ganlab.models.norms.attach_reference")
        spatial = tuple(range(2, x.dim()))
        shape = (1, -1) + (1,) * len(spatial)
        ref, ex = x[:n], x[n:]
        ref_mean = ref.mean((0,) + spatial, keepdim=True)
        ref_sq = ref.pow(2).mean((0,) + spatial, keepdim=True)
        ex_mean = ex.mean(spatial, keepdim=True) if spatial else ex
        ex_sq = ex.pow(2).mean(spatial, keepdim=True) if spatial else ex.pow(2)
        c = 1.0 / (n + 1)
        mean = c * ex_mean + (1 - c) * ref_mean
        var = (c * ex_sq + (1 - c) * ref_sq - mean.pow(2)).clamp_min(0)
        ref_var = (ref_sq - ref_mean.pow(2)).clamp_min(0)
        out = torch.cat([(ref - ref_mean) * torch.rsqrt(ref_var + self.eps),
                         (ex - mean) * torch.rsqrt(var + self.eps)])
        if self.weight is not None:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.weight is not None}"


def to_virtual_batch_norm(model: nn.Module) -> int:
    """Replace every batch-norm layer of ``model`` by a :class:`VirtualBatchNorm` with the same
    affine parameters; returns how many were replaced."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, VirtualBatchNorm.from_batch_norm(child))
                count += 1
    return count


_REF = "vbn_reference_"


def attach_reference(model: nn.Module, reference: tuple[Tensor, ...]) -> None:
    """Make ``model`` run a fixed reference batch with every call: its inputs (each tensor
    argument of ``forward``, in order: noise and labels, or examples and conditions) are stored as
    buffers (so checkpoints carry them), prepended to the call's arguments, and the reference
    rows are dropped from the output. The hooks are plain functions of the module, so
    ``copy.deepcopy(model)`` (EMA) works on the copy's own layers and buffers."""
    sizes = {t.shape[0] for t in reference}
    if len(sizes) != 1:
        raise ValueError(f"reference tensors must have the same number of rows, got {sizes}")
    for i, t in enumerate(reference):
        model.register_buffer(f"{_REF}{i}", t.detach().clone())
    n = sizes.pop()
    for m in model.modules():  # fixed from here on (and copied along by deepcopy)
        if isinstance(m, VirtualBatchNorm):
            m.n_ref = n
    model.register_forward_pre_hook(_prepend_reference)
    model.register_forward_hook(_strip_reference)


def _references(module: nn.Module) -> list[Tensor]:
    refs, i = [], 0
    while hasattr(module, f"{_REF}{i}"):
        refs.append(getattr(module, f"{_REF}{i}"))
        i += 1
    return refs


def _prepend_reference(module: nn.Module, args: tuple):
    refs = _references(module)
    joined = tuple(torch.cat([r.to(a.dtype), a]) for r, a in zip(refs, args))
    return joined + tuple(args[len(refs):])


def _strip_reference(module: nn.Module, args: tuple, output):
    n = getattr(module, f"{_REF}0").shape[0]
    if isinstance(output, tuple):  # auxiliary heads: (scores, class logits)
        return tuple(o[n:] if isinstance(o, Tensor) else o for o in output)
    return output[n:]
