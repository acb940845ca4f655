"""Name -> factory registries, so that a config can name losses, models, inits, datasets, tricks.

Every lookup of an unknown name raises :class:`ConfigError` listing the valid names, and every
factory call checks its keyword arguments against the factory's signature, so a typo in a config
is reported as ``model.generator.args: unknown key 'hiden' for 'toy-mlp-g'; valid: hidden, ...``
instead of a ``TypeError`` from deep inside a constructor.

The registries live here, in the lowest layer, and are filled lazily: each names the modules that
provide its entries, and the first lookup imports them and every plugin. So ``import
ganlab.config`` loads neither torch nor any model, and a plugin (``ganlab.tetris``, or a package
with a ``ganlab.plugins`` entry point) registers its datasets, models, tricks and command-line
commands itself, with no line about it anywhere in the core.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, Iterable

from .errors import ConfigError, GanlabError

__all__ = ["ConfigError", "Registry", "MODELS", "DATASETS", "LOSSES", "INITS", "LATENTS",
           "TRICKS", "COMMANDS", "PLUGINS", "load_plugins", "check_kwargs", "accepted_kwargs"]

# built-in plugins; third-party packages add theirs under the ``ganlab.plugins`` entry point group
PLUGINS = ("ganlab.tetris",)
_plugins_loaded = False


def load_plugins() -> None:
    """Import every plugin once (each registers what it brings on import)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in PLUGINS:
        importlib.import_module(name)
    from importlib.metadata import entry_points
    for ep in entry_points(group="ganlab.plugins"):
        if ep.value not in PLUGINS:
            ep.load()


class Registry:
    """A mapping from names to factories (classes or functions), filled on first use by
    importing ``providers`` and the plugins."""

    def __init__(self, kind: str, providers: Iterable[str] = ()):
        self.kind = kind
        self.providers = tuple(providers)
        self._items: Dict[str, Callable[..., Any]] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.providers:
            importlib.import_module(module)
        load_plugins()

    def register(self, name: str, obj: Callable[..., Any] | None = None):
        """Register ``obj`` under ``name``; usable as a decorator."""

        def deco(o):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = o
            return o

        return deco(obj) if obj is not None else deco

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items

    def get(self, name: str, where: str | None = None) -> Callable[..., Any]:
        self._load()
        if name not in self._items:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._items[name]

    def build(self, name: str, args: dict | None = None, where: str | None = None, **extra):
        """Look ``name`` up and call it with ``args`` (checked against its signature) and
        ``extra``; a ``ValueError`` the factory raises becomes a :class:`ConfigError` at
        ``where``."""
        factory = self.get(name, where)
        args = dict(args or {})
        at = f"{where or self.kind}.args"
        check_kwargs(factory, args, at, name, exclude=extra.keys())
        try:
            obj = factory(**extra, **args)
        except GanlabError:  # already names its file or key
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{at}: {exc}") from None
        try:  # what it was built from: a notebook's Game writes it into the run's config
            obj.ganlab_spec = {"name": name, "args": args}
        except AttributeError:  # frozen or slotted objects
            pass
        return obj


MODELS = Registry("model", ["ganlab.models"])
DATASETS = Registry("dataset", ["ganlab.data"])
LOSSES = Registry("loss", ["ganlab.losses"])
INITS = Registry("init", ["ganlab.init"])
LATENTS = Registry("latent distribution", ["ganlab.noise"])
TRICKS = Registry("trick", ["ganlab.tricks"])
# command-line commands a plugin adds: a function that gets the top-level subparsers
COMMANDS = Registry("command")


def accepted_kwargs(factory: Callable[..., Any]) -> tuple[list[str], bool]:
    """Keyword names ``factory`` accepts, and whether it takes ``**kwargs``."""
    sig = inspect.signature(factory)
    names, var = [], False
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            var = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            names.append(p.name)
    return names, var


def check_kwargs(factory, args: dict, where: str, name: str, exclude: Iterable[str] = ()) -> None:
    names, var = accepted_kwargs(factory)
    if var:
        return
    valid = [n for n in names if n not in set(exclude)]
    for key in args:
        if key not in valid:
            raise ConfigError(
                f"{where}: unknown key {key!r} for {name!r}; valid: {', '.join(valid) or '(none)'}")
