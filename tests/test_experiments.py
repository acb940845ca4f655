"""Sweeps and comparisons, with real runs in subprocesses."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ganlab.compare import collect, compare, welch
from ganlab.registry import ConfigError
from ganlab.sweep import plan, run_state, sweep

TINY = ["train.iterations=12", "train.eval_every=6", "train.checkpoint_every=6",
        "train.sample_every=100", "data.args={n: 512}", "data.batch_size=32",
        "model.generator.args={hidden: 8, layers: 1, norm: batch}",
        "model.discriminator.args={hidden: 8, layers: 1}"]


def test_sweep_runs_every_combination_and_seed_and_resumes(tmp_path):
    out = tmp_path / "sw"
    logs = []
    sweep("ring8", 2, ["optim.g.lr=1e-3,2e-3", "loss.name=nonsaturating,lsgan"], out, jobs=2,
          overrides=TINY, threads_per_run=1, log=logs.append)
    spec = json.loads((out / "sweep.json").read_text())
    assert len(spec["runs"]) == 8
    combos = {r["combo"] for r in spec["runs"]}
    assert "optim.g.lr=2e-3,loss.name=lsgan" in combos
    for r in spec["runs"]:
        assert (out / r["dir"] / "checkpoints" / "latest.pt").is_file()
    # a killed sweep: one run lost entirely, one stopped half-way
    runs = plan("ring8", 2, ["optim.g.lr=1e-3,2e-3", "loss.name=nonsaturating,lsgan"], out, TINY)
    import shutil
    shutil.rmtree(runs[0].run_dir)
    from ganlab.run import start
    from ganlab.config import load_config
    shutil.rmtree(runs[1].run_dir)
    g = start(load_config("ring8", runs[1].overrides), runs[1].run_dir)
    g.play(6)
    g.run_lock.release()  # the killed process's lock goes with it
    assert run_state(runs[1], 12) == "partial" and run_state(runs[2], 12) == "done"
    logs.clear()
    sweep("ring8", 2, ["optim.g.lr=1e-3,2e-3", "loss.name=nonsaturating,lsgan"], out, jobs=2,
          overrides=TINY, log=logs.append)
    assert sum("skip (finished)" in line for line in logs) == 6
    assert "8 runs, 2 to do" in "\n".join(logs)
    assert all(run_state(r, 12) == "done" for r in runs)


def test_sweep_validates_every_combination_first(tmp_path):
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        sweep("ring8", 1, ["loss.name=lsgan,nope"], tmp_path / "x", overrides=TINY)
    assert not (tmp_path / "x").exists()


def _fake_run(path, seed, values):
    path.mkdir(parents=True)
    with open(path / "metrics.jsonl", "w") as fh:
        for i, v in enumerate(values):
            fh.write(json.dumps({"iteration": 10 * (i + 1), "kind": "eval", "acc": v}) + "\n")
    (path / "config.yaml").write_text(f"name: cfg\nseed: {seed}\n")


def test_compare_tables_welch_and_undefined(tmp_path):
    from scipy.stats import ttest_ind
    sw = tmp_path / "sw"
    a, b = [0.5, 0.6, 0.55], [0.7, 0.8, None]
    runs = []
    for combo, vals in (("base", a), ("new", b)):
        for seed, v in enumerate(vals):
            d = f"{combo}/seed{seed}"
            _fake_run(sw / d, seed, [0.1, v])
            runs.append({"combo": combo, "seed": seed, "dir": d})
    (sw / "sweep.json").write_text(json.dumps({"runs": runs}))
    text = compare([str(sw)], tmp_path / "rep", baseline="base", alternative="greater")
    report = json.loads((tmp_path / "rep" / "report.json").read_text())["acc"]
    assert report["new"]["defined"] == 2 and report["new"]["runs"] == 3  # undefined counted
    expected = ttest_ind([0.7, 0.8], a, equal_var=False, alternative="greater").pvalue
    assert report["new"]["p_value"] == pytest.approx(expected)
    assert report["base"]["mean"] == pytest.approx(0.55)
    assert "s2: undefined" in text and "2 / 3" in text
    assert (tmp_path / "rep" / "acc.png").is_file()
    with pytest.raises(ConfigError, match="--baseline: no configuration 'nope'"):
        compare([str(sw)], tmp_path / "rep", baseline="nope")
    assert welch([1.0], [2.0, 3.0], "two-sided") == (None, "fewer than 2 values")


def _sweep_of(tmp_path, configs: dict) -> Path:
    sw = tmp_path / "sw"
    runs = []
    for combo, vals in configs.items():
        for seed, v in enumerate(vals):
            d = f"{combo}/seed{seed}"
            _fake_run(sw / d, seed, [0.1, v])
            runs.append({"combo": combo, "seed": seed, "dir": d})
    (sw / "sweep.json").write_text(json.dumps({"runs": runs}))
    return sw


def test_compare_confidence_intervals_effect_sizes_and_many_tests(tmp_path):
    import numpy as np
    from scipy.stats import bootstrap, false_discovery_control
    configs = {"lr=1": [0.50, 0.52, 0.55, 0.49], "lr=2": [0.60, 0.62, 0.66, 0.58],
               "lr=3": [0.51, 0.50, 0.56, 0.48], "lr=4": [0.70, 0.71, 0.69, 0.72]}
    text = compare([str(_sweep_of(tmp_path, configs))], tmp_path / "rep")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())["acc"]
    # no --baseline: the sweep grid's first configuration, and the report says so
    assert "Baseline: `lr=1` (the first configuration of the sweep grid" in text
    assert rep["lr=1"]["p_value"] is None and rep["lr=2"]["p_value"] is not None
    want = bootstrap((np.array(configs["lr=2"]),), np.mean, n_resamples=10_000,
                     method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert rep["lr=2"]["ci95"] == pytest.approx([want.low, want.high])
    assert want.low < rep["lr=2"]["mean"] < want.high
    a, b = np.array(configs["lr=2"]), np.array(configs["lr=1"])
    pooled = np.sqrt((3 * a.var(ddof=1) + 3 * b.var(ddof=1)) / 6)
    assert rep["lr=2"]["hedges_g"] == pytest.approx((a.mean() - b.mean()) / pooled
                                                    * (1 - 3 / (4 * 8 - 9)))
    ps = [rep[c]["p_value"] for c in ("lr=2", "lr=3", "lr=4")]
    bh = false_discovery_control(ps, method="bh")
    assert [rep[c]["p_bh"] for c in ("lr=2", "lr=3", "lr=4")] == pytest.approx(list(bh))
    assert rep["lr=3"]["p_bh"] >= rep["lr=3"]["p_value"]  # corrected upwards
    assert "| g | p | p (BH) |" in text


def test_compare_of_identical_values_says_so_without_warnings(tmp_path, recwarn):
    sw = _sweep_of(tmp_path, {"a": [0.5, 0.5, 0.5], "b": [0.5, 0.5, 0.5], "c": [0.7, 0.7, 0.7],
                              "d": [0.6, 0.62, 0.64]})
    text = compare([str(sw)], tmp_path / "rep", baseline="a")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())["acc"]
    assert rep["b"]["note"] == "identical values" and rep["b"]["p_value"] is None
    assert "a t-test does not apply" in rep["c"]["note"]
    assert rep["d"]["p_value"] is not None
    assert not [w for w in recwarn if "scipy" in str(w.filename) or "Precision" in str(w.message)]
    assert "identical values" in text


def test_loss_name_shorthand_in_grids_and_sets():
    from ganlab.config import load_config
    assert load_config("ring8", ["loss=hinge"]).loss.name == "hinge"
    runs = plan("ring8", 1, ["loss=lsgan,hinge"], Path("/tmp/x"), TINY)
    assert [load_config("ring8", r.overrides).loss.name for r in runs] == ["lsgan", "hinge"]


def test_compare_and_sweep_commands(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ganlab", "sweep", "ring8", "--seeds", "2",
                        "--grid", "optim.d.lr=1e-3,3e-3", "--out", str(tmp_path / "s"),
                        "--jobs", "2", "--threads", "1"] + sum([["--set", s] for s in TINY], []),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "ganlab", "compare", str(tmp_path / "s"),
                        "--baseline", "optim.d.lr=1e-3", "--metric", "modes_captured"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "s" / "compare" / "report.md").read_text()
    assert "## modes_captured" in report and "p-value" in report
    # the command prints a short summary and where the report is, not the report itself
    assert r.stdout.startswith("modes_captured: ") and "report: " in r.stdout
    assert "## modes_captured" not in r.stdout and len(r.stdout.splitlines()) <= 3
    assert collect([str(tmp_path / "s")]).keys() == {"optim.d.lr=1e-3", "optim.d.lr=3e-3"}


def test_sweep_on_a_local_ray_instance(tmp_path):
    import ray
    out = tmp_path / "ray"
    try:
        sweep("ring8", 2, ["optim.g.lr=1e-3"], out, jobs=2, backend="ray", overrides=TINY,
              threads_per_run=1, log=lambda *_: None)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    for seed in (0, 1):
        assert run_state(plan("ring8", 2, ["optim.g.lr=1e-3"], out, TINY)[seed], 12) == "done"
    assert not ray.is_initialized()  # the sweep shuts down the instance it started
