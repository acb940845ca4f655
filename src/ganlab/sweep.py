"""Sweeps: every combination of a grid times every seed, each a normal run directory.

``ganlab sweep CONFIG --seeds N --grid key=v1,v2 [--grid ...] --out DIR`` lays runs out as
``DIR/<combo>/seed<k>/`` with ``DIR/sweep.json`` describing the sweep. Runs go to parallel local
processes (``--jobs``). A killed sweep resumes: finished runs (a checkpoint at the configured
iteration count) are skipped, interrupted ones continue from their last checkpoint.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .checkpoint import CheckpointError, safe_load
from .config import load_config
from .registry import ConfigError
from .report import sweep_report
from .threads import usable_cores


@dataclass
class SweepRun:
    combo: str  # e.g. "optim.g.lr=0.001,model.init=smart" ("baseline" for an empty grid)
    seed: int
    overrides: list
    run_dir: Path


def parse_grid(specs: list[str]) -> list[tuple[str, list]]:
    grid = []
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--grid {spec!r}: expected KEY=V1,V2,...")
        key, values = spec.split("=", 1)
        vals = [v for v in values.split(",") if v != ""]
        if not vals:
            raise ConfigError(f"--grid {spec!r}: no values")
        grid.append((key.strip(), vals))
    return grid


def combo_name(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs) or "baseline"


def _dir_name(combo: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=," else "_" for c in combo)


def plan(config: str, seeds: int, grid_specs: list[str], out: Path,
         overrides: Optional[list[str]] = None) -> list[SweepRun]:
    grid = parse_grid(grid_specs)
    runs = []
    keys = [k for k, _ in grid]
    for values in itertools.product(*[v for _, v in grid]) if grid else [()]:
        pairs = list(zip(keys, values))
        combo = combo_name(pairs)
        sets = list(overrides or []) + [f"{k}={v}" for k, v in pairs]
        for seed in range(seeds):
            cfg_sets = sets + [f"seed={seed}"]
            load_config(config, cfg_sets)  # validate every combination before starting any
            runs.append(SweepRun(combo, seed, cfg_sets, out / _dir_name(combo) / f"seed{seed}"))
    return runs


def run_state(run: SweepRun, target: int) -> str:
    """'done', 'partial' (a checkpoint below the target) or 'new'."""
    latest = run.run_dir / "checkpoints" / "latest.pt"
    if not latest.exists():
        return "new"
    try:
        it = safe_load(latest)["iteration"]
    except CheckpointError:
        return "new"
    return "done" if it >= target else "partial"


def _command(config: str, run: SweepRun, state: str) -> list[str]:
    base = [sys.executable, "-m", "ganlab"]
    if state == "partial":
        return base + ["resume", str(run.run_dir)]
    cmd = base + ["train", config, "--out", str(run.run_dir)]
    for s in run.overrides:
        cmd += ["--set", s]
    return cmd


def sweep(config: str, seeds: int, grid_specs: list[str], out: str | Path, jobs: int = 2,
          backend: str = "local", overrides: Optional[list[str]] = None,
          threads_per_run: Optional[int] = None, log=print) -> list[dict]:
    out = Path(out)
    runs = plan(config, seeds, grid_specs, out, overrides)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({
        "config": config, "seeds": seeds, "grid": grid_specs, "overrides": overrides or [],
        "runs": [{"combo": r.combo, "seed": r.seed, "dir": str(r.run_dir.relative_to(out))}
                 for r in runs]}, indent=2))
    target = {}
    todo = []
    for r in runs:
        target[r.run_dir] = load_config(config, r.overrides).train.iterations
        state = run_state(r, target[r.run_dir])
        if state == "done":
            log(f"skip (finished): {r.run_dir}")
            continue
        if state == "new" and r.run_dir.exists():
            # a run killed before its first checkpoint: start it again from scratch
            shutil.rmtree(r.run_dir)
        todo.append((r, state))
    # jobs x threads should not exceed the cores, and a fixed count keeps seeds comparable
    threads_per_run = threads_per_run or max(1, usable_cores() // max(1, jobs))
    log(f"{len(runs)} runs, {len(todo)} to do, {jobs} at a time ({backend}), "
        f"{threads_per_run} thread(s) each")
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads_per_run)
    for r, _ in todo:
        r.overrides = r.overrides + [f"train.threads={threads_per_run}"]
    if backend == "ray":
        results = _run_ray(config, todo, jobs, env)
    elif backend == "local":
        results = _run_local(config, todo, jobs, env)
    else:
        raise ConfigError(f"--backend: unknown backend {backend!r}; valid: local, ray")
    failed = [r for r in results if r["returncode"] != 0]
    for r in results:
        log(f"{'ok' if r['returncode'] == 0 else 'FAILED'}: {r['dir']}"
            + (f"\n{r['stderr'][-2000:]}" if r["returncode"] else ""))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(results)} runs failed; rerun the sweep to "
                           "retry them (finished runs are skipped)")
    log(f"report: {sweep_report(out)}")
    return results


def _execute(config: str, run: SweepRun, state: str, env: dict) -> dict:
    p = subprocess.run(_command(config, run, state), capture_output=True, text=True, env=env)
    return {"dir": str(run.run_dir), "returncode": p.returncode, "stderr": p.stderr}


def _run_local(config, todo, jobs, env) -> list[dict]:
    with ThreadPoolExecutor(max(1, jobs)) as pool:  # each run is its own process
        return list(pool.map(lambda rs: _execute(config, rs[0], rs[1], env), todo))


def _run_ray(config, todo, jobs, env) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs the ray package (pip install 'ray[default]')")
    started = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address) if address else ray.init(num_cpus=max(1, jobs))
        started = True
    remote = ray.remote(num_cpus=1)(_execute)
    try:
        return ray.get([remote.remote(config, r, s, env) for r, s in todo])
    finally:
        if started:
            ray.shutdown()


def read_sweep(path: str | Path) -> dict:
    path = Path(path)
    spec = path / "sweep.json"
    if not spec.is_file():
        raise ConfigError(f"{path}: not a sweep directory (no sweep.json)")
    return json.loads(spec.read_text())

