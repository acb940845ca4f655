"""The bad-input table: bad inputs, kills and faults given to the real command line.

Every case runs ``ganlab ...`` as a user would, in a fresh process, and is judged:

- **named error**: exit code 2 and exactly one ``ganlab: error:`` line (what the case wants);
- **traceback**: a Python traceback, or another exit code;
- **silent failure**: exit code 0 where the input was bad;
- **data lost**: a checkpoint that was finished before the case is gone or unreadable after it,
  or a file the case must not touch changed.

Kill cases SIGKILL a training at random moments and then check that the run's latest
checkpoint loads and resumes. Full-disk and read-only cases need ``mount`` (root); without it
they are reported as not run.

Usage: python bench/bad_inputs.py [--kills 20] [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

PY = [sys.executable, "-m", "ganlab"]
TINY = ["model.generator.args={hidden: 16, layers: 2, norm: batch}",
        "model.discriminator.args={hidden: 16, layers: 2}", "data.args={n: 512}",
        "data.batch_size=32", "train.progress=false", "train.sample_every=1000",
        "train.eval_every=0"]
TETRIS = ["data.args={record: 400, eval_train: 0, eval_test: 0}", "data.batch_size=8",
          "train.iterations=2", "train.progress=false",
          "model.generator.args={width: 4, depth: 1, global_every: 1}"]


def sets(items):
    return sum([["--set", s] for s in items], [])


def run(args, timeout=600, **kw):
    return subprocess.run(PY + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


class Table:
    def __init__(self):
        self.rows = []

    def judge(self, name, proc, bad=True, keep=()):
        """``keep``: files that must be exactly as they were (path, digest before)."""
        err = proc.stderr
        errors = [line for line in err.splitlines() if line.startswith("ganlab: error:")]
        if "Traceback" in err or proc.returncode not in (0, 2):
            verdict = "traceback"
        elif bad and proc.returncode == 0:
            verdict = "silent failure"
        elif bad and len(errors) != 1:
            verdict = "traceback"
        else:
            verdict = "named error" if bad else "ok"
        lost = [str(p) for p, before in keep if digest(p) != before]
        if lost:
            verdict = "data lost"
        message = errors[0][len("ganlab: error: "):] if errors else (err.strip().splitlines()
                                                                     or [""])[-1]
        self.rows.append((name, verdict, message[:150]))
        print(f"| {name} | {verdict} | {message[:150]} |", flush=True)

    def add(self, name, verdict, message):
        self.rows.append((name, verdict, message))
        print(f"| {name} | {verdict} | {message} |", flush=True)


def mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "none", str(path)],
                          capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ganlab-bad-"))
    t = Table()
    print(f"# bad inputs, kills and faults ({time.strftime('%Y-%m-%d')})")
    print("| case | outcome | message |\n|---|---|---|")
    mounts = []
    try:
        _cases(work, t, args, mounts)
    finally:
        for m in mounts:
            subprocess.run(["umount", "-l", str(m)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    counts = {}
    for _, verdict, _ in t.rows:
        counts[verdict] = counts.get(verdict, 0) + 1
    print(f"\n{len(t.rows)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"tracebacks {counts.get('traceback', 0)}, silent failures "
          f"{counts.get('silent failure', 0)}, data lost {counts.get('data lost', 0)}")


def _cases(work: Path, t: Table, args, mounts: list) -> None:
    only = args.only

    def want(name):
        return only in name

    ring, tet, rec = work / "ring", work / "tetris", work / "rec"
    assert run(["train", "ring8", "--out", ring, *sets(TINY + ["train.iterations=10"])]
               ).returncode == 0
    assert run(["train", "tetris", "--out", tet, *sets(TETRIS)]).returncode == 0
    assert run(["tetris", "record", rec, "--train", "30", "--test", "20"]).returncode == 0
    boards = work / "boards.npy"
    np.save(boards, np.zeros((2, 22, 10), np.int64))
    a_file = work / "file.txt"
    a_file.write_text("x")
    ro = work / "ro"
    have_ro = mount(ro, "size=1m")
    if have_ro:
        mounts.append(ro)
        (ro / "inside").mkdir()
        shutil.copytree(ring, ro / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)

    # --- every output path ----------------------------------------------------------------
    commands = {
        "train": (["train", "ring8", "--out", "{}", *sets(TINY + ["train.iterations=2"])], True),
        "sweep": (["sweep", "ring8", "--seeds", "1", "--out", "{}",
                   *sets(TINY + ["train.iterations=2"])], True),
        "tetris record": (["tetris", "record", "{}", "--train", "4", "--test", "2"], True),
        "compare": (["compare", ring, "--out", "{}"], True),
        "sample": (["sample", ring, "--n", "3", "--out", "{}"], False),
        "evaluate --json": (["evaluate", ring, "--json", "{}"], False),
        "tetris predict": (["tetris", "predict", tet, "--input", boards, "--out", "{}"], False),
        "tetris evaluate --json": (["tetris", "evaluate", tet, "--data", rec, "--samples", "2",
                                    "--json", "{}"], False),
        "tetris rollout --gif": (["tetris", "rollout", tet, "--frames", "3", "--gif", "{}"],
                                 False),
    }
    for cmd, (argv, folder) in commands.items():
        outs = {"under a file": a_file / "x"}
        if folder:
            outs["an existing file"] = a_file
        else:  # a file output may overwrite a file (as shells and numpy do), never a folder
            outs["an existing folder"] = work
            outs["a missing parent folder"] = work / "missing" / "dir" / "p"
        if have_ro:
            outs["on a read-only file system"] = ro / "inside" / "x"
        for what, out in outs.items():
            name = f"{cmd} --out {what}"
            if want(name):
                t.judge(name, run([out if a == "{}" else a for a in argv]),
                        keep=[(a_file, digest(a_file))])
        if not folder and want(f"{cmd} --out an existing file"):
            target = work / f"existing-{len(t.rows)}{'.gif' if 'gif' in cmd else ''}"
            target.write_text("old")
            t.judge(f"{cmd} --out an existing file (overwritten, as asked)",
                    run([target if a == "{}" else a for a in argv]), bad=False)

    # --- broken files -------------------------------------------------------------------------
    def pair_case(name, damage):
        if not want(name):
            return
        r = work / f"rec-{len(t.rows)}"
        shutil.copytree(rec, r)
        (r / "recording.npz").unlink()
        (r / "recording.json").unlink()
        damage(r / "train" / "3.npy")
        t.judge(name, run(["train", "tetris", "--out", work / f"r{len(t.rows)}",
                           *sets(TETRIS + [f"data.path={r}"])]))

    pair_case("a 0-byte .npy pair", lambda p: p.write_bytes(b""))
    pair_case("a truncated .npy pair", lambda p: p.write_bytes(p.read_bytes()[:100]))
    pair_case("a .npy pair of the wrong shape", lambda p: np.save(p, np.zeros((2, 20, 10))))
    pair_case("a .npy pair with values 0-7", lambda p: np.save(p, np.full((2, 22, 10), 3)))
    pair_case("a gap in the pair numbering", lambda p: p.unlink())
    good = (rec / "recording.npz").read_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        info = z.getinfo("train.npy")
    crc = bytearray(good)
    crc[info.header_offset + 30 + len(info.filename) + len(info.extra)
        + info.compress_size // 2] ^= 0xFF
    for name, content in (("a 0-byte recording.npz", b""),
                          ("a truncated recording.npz", good[:len(good) // 2]),
                          ("a recording.npz with a bad CRC", bytes(crc))):
        if want(name):
            p = work / f"c{len(t.rows)}.npz"
            p.write_bytes(content)
            t.judge(name, run(["tetris", "evaluate", tet, "--data", p]))
    for name, change in (("an incomplete recording (killed mid-write)", "complete"),
                         ("a recording that lost a pair file", "lose"),
                         ("recording.npz and pair files that disagree", "disagree")):
        if not want(name):
            continue
        r = work / f"rec-{len(t.rows)}"
        shutil.copytree(rec, r)
        m = json.loads((r / "recording.json").read_text())
        if change == "complete":
            (r / "recording.json").write_text(json.dumps({**m, "complete": False}))
        else:
            (r / "test" / "19.npy").unlink()
            if change == "disagree":
                (r / "recording.json").unlink()
        t.judge(name, run(["tetris", "evaluate", tet, "--data", r]))
    for name, content in (("a 0-byte --input", b""), ("a truncated --input", None),
                          ("--input of the wrong shape", "shape"),
                          ("--input with values 0-7", "values"), ("a missing --input", "none")):
        if not want(name):
            continue
        p = work / f"in{len(t.rows)}.npy"
        if content == b"":
            p.write_bytes(b"")
        elif content is None:
            np.save(p, np.zeros((4, 22, 10), np.int64))
            p.write_bytes(p.read_bytes()[:150])
        elif content == "shape":
            np.save(p, np.zeros((4, 20, 10)))
        elif content == "values":
            np.save(p, np.full((4, 22, 10), 5))
        t.judge(name, run(["tetris", "predict", tet, "--input", p, "--out", work / "p.npy"]))

    # --- checkpoints --------------------------------------------------------------------------
    def ckpt_case(name, damage):
        if not want(name):
            return
        r = work / f"run-{len(t.rows)}"
        shutil.copytree(ring, r)
        damage(r / "checkpoints" / "latest.pt")
        config = r / "config.yaml"
        t.judge(name, run(["resume", r, "--set", "train.iterations=30"]),
                keep=[(config, digest(config))])

    def corrupt(p: Path):
        with zipfile.ZipFile(p) as z:
            i = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        with open(p, "r+b") as fh:
            fh.seek(i.header_offset + 26)
            n, m = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
            fh.seek(i.header_offset + 30 + n + m + i.file_size // 2)
            fh.write(b"\x7f" * 8)

    def malicious(p: Path):
        code = ("import torch, os\nclass E:\n    def __reduce__(self):\n        return (os.system, "
                "('echo pwned',))\ntorch.save({'format': 'ganlab-checkpoint-1', 'x': E()}, "
                f"{str(p)!r})\n")
        subprocess.run([sys.executable, "-c", code], check=True)

    ckpt_case("a 0-byte checkpoint", lambda p: p.write_bytes(b""))
    ckpt_case("a truncated checkpoint", lambda p: p.write_bytes(p.read_bytes()[:5000]))
    ckpt_case("a checkpoint with 8 bytes changed", corrupt)
    ckpt_case("a checkpoint that needs code to load", malicious)
    ckpt_case("a checkpoint of another file format", lambda p: p.write_bytes(b"PK\x03\x04junk"))
    ckpt_case("a checkpoint of other models", lambda p: shutil.copy(
        tet / "checkpoints" / "latest.pt", p))

    # --- configs and arguments ----------------------------------------------------------------
    for name, argv in (
            ("an unknown preset", ["train", "ring9"]),
            ("a misspelt key", ["train", "ring8", "--set", "trian.iterations=5"]),
            ("an unknown loss", ["train", "ring8", "--set", "loss.name=wgan_gp"]),
            ("an unknown trick", ["train", "ring8", "--set", "regularizers=[{name: r3}]"]),
            ("a bad trick argument", ["train", "ring8", "--set",
                                      "regularizers=[{name: ema, args: {decay: 2}}]"]),
            ("a negative learning rate", ["train", "ring8", "--set", "optim.g.lr=-1"]),
            ("a wrong type", ["train", "ring8", "--set", "train.iterations=many"]),
            ("a --set without =", ["train", "ring8", "--set", "train.iterations"]),
            ("threads 0", ["train", "ring8", "--set", "train.threads=0"]),
            ("an unknown device", ["train", "ring8", "--set", "train.device=tpu"]),
            ("cuda without a GPU", ["train", "ring8", "--set", "train.device=cuda"]),
            ("MNIST missing", ["train", "mnist-dcgan", "--set", f"data.path={work / 'none'}"]),
            ("a batch larger than the data", ["train", "ring8", "--set", "data.args={n: 10}"]),
            ("sample --n 0", ["sample", ring, "--n", "0", "--out", work / "s.npz"]),
            ("tetris predict --samples 0", ["tetris", "predict", tet, "--input", boards,
                                            "--samples", "0", "--out", work / "q.npy"]),
            ("tetris rollout --frames 0", ["tetris", "rollout", tet, "--frames", "0"]),
            ("tetris record --train -1", ["tetris", "record", work / "neg", "--train", "-1"]),
            ("resume of a folder that is no run", ["resume", work]),
            ("sample a run with no checkpoint", ["sample", work / "empty-run", "--out",
                                                 work / "e.npz"]),
            ("an unknown sampling filter", ["sample", ring, "--filter", "nope", "--out",
                                            work / "f.npz"]),
            ("a training trick as a filter", ["sample", ring, "--filter", "r1", "--out",
                                              work / "f.npz"]),
            ("a --filter-arg without a filter", ["sample", ring, "--filter-arg", "keep=1",
                                                 "--out", work / "f.npz"]),
            ("a baseline that is no configuration", ["compare", ring, "--baseline", "nope"]),
            ("a sweep grid with a bad value", ["sweep", "ring8", "--grid", "loss.name=lsgan,x",
                                               "--out", work / "sw-bad"]),
            ("Inception weights that are missing", ["evaluate", ring, "--inception",
                                                    work / "none.pt"]),
            ("Inception metrics of 2-D points", ["evaluate", ring, "--inception", boards]),
            ("tetris predict on a ring8 run", ["tetris", "predict", ring, "--input", boards,
                                               "--out", work / "x.npy"]),
    ):
        if want(name):
            if "no checkpoint" in name:
                (work / "empty-run").mkdir(exist_ok=True)
                shutil.copy(ring / "config.yaml", work / "empty-run" / "config.yaml")
            t.judge(name, run(argv))

    if have_ro and want("resume a read-only run"):
        t.judge("resume a read-only run", run(["resume", ro / "run", "--set",
                                                "train.iterations=20"]))
    if have_ro and want("sample a read-only run"):
        t.judge("sample a read-only run (reading is fine)",
                run(["sample", ro / "run", "--out", work / "ro-s.npz"]), bad=False)

    # --- faults -------------------------------------------------------------------------------
    if want("a full disk during a checkpoint"):
        disk = work / "disk"
        if mount(disk, "size=160k"):
            mounts.append(disk)
            p = run(["train", "ring8", "--out", disk / "run",
                     *sets(TINY + ["train.iterations=20", "train.checkpoint_every=2"])])
            latest = disk / "run" / "checkpoints" / "latest.pt"
            t.judge("a full disk during a checkpoint", p)
            ok = subprocess.run([sys.executable, "-c", "import sys; from ganlab.checkpoint "
                                 "import safe_load; safe_load(sys.argv[1])", str(latest)],
                                capture_output=True).returncode == 0
            if not ok:
                t.rows[-1] = (t.rows[-1][0], "data lost", "the previous checkpoint is gone")
        else:
            t.add("a full disk during a checkpoint", "not run", "mount not permitted")
    if want("two trainings in one folder"):
        r = work / "busy"
        first = subprocess.Popen(PY + ["train", "ring8", "--out", str(r),
                                       *sets(TINY + ["train.iterations=100000",
                                                     "train.checkpoint_every=50"])],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not (r / "checkpoints" / "latest.pt").exists():
                time.sleep(0.1)
            config = r / "config.yaml"
            t.judge("two trainings in one folder (resume beside a training)",
                    run(["resume", r, "--set", "train.iterations=7"]),
                    keep=[(config, digest(config))])
        finally:
            first.kill()
            first.wait()
    rng = random.Random(0)
    for k in range(args.kills if want("kill") else 0):
        r = work / f"killed-{k}"
        p = subprocess.Popen(PY + ["train", "ring8", "--out", str(r),
                                   *sets(TINY + ["train.iterations=400",
                                                 "train.checkpoint_every=20"])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.5, 9.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        name = f"kill -9 during training ({k + 1})"
        latest = r / "checkpoints" / "latest.pt"
        if not latest.exists():
            resumed = run(["train", "ring8", "--out", r, *sets(TINY + ["train.iterations=40"])])
            t.judge(name + ": before any checkpoint, train again", resumed, bad=False)
            continue
        resumed = run(["resume", r])
        t.judge(name + ": resume", resumed, bad=False)
        if resumed.returncode == 0 and list((r / "checkpoints").glob(".*tmp*")):
            t.rows[-1] = (t.rows[-1][0], "data lost", "temporary files left behind")


if __name__ == "__main__":
    main()
