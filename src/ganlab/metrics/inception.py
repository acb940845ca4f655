"""Standard Inception IS, FID and KID from a weights file the user supplies (nothing downloads).

The file is the TorchScript Inception-v3 of the StyleGAN2-ADA / StyleGAN3 metrics
(``inception-2015-12-05.pt``, the TensorFlow FID network of Heusel et al. 2017 converted to
TorchScript), or any TorchScript module with its calling convention:

- ``m(images, return_features=True)`` gives the (N, 2048) pool features used by FID and KID;
- ``m(images, no_output_bias=True)`` gives (N, C) class probabilities used by IS (without the
  output bias, matching the original IS code);

where ``images`` are uint8 (N, 3, H, W) in [0, 255]. ganlab converts its [-1, 1] images to that
form (grey images repeated on three channels) and resizes them to 299 x 299 bilinearly. The metric
arithmetic is torchmetrics' (the same classes as the domain-classifier metrics), so only the
feature network differs. torchvision and torch-fidelity are not needed.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from ..errors import ConfigError
from .image import Extractor

SIZE = 299


def load_inception(path: str | Path) -> torch.jit.ScriptModule:
    """Load a TorchScript Inception file on the CPU; a clear error names the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Inception weights {path}: no such file (pass the TorchScript "
                          "inception-2015-12-05.pt of the StyleGAN2-ADA metrics)")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:  # noqa: BLE001 - any load failure is a bad file
        raise ConfigError(f"Inception weights {path}: not a TorchScript module "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          "expected the TorchScript inception-2015-12-05.pt") from None


def to_uint8_rgb(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """[-1, 1] images (N, 1 or 3, H, W) -> uint8 (N, 3, size, size)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception metrics need images (N, 1 or 3, H, W); got "
                         f"{tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def inception_metrics(net, real: torch.Tensor, fake: torch.Tensor, batch: int = 100,
                      kid_subsets: int = 50, kid_subset_size: int = 1000) -> dict:
    """Inception IS (of ``fake``), FID and KID (``fake`` against ``real``), images in [-1, 1]."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    probe = to_uint8_rgb(real[:2])
    try:
        dim = net(probe, return_features=True).shape[1]
        classes = net(probe, no_output_bias=True).shape[1]
    except Exception as e:  # noqa: BLE001 - the file does not follow the calling convention
        raise ConfigError("Inception network: expected m(uint8 (N, 3, 299, 299), "
                          "return_features=True) and m(..., no_output_bias=True) as in the "
                          f"StyleGAN2-ADA metrics; calling it failed with {type(e).__name__}"
                          ) from None
    pool = Extractor(net, dim, lambda m, x: m(x, return_features=True).double())
    # torchmetrics' IS applies a softmax to what it is given: hand it log-probabilities
    logp = Extractor(net, classes,
                     lambda m, x: m(x, no_output_bias=True).double().clamp_min(1e-30).log())
    size = min(kid_subset_size, len(real), len(fake))
    fid = FrechetInceptionDistance(feature=pool, normalize=False)
    kid = KernelInceptionDistance(feature=pool, subsets=kid_subsets, subset_size=size,
                                  normalize=False)
    isc = InceptionScore(feature=logp, splits=10, normalize=False)
    for b in real.split(batch):
        b = to_uint8_rgb(b)
        fid.update(b, real=True)
        kid.update(b, real=True)
    for b in fake.split(batch):
        b = to_uint8_rgb(b)
        fid.update(b, real=False)
        kid.update(b, real=False)
        isc.update(b)
    is_mean, is_std = isc.compute()
    kid_mean, kid_std = kid.compute()
    return {"inception_is": float(is_mean), "inception_is_std": float(is_std),
            "inception_fid": float(fid.compute()), "inception_kid": float(kid_mean),
            "inception_kid_std": float(kid_std)}
