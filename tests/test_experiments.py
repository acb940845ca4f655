"""Sweeps and comparisons, with real runs in subprocesses."""
import json
import subprocess
import sys

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
    assert welch([1.0], [2.0, 3.0], "two-sided") is None  # too few to test


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
