"""``ganlab evaluate RUN_DIR``: every metric that applies to a run's data.

- 2-D mixtures: mode coverage (modes captured, high-quality share, reverse KL) on 2,500 samples;
- MNIST: IS, FID, KID, precision/recall and class-histogram KL of ``n`` samples against the test
  split, on the shipped classifier's features, beside the real-vs-real floor (the same metrics
  of the test split against ``n`` training images);
- Stacked MNIST: modes captured (of 1,000) and KL of the mode histogram to uniform;
- Tetris: the emulator metrics of the dataset's evaluator (train and test splits);
- any image data (MNIST, Stacked MNIST, CIFAR-10), when ``inception`` names a local TorchScript
  Inception file: the standard Inception IS, FID and KID (:mod:`ganlab.metrics.inception`) of
  ``n`` samples against the same real images as above (the run's own images for CIFAR-10), and
  for MNIST the real-vs-real floor on the same network.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from .registry import ConfigError


def _subset(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(len(x), generator=g)[:n]]


def evaluate_run(run_dir: str | Path, n: int = 10_000, inception: Optional[str] = None,
                 filters: Sequence[tuple[str, dict]] = ()) -> dict:
    from .run import open_run
    net = None
    if inception is not None:  # a bad file fails before any sampling
        from .metrics.inception import inception_metrics, load_inception
        net = load_inception(inception)
    game = open_run(run_dir, filters=filters)
    if game.iteration == 0:
        raise ConfigError(f"{run_dir}: has no checkpoint to evaluate")
    out = {"iteration": game.iteration}
    data = game.data
    if net is not None and data.kind != "image":
        raise ConfigError(f"{run_dir}: Inception metrics need image data; dataset "
                          f"{data.name!r} holds {data.kind}")
    if data.name == "stacked-mnist":
        from .metrics.classifier import load_classifier
        from .metrics.image import stacked_modes
        out.update(stacked_modes(load_classifier(), game.sample(n).cpu()))
    elif data.name == "mnist":
        from .data import load_dataset
        from .metrics.classifier import load_classifier
        from .metrics.image import image_metrics
        cfg = game.config
        clf = load_classifier()
        test = load_dataset("mnist", cfg.data.path, {"split": "test"}).examples
        train = load_dataset("mnist", cfg.data.path, {"split": "train"}).examples
        fake = game.sample(n).cpu()
        real_ref = _subset(train, n)
        gen = image_metrics(clf, test, fake)
        floor = image_metrics(clf, test, real_ref)
        if net is not None:
            gen.update(inception_metrics(net, test, fake))
            floor.update(inception_metrics(net, test, real_ref))
        out.update(gen)
        out.update({f"real_vs_real/{k}": v for k, v in floor.items() if k != "class_counts"})
        for key in ("fid", "inception_fid"):
            if floor.get(key):
                out[f"{key}_over_floor"] = gen[key] / floor[key]
    elif "evaluate" in data.info:  # the mixtures' mode coverage, Tetris' emulator metrics
        out.update(data.info["evaluate"](game))
    elif net is None:
        raise ConfigError(f"{run_dir}: no metrics known for dataset {data.name!r}"
                          + (" without Inception weights (pass --inception FILE)"
                             if data.kind == "image" else ""))
    if net is not None and data.name != "mnist":  # MNIST's came with its floor above
        out.update(inception_metrics(net, _subset(data.examples, n), game.sample(n).cpu()))
    return out
