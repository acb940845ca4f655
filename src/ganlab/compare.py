"""Compare runs across seeds: per-metric tables (mean ± std and a bootstrap 95% CI of the mean per
configuration, values per seed), Welch's t-test and Hedges' g of each configuration against a
baseline with p-values corrected for the many tests (Benjamini-Hochberg), undefined values
counted, and a plot per metric with the mean curve and the min-max band across seeds.
Markdown + JSON + PNG.

A run's value of a metric is its last logged value: the last ``eval`` row for evaluation
metrics, the last ``train`` row for losses.
"""
from __future__ import annotations

import json
import math
import statistics
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from scipy.stats import bootstrap, false_discovery_control, ttest_ind

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
    """{configuration label: [run, ...]} from a sweep directory or run directories, in the
    order of the sweep's grid (then of the paths)."""
    groups: dict[str, list[dict]] = {}
    for p in map(Path, paths):
        spec = p / "sweep.json"
        if spec.is_file():
            for r in json.loads(spec.read_text())["runs"]:
                run_dir = p / r["dir"]
                groups.setdefault(r["combo"], [])
                if (run_dir / "metrics.jsonl").is_file():
                    groups[r["combo"]].append({**load_run(run_dir), "seed": r["seed"]})
        else:
            cfg = yaml.safe_load((p / "config.yaml").read_text()) if (p / "config.yaml").is_file() else {}
            label = cfg.get("name", p.name) if isinstance(cfg, dict) else p.name
            groups.setdefault(label, []).append({**load_run(p), "seed": (cfg or {}).get("seed")})
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        raise ConfigError(f"no runs with metrics found in {', '.join(paths)}")
    return groups


def welch(a: list[float], b: list[float], alternative: str) -> tuple[Optional[float], str]:
    """Welch's t-test p-value of ``a`` against ``b``, or None with the reason it does not
    apply (fewer than two values; no variance in either group)."""
    if len(a) < 2 or len(b) < 2:
        return None, "fewer than 2 values"
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return None, ("identical values" if a[0] == b[0] else
                      "no variance in either group: a t-test does not apply")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue
    return (float(p), "") if math.isfinite(p) else (None, "not defined")


def mean_ci(values: list[float], seed: int = 0, level: float = 0.95
            ) -> tuple[Optional[float], Optional[float]]:
    """A percentile bootstrap confidence interval of the mean (10,000 resamples)."""
    if not values:
        return None, None
    if len(values) < 2 or statistics.pstdev(values) == 0:
        return float(values[0]) if len(set(values)) == 1 else None, \
            float(values[0]) if len(set(values)) == 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap((np.asarray(values, dtype=float),), np.mean, confidence_level=level,
                        n_resamples=10_000, method="percentile",
                        rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def hedges_g(a: list[float], b: list[float]) -> Optional[float]:
    """The effect size of ``a`` against ``b``: the difference of means over the pooled standard
    deviation, with Hedges' small-sample correction."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    pooled = math.sqrt(((n1 - 1) * statistics.variance(a) + (n2 - 1) * statistics.variance(b))
                       / (n1 + n2 - 2))
    if pooled == 0:
        return None
    return (statistics.fmean(a) - statistics.fmean(b)) / pooled * (1 - 3 / (4 * (n1 + n2) - 9))


def _fmt(v, digits=4) -> str:
    return "undefined" if v is None else f"{v:.{digits}g}"


def compare(paths: list[str], out: str | Path, baseline: Optional[str] = None,
            alternative: str = "two-sided", metrics: Optional[list[str]] = None) -> str:
    """Tables per metric: each configuration's mean, standard deviation, bootstrap 95% CI of
    the mean and values per seed; against the baseline (``baseline``, else the first
    configuration of the sweep grid), Welch's t-test, Hedges' g, and the p-values corrected for
    the many tests (Benjamini-Hochberg over every metric and configuration). Writes
    ``report.md``, ``report.json`` and a plot per metric; returns the markdown."""
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"--alternative: {alternative!r}; valid: {', '.join(ALTERNATIVES)}")
    groups = collect(paths)
    if baseline is not None and baseline not in groups:
        raise ConfigError(f"--baseline: no configuration {baseline!r}; valid: "
                          f"{', '.join(groups)}")
    chosen = baseline is not None
    baseline = baseline if chosen else next(iter(groups))
    names = sorted({k for runs in groups.values() for r in runs for k in r["final"]})
    if metrics:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ConfigError(f"--metric: unknown {', '.join(unknown)}; valid: {', '.join(names)}")
        names = metrics
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    tests = []  # (metric, label, p) of every test made, for the correction
    for metric in names:
        every = [v for runs in groups.values() for r in runs
                 for v in [r["final"].get(metric)] if _is_num(v)]
        constant = len(set(every)) <= 1
        base_vals = [v for r in groups[baseline] for v in [r["final"].get(metric)] if _is_num(v)]
        for label, runs in groups.items():
            vals = [r["final"].get(metric) for r in runs]
            defined = [v for v in vals if _is_num(v)]
            low, high = mean_ci(defined)
            row = {"mean": statistics.fmean(defined) if defined else None,
                   "std": statistics.stdev(defined) if len(defined) > 1 else
                   (0.0 if defined else None),
                   "ci95": [low, high], "defined": len(defined), "runs": len(vals),
                   "values": vals, "seeds": [r["seed"] for r in runs], "constant": constant,
                   "p_value": None, "p_bh": None, "hedges_g": None, "note": ""}
            if label != baseline and len(groups) > 1:
                if constant:
                    row["note"] = "the same value in every run"
                else:
                    row["p_value"], row["note"] = welch(defined, base_vals, alternative)
                    row["hedges_g"] = hedges_g(defined, base_vals)
                    if row["p_value"] is not None:
                        tests.append((metric, label, row["p_value"]))
            summary.setdefault(metric, {})[label] = row
    if tests:
        adjusted = false_discovery_control([p for _, _, p in tests], method="bh")
        for (metric, label, _), q in zip(tests, adjusted):
            summary[metric][label]["p_bh"] = float(q)
    md = _markdown(summary, groups, baseline, chosen, alternative, len(tests), out)
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    return md


def _markdown(summary, groups, baseline, chosen, alternative, n_tests, out: Path) -> str:
    md = [f"# Comparison of {sum(map(len, groups.values()))} runs in {len(groups)} "
          f"configurations", ""]
    if len(groups) > 1:
        what = ("the configuration's mean differs from the baseline's"
                if alternative == "two-sided" else
                f"the configuration's mean is {alternative} than the baseline's")
        why = "" if chosen else (" (the first configuration of the sweep grid; choose another "
                                 "with --baseline)")
        md += [f"Baseline: `{baseline}`{why}. Each other configuration is tested against it "
               f"with Welch's t-test, alternative `{alternative}` ({what}); g is Hedges' effect "
               f"size (the difference of means in pooled standard deviations); p (BH) is the "
               f"p-value corrected by Benjamini-Hochberg for the {n_tests} tests of this "
               f"report. The 95% CI of each mean is a percentile bootstrap over its runs.", ""]
    for metric, rows in summary.items():
        md += [f"## {metric}", "",
               "| configuration | mean ± std | 95% CI of the mean | defined / runs | per seed "
               "| g | p | p (BH) |", "|---|---|---|---|---|---|---|---|"]
        for label, r in rows.items():
            per_seed = ", ".join(f"s{s}: {_fmt(v)}" for s, v in zip(r["seeds"], r["values"]))
            ci = (f"[{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]" if r["ci95"][0] is not None
                  else "-")
            if label == baseline:
                test = "baseline | - | -"
            elif r["p_value"] is None:
                test = f"- | {r['note'] or '-'} | -"
            else:
                test = f"{_fmt(r['hedges_g'], 3)} | {_fmt(r['p_value'], 3)} | {_fmt(r['p_bh'], 3)}"
            md.append(f"| {label} | {_fmt(r['mean'])} ± {_fmt(r['std'])} | {ci} | "
                      f"{r['defined']} / {r['runs']} | {per_seed} | {test} |")
        first = next(iter(rows.values()))
        if first["constant"]:
            md += ["", f"Every run has the same value ({_fmt(first['mean'])}): nothing to test "
                       "or plot."]
        else:
            plot = _plot(metric, groups, out)
            if plot:
                md += ["", f"![{metric}]({plot.name})"]
        md.append("")
    return "\n".join(md)


def _plot(metric: str, groups: dict, out: Path) -> Optional[Path]:
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
        parts = [f"{label} {_fmt(r['mean'])}" + (f" (p {_fmt(r['p_value'], 3)}, BH "
                                                 f"{_fmt(r['p_bh'], 3)})"
                                                 if r.get("p_value") is not None else "")
                 for label, r in rows.items()]
        lines.append(f"{metric}: " + "; ".join(parts))
    if len(report) > limit:
        lines.append(f"... and {len(report) - limit} more metrics in the report")
    return lines
