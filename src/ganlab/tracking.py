"""Where a run's numbers go: a JSONL file and TensorBoard event files, in the run directory."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional


class Tracker:
    """Writes ``{"iteration": k, "tag": value, ...}`` rows to ``metrics.jsonl`` and the same scalars
    to TensorBoard (``tb/``); without a run directory it keeps nothing."""

    def __init__(self, run_dir: Optional[Path]):
        self.run_dir = Path(run_dir) if run_dir else None
        self._tb = None
        self._jsonl = None
        if self.run_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)

    @property
    def tb(self):
        """The TensorBoard ``SummaryWriter`` (created on first use), or None without a run dir."""
        if self._tb is None and self.run_dir:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"))
        return self._tb

    def log(self, iteration: int, scalars: dict, kind: str = "train") -> None:
        if not self.run_dir:
            return
        row = {"iteration": int(iteration), "kind": kind}
        for k, v in scalars.items():
            if v is None:  # undefined (e.g. precision with nothing predicted): null, no point
                row[k] = None
                continue
            v = float(v)
            row[k] = v if math.isfinite(v) else str(v)
            self.tb.add_scalar(f"{kind}/{k}", v, int(iteration))
        self._jsonl.write(json.dumps(row) + "\n")

    def image(self, tag: str, chw, iteration: int) -> None:
        if self.run_dir:
            self.tb.add_image(tag, chw, int(iteration), dataformats="CHW")

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None


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
