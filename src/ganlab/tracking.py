"""Where a run's numbers go: a JSONL file and TensorBoard event files, in the run directory."""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Optional

from .errors import ConfigError


class Tracker:
    """Writes ``{"iteration": k, "kind": ..., "tag": value, ...}`` rows to ``metrics.jsonl`` and
    the same scalars to TensorBoard (``tb/``); without a run directory it keeps nothing. Files
    are opened on the first write, so a run directory that is only read stays untouched."""

    def __init__(self, run_dir: Optional[Path], mirror=None):
        self.run_dir = Path(run_dir) if run_dir else None
        self._tb = None
        self._jsonl = None
        self._purge_step: Optional[int] = None
        self.mirror = mirror if self.run_dir else None  # e.g. WandbMirror

    @property
    def tb(self):
        """The TensorBoard ``SummaryWriter`` (created on first use), or None without a run dir."""
        if self._tb is None and self.run_dir:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=self._purge_step)
        return self._tb

    def _file(self):
        if self._jsonl is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
        return self._jsonl

    def resume_at(self, iteration: int) -> None:
        """Continue a run from its checkpoint at ``iteration``: rows logged after it (by a run
        that went on and was killed) are dropped from ``metrics.jsonl``, and TensorBoard hides
        its events after it, so the resumed run logs each iteration once."""
        self.close()
        path = self.run_dir / "metrics.jsonl"
        if path.is_file():
            keep = [line for line in path.read_text().splitlines(keepends=True)
                    if line.strip() and _iteration(line) <= iteration]
            tmp = path.with_name(".metrics.jsonl.tmp")
            tmp.write_text("".join(keep))
            os.replace(tmp, path)
        self._purge_step = iteration + 1

    def log(self, iteration: int, scalars: dict, kind: str = "train") -> None:
        if not self.run_dir:
            return
        row = {"iteration": int(iteration), "kind": kind}
        for k, v in scalars.items():
            if v is None:  # undefined (e.g. precision with nothing predicted): null, no point
                row[k] = None
                continue
            if isinstance(v, (list, tuple, dict, str)):  # e.g. class counts: in the row only
                row[k] = v
                continue
            v = float(v)
            row[k] = v if math.isfinite(v) else str(v)
            self.tb.add_scalar(f"{kind}/{k}", v, int(iteration))
        self._file().write(json.dumps(row) + "\n")
        if self.mirror is not None:
            self.mirror.log(iteration, {f"{kind}/{k}": v for k, v in row.items()
                                        if k not in ("iteration", "kind")
                                        and isinstance(v, (int, float))})

    def event(self, iteration: int, kind: str, fields: dict) -> None:
        """A row of any JSON values (an alarm, a note) in ``metrics.jsonl``."""
        if self.run_dir:
            self._file().write(json.dumps({"iteration": int(iteration), "kind": kind,
                                           **fields}) + "\n")
            if self.mirror is not None:
                self.mirror.text(f"{kind}", json.dumps(fields), iteration)

    def text(self, tag: str, text: str, iteration: int) -> None:
        if self.run_dir:
            self.tb.add_text(tag, text, int(iteration))

    def image(self, tag: str, chw, iteration: int) -> None:
        if self.run_dir:
            self.tb.add_image(tag, chw, int(iteration), dataformats="CHW")
            if self.mirror is not None:
                self.mirror.image(tag, chw, iteration)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()
        if self.mirror is not None:
            self.mirror.finish()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None


class WandbMirror:
    """Mirrors a run's scalars, sample pictures and alarms to Weights & Biases. One W&B run per
    run folder (its id is derived from the folder, so ``ganlab resume`` continues it); in
    ``offline`` mode it writes ``RUN/wandb/`` for ``wandb sync`` later."""

    def __init__(self, cfg, run_dir: Path, config: dict):
        try:
            import wandb
        except ImportError:
            raise ConfigError("train.wandb: needs the wandb package: pip install "
                              "'ganlab[wandb]' (or pip install wandb)") from None
        self.wandb, self.cfg, self.run_dir, self.config = wandb, cfg, Path(run_dir), config
        self.run = None

    def _start(self):
        if self.run is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            run_id = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:12]
            self.run = self.wandb.init(
                project=self.cfg.project, entity=self.cfg.entity, mode=self.cfg.mode,
                name=self.cfg.name or self.run_dir.name, tags=list(self.cfg.tags),
                dir=str(self.run_dir), id=run_id, resume="allow", config=self.config,
                settings=self.wandb.Settings(silent=True))
        return self.run

    def log(self, iteration: int, scalars: dict) -> None:
        self._start().log(scalars, step=int(iteration))

    def image(self, tag: str, chw, iteration: int) -> None:
        import numpy as np
        hwc = np.asarray(chw).transpose(1, 2, 0)
        self._start().log({tag: self.wandb.Image(hwc)}, step=int(iteration))

    def text(self, tag: str, text: str, iteration: int) -> None:
        self._start().log({tag: self.wandb.Html(f"<pre>{text}</pre>")}, step=int(iteration))

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def _iteration(line: str) -> int:
    try:
        return int(json.loads(line).get("iteration", 0))
    except (ValueError, AttributeError):
        return 0


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def format_value(v) -> str:
    if v is None:
        return "undefined"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def print_metrics(metrics: dict, json_path: Optional[str] = None, header: str = "metric") -> None:
    """A markdown table of ``metrics`` (undefined values shown as such), then the same as JSON:
    written to ``json_path`` if given, else printed."""
    print(f"| {header} | value |\n|---|---|")
    for k, v in metrics.items():
        print(f"| {k} | {format_value(v)} |")
    text = json.dumps(metrics, indent=2)
    if json_path:
        Path(json_path).write_text(text)
        print(f"JSON: {json_path}")
    else:
        print(text)
