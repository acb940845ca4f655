"""Fingerprints of training behaviour, to show that a refactoring changes nothing.

Each case trains a fixed-seed run on one thread and hashes what the run produced:

- ``weights``: G's and D's state dicts at the end (every tensor's bytes, in key order);
- ``samples``: a sample batch of the sampling generator (filters included) at the end;
- ``history``: the per-iteration loss series;
- ``resumed``: for cases marked ``resume``, the weights of a run stopped half-way, checkpointed
  and resumed; with ``--from-checkpoints DIR`` the half-way checkpoint comes from DIR (written
  by an earlier version of ganlab with ``--save-checkpoints DIR``), which shows that old
  checkpoints resume exactly.

``python scripts/behaviour_hashes.py --out before.json --save-checkpoints ckpts/`` on the old
code, then ``python scripts/behaviour_hashes.py --out after.json --from-checkpoints ckpts/
--compare before.json`` on the new: the script lists every hash that differs.

Only the public API is used (``load_config``, ``ganlab.run.start/train/resume``,
``Game.sample``), so one script serves both versions.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch

TINY_RING = ["model.generator.args={hidden: 32, layers: 2, norm: batch}",
             "model.discriminator.args={hidden: 32, layers: 2}", "data.args={n: 1024}",
             "data.batch_size=32", "train.iterations=60", "train.log_every=10",
             "train.sample_every=1000", "train.checkpoint_every=1000", "train.num_samples=64"]
TINY_TETRIS = ["data.args={record: 4000, every_frame: true, eval_train: 0, eval_test: 0}",
               "data.batch_size=16", "model.generator.args={width: 8, depth: 2, global_every: 1, "
               "copy_init: 3.0}", "train.iterations=40", "train.log_every=10",
               "train.sample_every=1000", "train.checkpoint_every=1000"]


def ring(*extra):
    return ("ring8", TINY_RING + list(extra))


def tetris(*extra):
    return ("tetris", TINY_TETRIS + list(extra))


def cases(mnist: str) -> dict:
    tiny_mnist = [f"data.path={mnist}", "train.sample_every=1000", "train.checkpoint_every=1000"]
    return {
        # the presets named by the issue
        "ring8": ("ring8", ["train.iterations=400", "train.sample_every=1000",
                            "train.checkpoint_every=1000"], {"resume": True}),
        "mnist-dcgan": ("mnist-dcgan", tiny_mnist + ["train.iterations=300"], {"resume": True}),
        "tetris": ("tetris", ["data.args={record: 20000, every_frame: true, eval_train: 0, "
                              "eval_test: 0}", "train.iterations=200",
                              "train.sample_every=1000", "train.checkpoint_every=1000"],
                   {"resume": True, "paired": True}),
        "tetris-original": ("tetris-original", ["data.args={record: 5000}",
                                                "train.iterations=200",
                                                "train.sample_every=1000",
                                                "train.checkpoint_every=1000"],
                            {"paired": True}),
        "mnist-cgan": ("mnist-cgan", tiny_mnist + ["train.iterations=40",
                                                   "data.batch_size=32"], {}),
        # every loss
        **{f"loss-{name}": ring(f"loss.name={name}") + ({},)
           for name in ("minimax", "nonsaturating", "nonsaturating-half", "lsgan", "wgan",
                        "wgan-gp", "hinge")},
        "n-critic-3": ring("train.n_critic=3") + ({},),
        # one run per trick
        "label-smoothing": ring("regularizers=[label-smoothing]") + ({},),
        "noisy-labels": ring("regularizers=[noisy-labels]") + ({},),
        "flip-labels": ring("regularizers=[{name: flip-labels, args: {p: 0.2}}]") + ({},),
        "instance-noise": ring("regularizers=[instance-noise]") + ({},),
        "replay-buffer": ring("regularizers=[{name: replay-buffer, args: {size: 64}}]") + ({},),
        "r1": ring("regularizers=[{name: r1, args: {weight: 1.0, interval: 2}}]") + ({},),
        "r2": ring("regularizers=[{name: r2, args: {weight: 1.0}}]") + ({},),
        "gradient-penalty": ring("loss.name=wgan",
                                 "regularizers=[{name: gradient-penalty, args: {weight: 5}}]")
        + ({},),
        "weight-clip": ring("loss.name=hinge", "regularizers=[weight-clip]") + ({},),
        "spectral-norm": ring("regularizers=[{name: spectral-norm, args: {generator: true}}]")
        + ({},),
        "virtual-batch-norm": ring("regularizers=[{name: virtual-batch-norm, args: {size: 16}}]")
        + ({},),
        "feature-matching": ring("regularizers=[feature-matching]") + ({},),
        "feature-matching-add": ring("regularizers=[{name: feature-matching, args: "
                                     "{replace: false, weight: 0.5, layer: '2'}}]") + ({},),
        "historical-averaging": ring("regularizers=[historical-averaging]") + ({},),
        "ema": ring("regularizers=[{name: ema, args: {decay: 0.9, start: 10}}]") + ({},),
        "pack": ring("regularizers=[pack]",
                     "model.discriminator.args={hidden: 32, layers: 2, in_dim: 4}") + ({},),
        "schedule": ring("regularizers=[{name: schedule, args: {freeze_g_at: 40, "
                         "replace_d_at: 20, replace_d_lr: 0.0005}}]") + ({},),
        "discriminator-rejection": ring("regularizers=[{name: discriminator-rejection, args: "
                                        "{calibrate: 20, burn_in: 500}}]") + ({},),
        "jacobian-truncation": ring("regularizers=[{name: jacobian-truncation, args: "
                                    "{burn_in: 500}}]") + ({},),
        "acgan": ("mnist-cgan", tiny_mnist + [
            "train.iterations=30", "data.batch_size=32",
            "model.discriminator.args={num_classes: 10, hidden: 64, layers: 2, mode: acgan}",
            "model.generator.args={num_classes: 10, hidden: 32, layers: 2}",
            "regularizers=[acgan]"], {}),
        "reconstruction-encoded": tetris("regularizers=[{name: reconstruction, args: "
                                         "{weight: 100, codes: encoded}}]") + ({"paired": True},),
        "reconstruction-all": tetris("regularizers=[{name: reconstruction, args: {weight: 10, "
                                     "codes: all, diversity: 1.0, relax: 0.1}}]")
        + ({"paired": True},),
        "reconstruction-k": tetris("latent.dist=uniform01", "latent.dim=4",
                                   "regularizers=[{name: reconstruction, args: {k: 2}}]")
        + ({"paired": True},),
        "ema-tetris-g": ("tetris-original", ["data.args={record: 2000}", "train.iterations=20",
                                             "train.sample_every=1000",
                                             "train.checkpoint_every=1000",
                                             "regularizers=[{name: ema, args: {decay: 0.9}}]"],
                         {"paired": True}),
        # seeded tricks together (their random streams), resumed half-way
        "seeded-together": ring("regularizers=[noisy-labels, {name: flip-labels, args: "
                                "{p: 0.2}}, instance-noise, {name: replay-buffer, args: "
                                "{size: 64}}]") + ({"resume": True},),
        "stateful-together": ring("regularizers=[{name: ema, args: {decay: 0.9}}, "
                                  "historical-averaging, {name: replay-buffer, args: "
                                  "{size: 64}}, {name: r1, args: {weight: 1.0, interval: 2}}]")
        + ({"resume": True},),
    }


def tensor_hash(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def weights_hash(game) -> str:
    sd = {**{f"G.{k}": v for k, v in game.G.state_dict().items()},
          **{f"D.{k}": v for k, v in game.D.state_dict().items()}}
    return tensor_hash(sd[k] for k in sorted(sd))


def samples_hash(game, paired: bool) -> str:
    torch.manual_seed(1234)
    if paired:  # the emulator: predictions for the first boards of its data
        G = game.sampling_generator
        was = G.training
        G.eval()
        with torch.no_grad():
            cond = game.data.conditions[:64]
            z = torch.Generator().manual_seed(5)
            noise = torch.nn.functional.one_hot(torch.randint(game.latent_dim, (64,),
                                                              generator=z),
                                                game.latent_dim).float() \
                if game.latent_dist == "categorical" else torch.rand(64, game.latent_dim,
                                                                     generator=z)
            out = G(noise, cond)
        G.train(was)
        return tensor_hash([out])
    return tensor_hash([game.sample(256)])


def history_hash(game) -> str:
    h = game.history
    return tensor_hash(torch.tensor(h[k], dtype=torch.float64) for k in sorted(h))


def tiny_mnist(folder: Path) -> Path:
    """A deterministic MNIST-shaped data set of 256 + 64 images (random strokes), IDX files."""
    import struct
    rng = np.random.default_rng(0)

    def write(path, arr):
        arr = np.ascontiguousarray(arr, np.uint8)
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
        path.write_bytes(head + arr.tobytes())

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 256), ("t10k", 64)):
        x = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):
            r, c = rng.integers(4, 20, 2)
            x[i, r:r + 8, c:c + rng.integers(2, 8)] = rng.integers(100, 256)
        write(folder / f"{prefix}-images-idx3-ubyte", x)
        write(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return folder


def run_case(name, preset, sets, opts, work: Path, save_ckpt, from_ckpt) -> dict:
    from ganlab import load_config
    from ganlab.run import resume, start, train
    sets = list(sets) + ["train.threads=1", "train.progress=false", "seed=3"]
    cfg = load_config(preset, sets)
    out = {}
    full = train(cfg, work / f"{name}-full")
    out["weights"] = weights_hash(full)
    out["history"] = history_hash(full)
    out["samples"] = samples_hash(full, opts.get("paired", False))
    if opts.get("resume"):
        half = cfg.train.iterations // 2
        part_dir = work / f"{name}-part"
        part = start(cfg, part_dir)
        part.play(half)
        ck = part_dir / "checkpoints" / "latest.pt"
        if save_ckpt:
            save_ckpt.mkdir(parents=True, exist_ok=True)
            shutil.copy(ck, save_ckpt / f"{name}.pt")
            shutil.copy(part_dir / "config.yaml", save_ckpt / f"{name}.yaml")
        del part
        out["resumed"] = weights_hash(resume(part_dir))
        if from_ckpt:
            old = work / f"{name}-old"
            (old / "checkpoints").mkdir(parents=True)
            shutil.copy(from_ckpt / f"{name}.pt", old / "checkpoints" / "latest.pt")
            # the old run's data path was a temporary folder: point it at today's copy
            import yaml
            old_cfg = yaml.safe_load((from_ckpt / f"{name}.yaml").read_text())
            if "path=" in " ".join(sets):
                old_cfg["data"]["path"] = cfg.data.path
            (old / "config.yaml").write_text(yaml.safe_dump(old_cfg))
            out["resumed_from_old_checkpoint"] = weights_hash(resume(old))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file for the hashes")
    p.add_argument("--only", action="append", default=[], help="run only these cases")
    p.add_argument("--save-checkpoints", type=Path, help="keep the half-way checkpoints here")
    p.add_argument("--from-checkpoints", type=Path, help="also resume these old checkpoints")
    p.add_argument("--compare", type=Path, help="a JSON of an earlier run to compare against")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mnist = tiny_mnist(work / "mnist")
        for name, (preset, sets, opts) in cases(str(mnist)).items():
            if args.only and name not in args.only:
                continue
            try:
                results[name] = run_case(name, preset, sets, opts, work, args.save_checkpoints,
                                         args.from_checkpoints if opts.get("resume") else None)
            except Exception as exc:  # a case that fails is a result too (a known defect)
                results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                traceback.print_exc(limit=2)
            print(f"{name:26s} {json.dumps(results[name])}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1, sort_keys=True))
    if args.compare:
        before = json.loads(args.compare.read_text())
        diff = 0
        print(f"\n| case | field | before | after |\n|---|---|---|---|")
        for name, now in results.items():
            old = before.get(name, {})
            for key in sorted(set(old) | set(now)):
                if key == "resumed_from_old_checkpoint":
                    ref = old.get("weights")
                else:
                    ref = old.get(key)
                if ref != now.get(key):
                    diff += 1
                    print(f"| {name} | {key} | {ref} | {now.get(key)} |")
        print(f"\n{diff} differences in {len(results)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
