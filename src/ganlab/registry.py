"""Name -> factory registries, so that a config can name losses, models, inits and datasets.

Every lookup of an unknown name raises :class:`ConfigError` listing the valid names, and every
factory call checks its keyword arguments against the factory's signature, so a typo in a config
is reported as ``model.generator.args: unknown key 'hiden' for 'toy-mlp-g'; valid: hidden, ...``
instead of a ``TypeError`` from deep inside a constructor.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable


class ConfigError(ValueError):
    """A run's configuration (a file, a key, a value or a name in it) is invalid."""


class Registry:
    """A mapping from names to factories (classes or functions)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str, obj: Callable[..., Any] | None = None):
        """Register ``obj`` under ``name``; usable as a decorator."""

        def deco(o):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = o
            return o

        return deco(obj) if obj is not None else deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def get(self, name: str, where: str | None = None) -> Callable[..., Any]:
        if name not in self._items:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._items[name]

    def build(self, name: str, args: dict | None = None, where: str | None = None, **extra):
        """Look ``name`` up and call it with ``args`` (checked against its signature) and ``extra``."""
        factory = self.get(name, where)
        args = dict(args or {})
        check_kwargs(factory, args, f"{where or self.kind}.args", name, exclude=extra.keys())
        return factory(**extra, **args)


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
