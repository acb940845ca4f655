"""Mode metrics for Gaussian mixtures (the PacGAN protocol, Lin et al. 2018, sec. 5.1).

Each sample is assigned to its nearest mode. A sample is *high quality* if it lies within
``threshold`` standard deviations of that mode; a mode is *captured* if at least one high-quality
sample is assigned to it. Reverse KL is ``KL(Q || P)`` between the histogram Q of high-quality
samples over the modes and the uniform distribution P (zero-count modes contribute nothing to the
sum; all-bad samples give ``inf``).
"""
from __future__ import annotations

import math

import torch


def mode_metrics(samples: torch.Tensor, modes: torch.Tensor, std: float,
                 threshold: float = 3.0) -> dict:
    if samples.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"mode_metrics: samples must be (N, {modes.shape[1]}), got "
                         f"{tuple(samples.shape)}")
    s = samples.detach().double().cpu()
    m = modes.double().cpu()
    d = torch.cdist(s, m)
    dist, nearest = d.min(dim=1)
    good = dist <= threshold * std
    counts = torch.bincount(nearest[good], minlength=len(m)).double()
    total = counts.sum().item()
    if total > 0:
        q = counts / total
        nz = q > 0
        rkl = float((q[nz] * (q[nz] * len(m)).log()).sum())
    else:
        rkl = math.inf
    return {"modes_captured": int((counts > 0).sum()), "modes_total": len(m),
            "high_quality": float(good.double().mean()), "reverse_kl": rkl,
            "counts": counts.long().tolist()}
