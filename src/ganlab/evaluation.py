"""``ganlab evaluate RUN_DIR``: every metric of the run's task (:mod:`ganlab.tasks`).

- 2-D mixtures: mode coverage (modes captured, high-quality share, reverse KL) on 2,500 samples;
- MNIST: IS, FID, KID, precision/recall and class-histogram KL of ``n`` samples against the test
  split, on the shipped classifier's features, beside the real-vs-real floor (the same metrics
  of the test split against ``n`` training images);
- Stacked MNIST: modes captured (of 1,000) and KL of the mode histogram to uniform;
- Tetris: the emulator metrics on the data set's train and test splits;
- any image data (MNIST, Stacked MNIST, CIFAR-10), when ``inception`` names a local TorchScript
  Inception file: the standard Inception IS, FID and KID (:mod:`ganlab.metrics.inception`) of
  ``n`` samples against the same real images as above (the run's own images for CIFAR-10), and
  for MNIST the real-vs-real floor on the same network.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .errors import ConfigError
from .metrics.inception import load_inception
from .run import open_run


def evaluate_run(run_dir: str | Path, n: Optional[int] = None, inception: Optional[str] = None,
                 filters: Sequence[tuple[str, dict]] = ()) -> dict:
    net = load_inception(inception) if inception is not None else None  # fails before sampling
    game = open_run(run_dir, filters=filters)
    if game.iteration == 0:
        raise ConfigError(f"{run_dir}: has no checkpoint to evaluate")
    try:
        metrics = game.data.task.evaluate(game, n, inception=net)
    except ConfigError as exc:
        raise ConfigError(f"{run_dir}: {exc}") from None
    if not metrics:
        raise ConfigError(f"{run_dir}: no metrics known for {game.data.task.describe()}"
                          + (" without Inception weights (pass --inception FILE)"
                             if game.data.task.images else ""))
    return {"iteration": game.iteration, **metrics}
