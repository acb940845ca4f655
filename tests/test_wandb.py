"""Mirroring to Weights & Biases, in offline mode: what the real wandb writer wrote is read back
from its run file."""
import json
import re
import time

import pytest

from ganlab.config import load_config
from ganlab.errors import ConfigError
from ganlab.run import resume, start, train

from helpers import tiny_config

wandb = pytest.importorskip("wandb", reason="wandb is not installed (pip install -e "
                                            "'.[wandb]'): no mirroring to test")


def logged_values(run_file, key: str) -> list[float]:
    """The JSON values the writer stored for ``key`` (protobuf: the key, field 16, a length)."""
    data = run_file.read_bytes()
    out = []
    for m in re.finditer(re.escape(key.encode()) + rb"\x82\x01", data):
        n = data[m.end()]
        out.append(float(json.loads(data[m.end() + 1:m.end() + 1 + n])))
    return out


def test_a_run_is_mirrored_offline_and_resumes_into_the_same_wandb_run(tmp_path):
    cfg = tiny_config("train.iterations=20", "train.log_every=5", "train.sample_every=10",
                      "train.wandb={project: ganlab-test, mode: offline}")
    run = tmp_path / "r"
    part = start(cfg, run)
    part.play(10)
    part.run_lock.release()
    game = resume(run)
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"]
    # wandb's service writes the run file after finish() returns (seen here as a 7-byte file
    # read too early, about one time in three): wait for it, then check what it holds
    deadline = time.monotonic() + 60
    while True:
        files = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"))
        last = logged_values(files[-1], "train/d_loss") if len(files) == 2 else []
        if any(v == pytest.approx(rows[-1]["d_loss"], rel=1e-6) for v in last) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert files, list((run / "wandb").rglob("*"))[:10]
    ids = {f.stem.split("-", 1)[1] for f in files}
    assert len(ids) == 1  # the resume continued the same W&B run
    seen = []
    for f in files:
        for v in logged_values(f, "train/d_loss"):
            if not seen or v != seen[-1]:
                seen.append(v)
    assert seen[-1] == pytest.approx(rows[-1]["d_loss"], rel=1e-6)
    assert {round(r["d_loss"], 6) for r in rows} <= {round(v, 6) for v in seen}
    assert b"samples" in b"".join(f.read_bytes() for f in files)  # the sample grid too
    assert game.config.train.wandb.project == "ganlab-test"


def test_tensorboard_stays_and_bad_modes_are_named(tmp_path):
    train(tiny_config("train.iterations=5", "train.wandb={mode: disabled}"), tmp_path / "r")
    assert list((tmp_path / "r" / "tb").iterdir())
    with pytest.raises(ConfigError, match="train.wandb.mode: 'cloud'; valid: offline, online"):
        load_config("ring8", ["train.wandb={mode: cloud}"])
