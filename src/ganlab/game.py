"""``Game``: a GAN run as one notebook-friendly object, composed of the parts that do the work.

::

    game = Game(G, D, images, latent_dim=96, loss="lsgan", lr_g=1e-3, lr_d=1e-3)
    history = game.play(2000)        # the loss history so far
    game.save("game.pt"); game.load("game.pt")
    imgs = game.sample(16)

    game = Game.from_config(load_config("mnist-dcgan"))

What it is made of: the :class:`~ganlab.players.Players` (G, D, optimizers), the
:class:`~ganlab.inputs.TrainingInputs` (data and noise streams), the
:class:`~ganlab.conditioning.Conditioning`, the :class:`~ganlab.hooks.Tricks`, the
:class:`~ganlab.step.GanStep`, the :class:`~ganlab.sampling.Sampler`, and a
:class:`~ganlab.trainer.Trainer` with the :mod:`~ganlab.callbacks`; checkpoints are
:mod:`~ganlab.state`. Everything a run can vary is its :class:`~ganlab.config.RunConfig`; the
keyword options are shortcuts into it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from . import callbacks as cb
from .alarms import Alarms
from . import checkpoint as ckpt
from . import state as run_state
from .conditioning import conditioning_for
from .config import RunConfig, load_config, to_plain, write_config
from .data import Dataset, load_dataset
from .distributed import barrier as dist_barrier
from .distributed import gather_objects, local_device
from .distributed import world as dist_world
from .errors import ConfigError
from .hooks import ModelTransform, SampleFilter, TrainingContext, Trick, Tricks
from .init import apply_init
from .inputs import TrainingInputs
from .lock import RunLock
from .losses import LossPair, get_loss
from .noise import CategoricalPrior
from .players import Players
from .registry import LATENTS, MODELS, TRICKS, accepted_kwargs
from .sampling import Sampler
from .state import History, Progress
from .step import GanStep
from .threads import ThreadGovernor, fixed_threads
from .tracking import Tracker, WandbMirror
from .trainer import Trainer

# keyword options of Game(...) and the config keys they set
OPTIONS = {
    "latent_dim": "latent.dim", "latent_dist": "latent.dist", "loss": "loss.name",
    "loss_args": "loss.args",
    "batch_size": "data.batch_size", "n_critic": "train.n_critic", "seed": "seed",
    "lr_g": "optim.g.lr", "lr_d": "optim.d.lr", "device": "train.device",
    "log_every": "train.log_every", "sample_every": "train.sample_every",
    "checkpoint_every": "train.checkpoint_every", "num_samples": "train.num_samples",
    "compile": "train.compile", "precision": "train.precision",
    "channels_last": "model.channels_last",
    "progress": "train.progress", "total_iterations": "train.iterations",
    "eval_every": "train.eval_every", "best_metric": "train.best_metric",
    "best_mode": "train.best_mode", "histogram_every": "train.histogram_every",
    "max_seconds": "train.max_seconds", "threads": "train.threads",
    "eval_samples": "train.eval_samples", "alarms": "train.alarms",
    "stop_on_alarm": "train.stop_on_alarm",
}
# what a Game built in a notebook starts from, where the config's defaults differ
NOTEBOOK_DEFAULTS = {"train": {"device": "cpu", "iterations": 0}}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}; valid: auto, cpu, cuda, cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for, but torch sees no CUDA device")
    return dev


def notebook_config(options: dict, base: Optional[RunConfig] = None, parts: dict = {}
                    ) -> RunConfig:
    """A run config from ``Game(...)``'s keyword options (over ``base``, or the notebook
    defaults, with what ``parts`` (G, D, data) say they were built from); an unknown option is
    an error that lists the valid ones."""
    data = to_plain(base) if base is not None else _notebook_base(parts)
    for key, value in options.items():
        if key == "betas":
            paths = ["optim.g.betas", "optim.d.betas"]
            value = list(value)
        elif key in ("optim_g", "optim_d"):
            paths, value = [f"optim.{key[-1]}"], to_plain(value)
        elif key in OPTIONS:
            paths = [OPTIONS[key]]
        else:
            valid = sorted([*OPTIONS, "betas", "optim_g", "optim_d", "tricks", "config",
                            "run_dir"])
            raise ConfigError(f"Game: unknown option {key!r}; valid: {', '.join(valid)}")
        if isinstance(value, torch.device):
            value = str(value)
        for path in paths:
            node = data
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
    return load_config(data)


def _notebook_base(parts: dict) -> dict:
    """The notebook defaults, with the registered names the networks and data were built from
    (``MODELS.build`` and ``load_dataset`` record them); parts that came as plain Python
    objects are listed in ``custom``."""
    data = {k: dict(v) for k, v in NOTEBOOK_DEFAULTS.items()}
    custom = []
    for key, obj in parts.items():
        spec = getattr(obj, "ganlab_spec", None)
        if spec is None:
            custom.append(key)
        elif key == "data":
            data["data"] = {"name": spec["name"], "path": spec["path"], "args": spec["args"]}
        else:
            data.setdefault("model", {})[key.split(".")[1]] = {"name": spec["name"],
                                                                "args": spec["args"]}
    data["custom"] = custom
    return data


def build_tricks(loss: LossPair, loss_args: dict, configured: list) -> list[Trick]:
    """The loss's own tricks (with ``loss.args`` overrides), then the config's list."""
    tricks = []
    for name, defaults in loss.regularizers.items():
        tricks.append(build_trick(name, {**defaults, **loss_args.get(name, {})},
                                  f"loss.args.{name}"))
    for i, comp in enumerate(configured):
        tricks.append(build_trick(comp.name, comp.args, f"regularizers[{i}]"))
    return tricks


def build_trick(name: str, args: dict, where: str) -> Trick:
    """One trick by name; bad names and arguments are ConfigErrors at ``where``."""
    trick = TRICKS.build(name, args, where=where)
    trick.where, trick.key = f"{where} ({name})", name
    return trick


def build_model(spec, where: str, from_data: dict, **extra) -> nn.Module:
    """A registered model; the arguments the data decides (``Task.model_args``) are filled in
    where the model takes them and the config does not give them, and checked where it does."""
    factory = MODELS.get(spec.name, f"{where}.name")
    accepted, _ = accepted_kwargs(factory)
    fill = {}
    for key, value in from_data.items():
        if key not in accepted:
            continue
        if key in spec.args and spec.args[key] != value:
            raise ConfigError(f"{where}.args.{key}: {spec.args[key]}, but the data's examples "
                              f"have {key} {value}")
        fill[key] = value
    return MODELS.build(spec.name, {**fill, **spec.args}, where=where, **extra)


class Game:
    """A GAN training run: two networks, data, a loss, tricks, and everything to resume.

    ``data`` is a :class:`ganlab.data.Dataset` or a tensor of examples in the model's scale.
    ``config`` is the run's config (``Game.from_config`` passes it); the keyword options
    (``latent_dim``, ``loss``, ``lr_g``, ``sample_every``, ... see :data:`OPTIONS`) set its
    keys. ``tricks`` are trick objects to train with besides the config's. With ``run_dir``
    the game writes metrics, TensorBoard events, samples and checkpoints there.
    """

    def __init__(self, G: nn.Module, D: nn.Module, data, *, config: Optional[RunConfig] = None,
                 loss: str | LossPair | None = None, tricks=(), run_dir: str | Path | None = None,
                 **options):
        pair = loss if isinstance(loss, LossPair) else None
        if isinstance(loss, str):
            options["loss"] = loss
        cfg = (notebook_config(options, config, {"model.generator": G, "model.discriminator": D,
                                                 "data": data})
               if (options or config is None) else config)
        self.config = cfg
        self.rank, self.world = dist_world()
        threads = fixed_threads(cfg.train.threads)
        if threads:
            torch.set_num_threads(threads)
        self.device = local_device(resolve_device(cfg.train.device))
        self.data = data if isinstance(data, Dataset) else Dataset.of(data)
        ckpt.seed_everything(cfg.seed + 104729 * self.rank)  # per-rank global RNG (dropout, GP)
        # channels-last suits convolutions over any (N, C, H, W) examples, images or boards
        channels_last = cfg.model.channels_last and self.data.examples.dim() == 4
        self.players = Players(G, D, self.device, channels_last, cfg.train.precision)
        self.conditioning = conditioning_for(G, self.data.labels, self.data.conditions)
        self.conditioning.to(self.device)
        loss = pair or get_loss(cfg.loss.name)
        # the loss's own tricks (WGAN-GP's penalty) always, then the config's, then the given
        self.tricks = Tricks(build_tricks(loss, cfg.loss.args, cfg.regularizers) + list(tricks))
        self.seed, self.batch_size = cfg.seed, cfg.data.batch_size
        self.latent_dim, self.latent_dist = cfg.latent.dim, cfg.latent.dist
        self.latent = latent = LATENTS.get(cfg.latent.dist, "latent.dist")
        if self.world > 1:  # every rank starts from rank 0's weights
            import torch.distributed as tdist
            with torch.no_grad():
                for t in [*G.state_dict().values(), *D.state_dict().values()]:
                    tdist.broadcast(t, 0)
        self.ctx = TrainingContext(self)
        self.examples = self.data.examples  # on the device once the tricks are set up
        transforms = self.tricks[ModelTransform]
        for trick in transforms + [t for t in self.tricks if t not in transforms]:
            self._setup(trick)
        t = cfg.train
        self.examples = self.data.examples.to(self.device)
        if channels_last:
            self.examples = self.examples.contiguous(memory_format=torch.channels_last)
        self.players.prepare(cfg.optim.g, cfg.optim.d, t.iterations, t.compile)
        self.inputs = TrainingInputs(self.examples, self.conditioning, latent, self.latent_dim,
                                     self.batch_size, self.seed, self.device, self.rank,
                                     self.world)
        self.sampler = Sampler(lambda: self.players.G, self.conditioning, latent,
                               self.latent_dim, self.tricks, self.seed, self.device,
                               t.num_samples)
        self.step = GanStep(self.players, self.inputs, loss, self.tricks, t.n_critic,
                            keep_scores=bool(t.histogram_every or t.eval_every),
                            reuse_fakes=t.reuse_fakes)
        self.progress = Progress()
        self.run_dir = Path(run_dir) if run_dir else None
        self.is_main = self.rank == 0
        mirror = (WandbMirror(cfg.train.wandb, self.run_dir, to_plain(cfg))
                  if cfg.train.wandb is not None and self.run_dir and self.is_main else None)
        self.tracker = Tracker(self.run_dir if self.is_main else None, mirror)
        self.last_checkpoint: Optional[Path] = None
        self.run_lock = None  # held while this process trains in run_dir (ganlab.lock)
        self.resumed_from = 0  # the iteration ``ganlab resume`` found
        self.trainer = Trainer(self, self._callbacks())

    def _setup(self, trick: Trick) -> None:
        try:
            trick.setup(self.ctx)
            if isinstance(trick, ModelTransform):
                trick.transform()
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{trick.where or trick.key}: {exc}") from None

    def _callbacks(self) -> list:
        t = self.config.train
        out = [ThreadGovernor(fixed_threads(t.threads),
                              ranks_per_node=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                              log=None if self.is_main else (lambda msg: None)),
               cb.TimeBudget(t.max_seconds, t.log_every), cb.LogLosses(t.log_every, t.progress)]
        if self.run_dir and self.is_main:
            out.append(cb.WriteSamples(t.sample_every))
        if t.eval_every:  # before the checkpoint of the same iteration, which then holds it
            out.append(cb.Evaluate(t.eval_every, t.best_metric, t.best_mode, t.eval_samples))
            out.append(Alarms(t.alarms, t.eval_every, t.stop_on_alarm,
                              log=None if self.is_main else (lambda msg: None)))
        if self.run_dir:
            out.append(cb.SaveCheckpoints(t.checkpoint_every))
        if self.run_dir and self.is_main and t.histogram_every:
            out.append(cb.WriteHistograms(t.histogram_every))
        if self.run_dir and self.is_main:
            out.append(cb.LossPlot())
        return out

    # --- construction from a config ------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: RunConfig, run_dir: str | Path | None = None,
                    dataset: Dataset | None = None) -> "Game":
        resolve_device(cfg.train.device)
        if cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        ckpt.seed_everything(cfg.seed)
        data = dataset or load_dataset(cfg.data.name, cfg.data.path, cfg.data.args, seed=cfg.seed)
        from_data = data.task.model_args(data)
        G = build_model(cfg.model.generator, "model.generator", from_data,
                        latent_dim=cfg.latent.dim)
        D = build_model(cfg.model.discriminator, "model.discriminator", from_data)
        apply_init(G, cfg.model.init)
        apply_init(D, cfg.model.init)
        return cls(G, D, data, config=cfg, run_dir=run_dir)

    # --- the public face ------------------------------------------------------------------------
    @property
    def G(self) -> nn.Module:
        return self.players.G

    @property
    def D(self) -> nn.Module:
        return self.players.D

    @property
    def loss(self) -> LossPair:
        return self.step.loss

    @loss.setter
    def loss(self, pair: LossPair) -> None:
        self.step.loss = pair

    @property
    def iteration(self) -> int:
        return self.progress.iteration

    @property
    def history(self) -> History:
        return self.progress.history

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: an EMA copy where a trick keeps one."""
        return self.sampler.generator

    def play(self, num_iter: int) -> History:
        """Train for ``num_iter`` more iterations, or until ``max_seconds`` of training time
        (checked every ``log_every`` iterations, resumes included); returns the loss history.
        With a run directory, this process locks it (one trainer per folder) and a game built
        in a notebook writes its ``config.yaml``, so that the folder is an ordinary run."""
        if self.run_dir and self.is_main and self.run_lock is None:
            self.run_lock = RunLock.acquire(self.run_dir)
            if not (self.run_dir / "config.yaml").exists():
                write_config(self.config, self.run_dir)
        self.trainer.play(num_iter)
        if self.run_dir and self.is_main and self.config.train.iterations < self.iteration:
            self.config.train.iterations = self.iteration  # what the folder says it trained
            write_config(self.config, self.run_dir)
        return self.history

    def elapsed(self) -> float:
        """Training wall time so far, the current ``play`` included."""
        return self.trainer.elapsed()

    def sample(self, n: int | None = None, noise: torch.Tensor | None = None,
               data_scale: bool = False, labels: torch.Tensor | None = None,
               reject: bool = True, max_rounds: int = 1000, return_conditions: bool = False):
        """Generate ``n`` examples (or one per row of ``noise``) in eval mode, training's random
        state untouched. ``labels``: the conditions (class labels, or a paired game's inputs);
        drawn when not given (uniform labels; conditions from the data). Sampling filters
        redraw rejected rows unless ``reject=False``. ``return_conditions``: return
        ``(samples, conditions)``."""
        out, cond = self.sampler.sample(self.iteration, n, noise, labels, reject, max_rounds)
        if data_scale:
            out = self.data.to_data_scale(out)
        return (out, cond) if return_conditions else out

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` latents of the run's distribution on its device (with their own ``generator``)."""
        return self.latent(n, self.latent_dim, generator=generator, device=self.device)

    def set_latent_prior(self, probs) -> None:
        """Draw the ``categorical`` latent with these probabilities from now on (training noise,
        samples, evaluation): a prior learnt from the data. The caller keeps and restores it
        (a trick, in its checkpoint state)."""
        if self.latent_dist != "categorical" or len(probs) != self.latent_dim:
            raise ValueError(f"a latent prior needs latent.dist categorical with latent.dim "
                             f"{len(probs)}; this run has {self.latent_dist} of dim "
                             f"{self.latent_dim}")
        self.latent = self.inputs.latent = self.sampler.latent = CategoricalPrior(probs)

    def add_filter(self, name: str, **args) -> SampleFilter:
        """Add a sampling filter (e.g. ``add_filter("discriminator-rejection",
        calibrate=5000)``) to this game, typically one restored from a run trained without it;
        ``sample`` and evaluation then use it. Training and checkpoints are unchanged."""
        filters = [n for n in TRICKS.names() if issubclass(TRICKS.get(n), SampleFilter)]
        if name not in filters:
            what = "a training trick, not a sampling filter" if name in TRICKS else "unknown"
            raise ConfigError(f"filter: {name!r} is {what}; valid filters: {', '.join(filters)}")
        trick = build_trick(name, args, "filter")
        self.tricks.add(trick)
        self._setup(trick)
        return trick

    def evaluate(self) -> dict:
        """The task's metrics now (``ganlab.tasks``), logged as an ``eval`` row; with
        ``train.best_metric`` the best checkpoint so far is kept as ``checkpoints/best.pt``."""
        t = self.config.train
        return cb.Evaluate(t.eval_every, t.best_metric, t.best_mode,
                           t.eval_samples).evaluate(self)

    # --- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return run_state.capture(self, self.elapsed())

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        run_state.restore(self, state, source)

    def save(self, path: str | Path) -> Path:
        self.trainer.flush()
        return ckpt.atomic_save(self.state_dict(), path)

    def load(self, path: str | Path) -> "Game":
        # RNG states must stay CPU byte tensors; restore moves the rest to the device
        self.load_state_dict(ckpt.safe_load(path, map_location="cpu"), str(path))
        return self

    def save_checkpoint(self) -> Path:
        """Rank 0 writes ``checkpoints/latest.pt`` (every rank's RNG states gathered into it)."""
        path = self.run_dir / "checkpoints" / "latest.pt"
        self.trainer.flush()
        state = self.state_dict()
        if self.world > 1:
            state["rng_ranks"] = gather_objects(state["rng"], self.world)
        if self.is_main:
            ckpt.atomic_save(state, path)
        dist_barrier(self.world)
        self.last_checkpoint = path
        return path
