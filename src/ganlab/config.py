"""Typed, validated run configuration: dataclasses read from YAML.

Everything a run can vary lives here. ``load_config`` accepts a YAML file or a preset name, applies
``--set a.b=value`` overrides and validates the result: an unknown key, a value of the wrong type
or an unknown registered name (loss, model, init, dataset, latent distribution, regularizer) is a
:class:`ConfigError` that names the file and the key and lists the valid choices.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .registry import DATASETS, INITS, LATENTS, LOSSES, MODELS, TRICKS, ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass
class Component:
    """A registered name plus keyword arguments for its factory."""

    name: str
    args: dict = field(default_factory=dict)


@dataclass
class DataConfig:
    name: str = "ring8"
    path: Optional[str] = None  # where the dataset's files are (MNIST: IDX files or an .npz cache)
    batch_size: int = 128
    args: dict = field(default_factory=dict)  # dataset-specific options (split, radius, std, ...)


@dataclass
class ModelConfig:
    generator: Component = field(default_factory=lambda: Component("toy-mlp-g"))
    discriminator: Component = field(default_factory=lambda: Component("toy-mlp-d"))
    init: str = "default"  # see ganlab.init.INITS
    channels_last: bool = False  # memory format for conv models (CPU/GPU speed option)


@dataclass
class LatentConfig:
    dim: int = 2
    dist: str = "normal"  # see ganlab.noise.LATENTS


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 2e-4
    betas: tuple = (0.5, 0.999)
    weight_decay: float = 0.0
    implementation: str = "auto"  # auto | foreach | fused | for-loop
    decay: str = "none"  # none | linear: lr falls linearly to 0 at train.iterations
    decay_start: float = 0.0  # fraction of train.iterations after which the decay begins


@dataclass
class OptimConfig:
    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class LossConfig:
    name: str = "nonsaturating"
    # overrides of the loss's own regularizers, e.g. {"gradient-penalty": {"weight": 5.0}}
    args: dict = field(default_factory=dict)


@dataclass
class AlarmConfig:
    """The failure signs checked at every evaluation (``train.eval_every``), each with its
    threshold; ``null`` turns a sign off."""

    modes_drop: Optional[int] = 1  # modes captured fell this many below the run's best so far
    class_kl: Optional[float] = 0.1  # class-histogram KL to uniform above this
    piece_tv: Optional[float] = 0.2  # Tetris piece TV above this
    d_accuracy: Optional[float] = 0.99  # D's accuracy on its last batches at or above this
    d_loss: Optional[float] = 1.0e-3  # D's adversarial loss below this (losses bounded by 0)
    g_grad: Optional[float] = 0.01  # G's last gradient norm below this share of its largest
    diversity: Optional[float] = 0.2  # samples' mean pairwise distance / the data's below this
    patience: int = 2  # evaluations in a row a sign must show before it is an alarm


@dataclass
class WandbConfig:
    """Mirror of the run's logs to Weights & Biases (``pip install 'ganlab[wandb]'``)."""

    project: str = "ganlab"
    mode: str = "offline"  # offline (files in RUN/wandb, sync later) | online | disabled
    entity: Optional[str] = None
    name: Optional[str] = None  # default: the run folder's name
    tags: list = field(default_factory=list)


@dataclass
class TrainConfig:
    iterations: int = 1000
    n_critic: int = 1
    reuse_fakes: bool = False  # the G phase scores the last D step's fakes (kept with G's graph)
    #                            instead of generating new ones: one G forward less an iteration
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    num_samples: int = 64  # size of the fixed noise batch behind the sample grids
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = False  # torch.compile the two networks
    precision: str = "float32"  # float32 | bfloat16: G's and D's forward passes in training
    #                             under bfloat16 autocast (weights, optimizers, losses,
    #                             sampling and evaluation stay float32)
    progress: Optional[bool] = None  # None: a bar only when stderr is a terminal
    threads: Optional[int] = None  # torch intra-op threads; None: as many as cores are free
    #                                (re-checked while training; ganlab.threads)
    deterministic: bool = False  # deterministic kernels (bit-exact resume on GPU too; slower)
    max_seconds: Optional[float] = None  # stop training once this much wall time is spent
    eval_every: int = 0  # evaluate the dataset's metrics every N iterations (0: never)
    histogram_every: int = 0  # TensorBoard histograms of weights, gradients, D scores (0: never)
    best_metric: Optional[str] = None  # keep checkpoints/best.pt by this evaluation metric
    best_mode: str = "max"  # max | min
    eval_samples: Optional[int] = None  # samples an evaluation during training draws (None: the
    #                                    task's own, 10,000 images, 2,500 points)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)  # failure signs, at evaluations
    stop_on_alarm: bool = False  # stop training at the first alarm (the best checkpoint kept)
    wandb: Optional[WandbConfig] = None  # also log to Weights & Biases; TensorBoard stays


@dataclass
class RunConfig:
    name: str = "run"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    regularizers: list = field(default_factory=list)  # list of Component
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # parts a notebook's Game got as Python objects, not by registered name ("model.generator",
    # "model.discriminator", "data"): the command line cannot rebuild such a run
    custom: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_plain(self)


def write_config(cfg: RunConfig, run_dir: str | Path) -> Path:
    """``run_dir/config.yaml``: the resolved config, which ``ganlab resume`` reads."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    tmp = run_dir / ".config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    os.replace(tmp, path)
    return path


# --- dict <-> dataclass --------------------------------------------------------------------------

def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


_LIST_ITEM_TYPES = {("RunConfig", "regularizers"): Component}


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        opts = typing.get_args(tp)
        if value is None and type(None) in opts:
            return None
        inner = [o for o in opts if o is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and "name" in {f.name for f in dataclasses.fields(tp)}:
            value = {"name": value}  # ``loss: hinge`` or ``--grid loss=lsgan,hinge``: the name
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return list(value)
    return value


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are ConfigErrors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{prefix}{key}: unknown key; valid keys{' of ' + where if where else ''}: "
                f"{', '.join(fields)}")
        item_type = _LIST_ITEM_TYPES.get((cls.__name__, key))
        if item_type is not None:
            if not isinstance(value, list):
                raise ConfigError(f"{prefix}{key}: expected a list, got {value!r}")
            kwargs[key] = [_coerce(v, item_type, f"{prefix}{key}[{i}]") for i, v in enumerate(value)]
        else:
            kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)


# --- loading, overrides, validation --------------------------------------------------------------

def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    return PRESET_DIR / f"{name}.yaml"


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.iterations=500")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: cannot parse the value: {exc}") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides or []:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k, {}), dict):
                raise ConfigError(f"--set {text!r}: {k!r} is not a section")
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return data


def read_yaml(path: Path) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_config(source: str | Path | dict, overrides: list[str] | None = None) -> RunConfig:
    """Read a config from a YAML path, a preset name or a dict; apply overrides; validate."""
    if isinstance(source, dict):
        data, label = dict(source), "config"
    else:
        path = Path(source)
        if not path.exists() and preset_path(str(source)).exists():
            path = preset_path(str(source))
        elif not path.exists():
            raise ConfigError(
                f"{source}: no such config file or preset; presets: {', '.join(preset_names())}")
        data, label = read_yaml(path), str(path)
    data = apply_overrides(data, overrides or [])
    try:
        cfg = from_dict(RunConfig, data)
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{_source_of(str(exc), label, overrides or [])}: {exc}") from None
    return cfg


def _source_of(message: str, label: str, overrides: list[str]) -> str:
    """Where a bad value came from: the last ``--set`` that wrote its key or created the section
    it lies in (``trian.iterations=5`` creates ``trian``), else the file."""
    where = message.split(":", 1)[0]
    for text in reversed(overrides):
        key = ".".join(parse_override(text)[0])
        if _under(where, key) or _under(key, where):
            return f"--set {text!r} (over {label})"
    return label


def _under(path: str, root: str) -> bool:
    """``path`` is ``root`` or lies inside it (``a.b``, ``a[0]`` are inside ``a``)."""
    return path == root or path.startswith((root + ".", root + "["))


def validate(cfg: RunConfig) -> None:
    """Check names against the registries and values against their ranges."""
    DATASETS.get(cfg.data.name, "data.name")
    MODELS.get(cfg.model.generator.name, "model.generator.name")
    MODELS.get(cfg.model.discriminator.name, "model.discriminator.name")
    INITS.get(cfg.model.init, "model.init")
    LATENTS.get(cfg.latent.dist, "latent.dist")
    pair = LOSSES.get(cfg.loss.name, "loss.name")
    for key in cfg.loss.args:
        if key not in pair.regularizers:
            raise ConfigError(f"loss.args.{key}: unknown key for loss {cfg.loss.name!r}; valid: "
                              f"{', '.join(pair.regularizers) or '(none)'}")
    for i, reg in enumerate(cfg.regularizers):
        trick = TRICKS.get(reg.name, f"regularizers[{i}].name")
        if getattr(trick, "changes_targets", False) and pair.discriminator_targets is None:
            with_targets = [n for n in LOSSES.names() if LOSSES.get(n).discriminator_targets]
            raise ConfigError(f"regularizers[{i}].name: {reg.name!r} changes D's targets, which "
                              f"loss {cfg.loss.name!r} does not have; losses with targets: "
                              f"{', '.join(with_targets)}")
    for which in ("g", "d"):
        o = getattr(cfg.optim, which)
        if o.name not in OPTIMIZERS:
            raise ConfigError(f"optim.{which}.name: unknown optimizer {o.name!r}; valid: "
                              f"{', '.join(OPTIMIZERS)}")
        if o.implementation not in ("auto", "foreach", "fused", "for-loop"):
            raise ConfigError(f"optim.{which}.implementation: {o.implementation!r}; valid: "
                              "auto, foreach, fused, for-loop")
        if o.decay not in ("none", "linear"):
            raise ConfigError(f"optim.{which}.decay: {o.decay!r}; valid: none, linear")
        if not 0 <= o.decay_start < 1:
            raise ConfigError(f"optim.{which}.decay_start: must be in [0, 1), got {o.decay_start}")
        if not o.lr > 0:
            raise ConfigError(f"optim.{which}.lr: must be positive, got {o.lr}")
        if len(o.betas) != 2:
            raise ConfigError(f"optim.{which}.betas: expected two numbers, got {list(o.betas)}")
    positive = {"data.batch_size": cfg.data.batch_size, "latent.dim": cfg.latent.dim,
                "train.n_critic": cfg.train.n_critic, "train.log_every": cfg.train.log_every,
                "train.sample_every": cfg.train.sample_every,
                "train.checkpoint_every": cfg.train.checkpoint_every,
                "train.num_samples": cfg.train.num_samples}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}: must be at least 1, got {value}")
    if cfg.train.best_mode not in ("max", "min"):
        raise ConfigError(f"train.best_mode: {cfg.train.best_mode!r}; valid: max, min")
    if cfg.train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision: {cfg.train.precision!r}; valid: "
                          f"{', '.join(PRECISIONS)}")
    if cfg.train.best_metric and not cfg.train.eval_every:
        raise ConfigError("train.best_metric needs train.eval_every > 0")
    if cfg.train.histogram_every < 0:
        raise ConfigError(f"train.histogram_every: must be >= 0, got {cfg.train.histogram_every}")
    if cfg.train.eval_every < 0:
        raise ConfigError(f"train.eval_every: must be >= 0, got {cfg.train.eval_every}")
    if cfg.train.wandb is not None and cfg.train.wandb.mode not in ("offline", "online",
                                                                   "disabled"):
        raise ConfigError(f"train.wandb.mode: {cfg.train.wandb.mode!r}; valid: offline, "
                          "online, disabled")
    if cfg.train.alarms.patience < 1:
        raise ConfigError(f"train.alarms.patience: must be at least 1, got "
                          f"{cfg.train.alarms.patience}")
    if cfg.train.threads is not None and cfg.train.threads < 1:
        raise ConfigError(f"train.threads: must be at least 1 (or unset: auto), got "
                          f"{cfg.train.threads}")
    if cfg.train.iterations < 0:
        raise ConfigError(f"train.iterations: must be >= 0, got {cfg.train.iterations}")


OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
PRECISIONS = ("float32", "bfloat16")
