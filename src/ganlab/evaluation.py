"""``ganlab evaluate RUN_DIR``: every metric that applies to a run's data.

- 2-D mixtures: mode coverage (modes captured, high-quality share, reverse KL) on 2,500 samples;
- MNIST: IS, FID, KID, precision/recall and class-histogram KL of ``n`` samples against the test
  split, on the shipped classifier's features, beside the real-vs-real floor (the same metrics
  of the test split against ``n`` training images);
- Stacked MNIST: modes captured (of 1,000) and KL of the mode histogram to uniform;
- Tetris: the emulator metrics of the dataset's evaluator (train and test splits).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .registry import ConfigError


def evaluate_run(run_dir: str | Path, n: int = 10_000) -> dict:
    from .run import open_run
    game = open_run(run_dir)
    if game.iteration == 0:
        raise ConfigError(f"{run_dir}: has no checkpoint to evaluate")
    out = {"iteration": game.iteration}
    data = game.data
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
        g = torch.Generator().manual_seed(0)
        real_ref = train[torch.randperm(len(train), generator=g)[:n]]
        gen = image_metrics(clf, test, fake)
        floor = image_metrics(clf, test, real_ref)
        out.update(gen)
        out.update({f"real_vs_real/{k}": v for k, v in floor.items() if k != "class_counts"})
        if floor.get("fid"):
            out["fid_over_floor"] = gen["fid"] / floor["fid"]
    elif "evaluate" in data.info:  # the mixtures' mode coverage, Tetris' emulator metrics
        out.update(data.info["evaluate"](game))
    else:
        raise ConfigError(f"{run_dir}: no metrics known for dataset {data.name!r}")
    return out
