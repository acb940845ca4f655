"""Compare runs across seeds: per-metric tables (mean ± std per configuration, values per seed),
Welch's t-test of each configuration against a baseline, undefined values counted, and a plot
per metric with the mean curve and the min-max band across seeds. Markdown + PNG.

A run's value of a metric is its last logged value: the last ``eval`` row for evaluation
metrics, the last ``train`` row for losses.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Optional

from .registry import ConfigError
from .tracking import read_jsonl
from .viz import _plt

ALTERNATIVES = ("two-sided", "less", "greater")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_run(run_dir: Path) -> dict:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no metrics.jsonl)")
    rows = read_jsonl(path)
    final: dict = {}
    series: dict = {}
    for row in rows:
        kind = row.get("kind", "train")
        if kind not in ("train", "eval"):
            continue
        for k, v in row.items():
            if k in ("iteration", "kind", "seconds"):
                continue
            final[k] = v if (v is None or _is_num(v)) else None
            if _is_num(v):
                series.setdefault(k, []).append((row["iteration"], float(v)))
    return {"dir": str(run_dir), "final": final, "series": series}


def collect(paths: list[str]) -> dict[str, list[dict]]:
    """{configuration label: [run, ...]} from a sweep directory or run directories."""
    groups: dict[str, list[dict]] = {}
    for p in map(Path, paths):
        spec = p / "sweep.json"
        if spec.is_file():
            for r in json.loads(spec.read_text())["runs"]:
                run_dir = p / r["dir"]
                if (run_dir / "metrics.jsonl").is_file():
                    groups.setdefault(r["combo"], []).append({**load_run(run_dir),
                                                              "seed": r["seed"]})
        else:
            import yaml
            cfg = yaml.safe_load((p / "config.yaml").read_text()) if (p / "config.yaml").is_file() else {}
            label = cfg.get("name", p.name) if isinstance(cfg, dict) else p.name
            groups.setdefault(label, []).append({**load_run(p), "seed": (cfg or {}).get("seed")})
    if not groups:
        raise ConfigError(f"no runs with metrics found in {', '.join(paths)}")
    return groups


def welch(a: list[float], b: list[float], alternative: str) -> Optional[float]:
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind
    p = ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue
    return float(p) if math.isfinite(p) else None


def _fmt(v, digits=4) -> str:
    return "undefined" if v is None else f"{v:.{digits}g}"


def compare(paths: list[str], out: str | Path, baseline: Optional[str] = None,
            alternative: str = "two-sided", metrics: Optional[list[str]] = None) -> str:
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"--alternative: {alternative!r}; valid: {', '.join(ALTERNATIVES)}")
    groups = collect(paths)
    if baseline is not None and baseline not in groups:
        raise ConfigError(f"--baseline: no configuration {baseline!r}; valid: "
                          f"{', '.join(groups)}")
    names = sorted({k for runs in groups.values() for r in runs for k in r["final"]})
    if metrics:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ConfigError(f"--metric: unknown {', '.join(unknown)}; valid: {', '.join(names)}")
        names = metrics
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# Comparison of {sum(map(len, groups.values()))} runs in {len(groups)} "
          f"configurations", ""]
    if baseline:
        what = ("the configuration's mean differs from the baseline's"
                if alternative == "two-sided" else
                f"the configuration's mean is {alternative} than the baseline's")
        md += [f"Welch's t-test of each configuration against `{baseline}`, alternative "
               f"`{alternative}`: {what}.", ""]
    summary = {}
    for metric in names:
        every = [v for runs in groups.values() for r in runs
                 for v in [r["final"].get(metric)] if _is_num(v)]
        constant = len(set(every)) <= 1  # nothing to test or plot
        md += [f"## {metric}", "", "| configuration | mean ± std | defined / runs | per seed |"
               + (" p-value |" if baseline else ""),
               "|---|---|---|---|" + ("---|" if baseline else "")]
        base_vals = None
        if baseline:
            base_vals = [r["final"].get(metric) for r in groups[baseline]]
            base_vals = [v for v in base_vals if _is_num(v)]
        for label, runs in groups.items():
            vals = [r["final"].get(metric) for r in runs]
            defined = [v for v in vals if _is_num(v)]
            mean = statistics.fmean(defined) if defined else None
            std = statistics.stdev(defined) if len(defined) > 1 else (0.0 if defined else None)
            per_seed = ", ".join(f"s{r['seed']}: {_fmt(v)}" for r, v in zip(runs, vals))
            row = f"| {label} | {_fmt(mean)} ± {_fmt(std)} | {len(defined)} / {len(vals)} | {per_seed} |"
            p = None
            if baseline:
                p = None if (label == baseline or constant) else welch(defined, base_vals,
                                                                        alternative)
                row += f" {'-' if label == baseline or constant else _fmt(p, 3)} |"
            md.append(row)
            summary.setdefault(metric, {})[label] = {
                "mean": mean, "std": std, "defined": len(defined), "runs": len(vals),
                "values": vals, "p_value": p, "constant": constant}
        plot = None if constant else _plot(metric, groups, out)
        if constant:
            md += ["", f"Every run has the same value ({_fmt(every[0]) if every else 'undefined'})"
                       ": nothing to test or plot."]
        if plot:
            md += ["", f"![{metric}]({plot.name})"]
        md.append("")
    text = "\n".join(md)
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    return text


def _plot(metric: str, groups: dict, out: Path) -> Optional[Path]:
    import numpy as np

    curves = {}
    for label, runs in groups.items():
        series = [dict(r["series"][metric]) for r in runs if metric in r["series"]]
        if not series:
            continue
        steps = sorted(set().union(*[s.keys() for s in series]))
        vals = np.array([[s.get(t, np.nan) for t in steps] for s in series], dtype=float)
        curves[label] = (np.array(steps), vals)
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, (steps, vals) in curves.items():
        with np.errstate(all="ignore"):
            mean = np.nanmean(vals, 0)
        ax.plot(steps, mean, label=label)
        ax.fill_between(steps, np.nanmin(vals, 0), np.nanmax(vals, 0), alpha=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean and min-max across seeds")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = out / ("".join(c if c.isalnum() or c in "-_." else "_" for c in metric) + ".png")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def compare_summary(out: str | Path, limit: int = 8) -> list[str]:
    """A few lines of a comparison's ``report.json``: per metric, each configuration's mean and
    the baseline test's p-value."""
    report = json.loads((Path(out) / "report.json").read_text())
    lines = []
    for metric, rows in list(report.items())[:limit]:
        if all(r.get("constant") for r in rows.values()):
            value = next((r["mean"] for r in rows.values() if r["mean"] is not None), None)
            lines.append(f"{metric}: {_fmt(value)} in every run (nothing to test)")
            continue
        parts = [f"{label} {_fmt(r['mean'])}" + (f" (p {_fmt(r['p_value'], 3)})"
                                                 if r.get("p_value") is not None else "")
                 for label, r in rows.items()]
        lines.append(f"{metric}: " + "; ".join(parts))
    if len(report) > limit:
        lines.append(f"... and {len(report) - limit} more metrics in the report")
    return lines
