"""``ganlab report RUN_OR_SWEEP``: one self-contained HTML page per run or sweep.

Everything is in the file (pictures as data URIs, styles inline, no script, nothing fetched),
so it opens anywhere, offline, and can be mailed. A run's page: its config, the sample
pictures over training, the loss curves and every evaluated metric's curve (matplotlib), the
last evaluation's metrics beside their real-vs-real floors, the alarms, and the thread-count
changes. A sweep's page: the sweep, each metric's comparison table (means, bootstrap CIs,
effect sizes, corrected p-values; :mod:`ganlab.compare`) with its min-max band across seeds,
and a link-free summary of every run. ``ganlab train``, ``resume`` and ``sweep`` write it at
the end (``report.html`` in the run or sweep folder).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Optional

import yaml

from .compare import compare
from .errors import ConfigError
from .tracking import read_jsonl
from .viz import _plt

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid figure{margin:0}
figcaption{font-size:.8em;color:#555;text-align:center}
img{max-width:100%}.alarm{color:#a00}.note{color:#555;font-size:.9em}
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _img(png: bytes, alt: str, caption: str = "", width: Optional[int] = None) -> str:
    w = f' style="width:{width}px;height:auto"' if width else ""
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="{_data_uri(png)}" alt="{html.escape(alt)}"{w}>{cap}'
            "</figure>")


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return "undefined"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return html.escape(str(v))


def _curves(rows: list[dict], kind: str, title: str, keys: Optional[list[str]] = None,
            per_plot: int = 6) -> list[bytes]:
    """Line plots of ``kind`` rows' numeric series, a few series per plot."""
    series: dict[str, list] = {}
    for r in rows:
        if r.get("kind") != kind:
            continue
        for k, v in r.items():
            if k in ("iteration", "kind", "seconds") or not isinstance(v, (int, float)) \
                    or isinstance(v, bool):
                continue
            if keys is None or k in keys:
                series.setdefault(k, []).append((r["iteration"], float(v)))
    names = [k for k in sorted(series) if len({v for _, v in series[k]}) > 1 or kind == "train"]
    out = []
    plt = _plt()
    for i in range(0, len(names), per_plot):
        fig, ax = plt.subplots(figsize=(7.5, 3.4))
        for k in names[i:i + per_plot]:
            its, vals = zip(*series[k])
            ax.plot(its, vals, label=k, linewidth=1.2)
        ax.set_xlabel("iteration")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out.append(_figure_png(fig))
    return out


def run_report(run_dir: str | Path, out: Optional[str | Path] = None, samples: int = 8) -> Path:
    """The page of one run folder (``out``: default ``RUN/report.html``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a ganlab run directory (no config.yaml) and not a "
                          "sweep (no sweep.json)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    rows = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    alarms = [r for r in rows if r.get("kind") == "alarm"]
    threads = [r for r in rows if r.get("kind") == "system"]
    parts = [f"<h1>{html.escape(cfg.get('name', run_dir.name))}: {html.escape(str(run_dir))}</h1>"]
    if cfg.get("description"):
        parts.append(f"<p>{html.escape(cfg['description'])}</p>")
    last = train[-1] if train else {}
    losses = ", ".join(f"{k} {_fmt(v)}" for k, v in last.items()
                       if k.endswith("_loss") and isinstance(v, (int, float)))
    parts.append("<h2 id='summary'>Summary</h2>" + _table(
        ["iterations", "training time", "last losses", "evaluations", "alarms"],
        [[_fmt(last.get("iteration", 0)), f"{last.get('seconds', 0):.1f} s" if last else "-",
          losses or "-", str(len(evals)), str(len(alarms))]]))
    pictures = sorted((run_dir / "samples").glob("iter_*.png")) if (run_dir / "samples").is_dir() \
        else []
    if len(pictures) > samples:
        step = (len(pictures) - 1) / (samples - 1)
        pictures = [pictures[round(i * step)] for i in range(samples)]
    parts.append("<h2 id='samples'>Samples over training</h2>")
    parts.append("<div class='grid'>" + "".join(
        _img(p.read_bytes(), p.stem, f"iteration {int(p.stem.split('_')[1])}", 320)
        for p in pictures) + "</div>" if pictures else "<p class='note'>No samples were "
        "written (train.sample_every).</p>")
    parts.append("<h2 id='curves'>Losses and metrics</h2>")
    plots = _curves(rows, "train", "losses (interval means)") + _curves(rows, "eval", "metrics")
    parts.append("<div class='grid'>" + "".join(_img(p, "curve") for p in plots) + "</div>"
                 if plots else "<p class='note'>Nothing logged yet.</p>")
    parts.append("<h2 id='metrics'>Metrics at the last evaluation</h2>")
    if evals:
        final = evals[-1]
        metric_rows = []
        for k, v in final.items():
            if k in ("iteration", "kind") or k.startswith("real_vs_real/"):
                continue
            floor = final.get(f"real_vs_real/{k}")
            metric_rows.append([html.escape(k), _fmt(v), _fmt(floor) if floor is not None
                                else ""])
        parts.append(f"<p>Iteration {final['iteration']}.</p>" + _table(
            ["metric", "value", "real-vs-real floor"], metric_rows))
    else:
        parts.append("<p class='note'>No evaluation during training (train.eval_every); "
                     "<code>ganlab evaluate RUN</code> scores a run afterwards.</p>")
    parts.append("<h2 id='alarms'>Alarms</h2>")
    parts.append(_table(["iteration", "alarm", "value", "threshold", "what it means"],
                        [[str(a["iteration"]), f"<span class='alarm'>{html.escape(a['alarm'])}"
                          "</span>", _fmt(a.get("value")), _fmt(a.get("threshold")),
                          html.escape(a.get("message", ""))] for a in alarms])
                 if alarms else "<p>None raised.</p>")
    if threads:
        parts.append("<h2 id='threads'>Threads</h2>" + _table(
            ["iteration", "intra-op threads"],
            [[str(r["iteration"]), str(r.get("threads"))] for r in threads]))
    parts.append("<h2 id='config'>Config</h2><pre>" + html.escape(
        yaml.safe_dump(cfg, sort_keys=False)) + "</pre>")
    return _write(parts, f"ganlab report: {cfg.get('name', run_dir.name)}",
                  Path(out) if out else run_dir / "report.html")


def sweep_report(sweep_dir: str | Path, out: Optional[str | Path] = None,
                 baseline: Optional[str] = None) -> Path:
    """The page of a sweep folder: the comparison of its configurations."""
    sweep_dir = Path(sweep_dir)
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    cmp_dir = sweep_dir / "compare"
    compare([str(sweep_dir)], cmp_dir, baseline=baseline)
    report = json.loads((cmp_dir / "report.json").read_text())
    parts = [f"<h1>Sweep: {html.escape(str(sweep_dir))}</h1>",
             "<h2 id='summary'>Summary</h2>" + _table(
                 ["config", "grid", "seeds", "runs", "overrides"],
                 [[html.escape(spec["config"]), html.escape(" ".join(spec["grid"]) or "-"),
                   str(spec["seeds"]), str(len(spec["runs"])),
                   html.escape(" ".join(spec.get("overrides", [])) or "-")]])]
    text = (cmp_dir / "report.md").read_text()
    intro = next((line for line in text.splitlines() if line.startswith("Baseline:")), "")
    parts.append("<h2 id='comparison'>Comparison</h2>")
    if intro:
        parts.append(f"<p>{html.escape(intro).replace('`', '')}</p>")
    for metric, rows in report.items():
        parts.append(f"<h3>{html.escape(metric)}</h3>")
        table = []
        for label, r in rows.items():
            ci = (f"[{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]"
                  if r["ci95"][0] is not None else "-")
            test = (["baseline", "-", "-"] if r["p_value"] is None and not r["note"] else
                    [_fmt(r["hedges_g"]), _fmt(r["p_value"]), _fmt(r["p_bh"])]
                    if r["p_value"] is not None else ["-", html.escape(r["note"]), "-"])
            table.append([html.escape(label), f"{_fmt(r['mean'])} ± {_fmt(r['std'])}", ci,
                          f"{r['defined']} / {r['runs']}", *test])
        parts.append(_table(["configuration", "mean ± std", "95% CI", "defined / runs", "g",
                             "p", "p (BH)"], table))
        plot = cmp_dir / ("".join(c if c.isalnum() or c in "-_." else "_" for c in metric)
                          + ".png")
        if plot.is_file():
            parts.append(_img(plot.read_bytes(), f"{metric} across seeds",
                              "mean and min-max band across seeds"))
    parts.append("<h2 id='runs'>Runs</h2>")
    run_rows = []
    for r in spec["runs"]:
        rows = read_jsonl(sweep_dir / r["dir"] / "metrics.jsonl") \
            if (sweep_dir / r["dir"] / "metrics.jsonl").is_file() else []
        alarms = sum(1 for x in rows if x.get("kind") == "alarm")
        last = next((x for x in reversed(rows) if x.get("kind") == "train"), {})
        run_rows.append([html.escape(r["combo"]), str(r["seed"]), html.escape(r["dir"]),
                         _fmt(last.get("iteration")), str(alarms)])
    parts.append(_table(["configuration", "seed", "folder", "iterations", "alarms"], run_rows))
    return _write(parts, f"ganlab report: sweep {sweep_dir.name}",
                  Path(out) if out else sweep_dir / "report.html")


def report(path: str | Path, out: Optional[str | Path] = None) -> Path:
    """The page of a run folder or a sweep folder."""
    path = Path(path)
    if (path / "sweep.json").is_file():
        return sweep_report(path, out)
    return run_report(path, out)


def _write(parts: list[str], title: str, out: Path) -> Path:
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "<p class='note'>Written by ganlab.</p></body></html>")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
