"""ganlab: GAN experiments as a library and a CLI.

``import ganlab`` is light: the names below load their modules (and torch) on first use.
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Game": "ganlab.game", "History": "ganlab.state", "RunConfig": "ganlab.config",
    "load_config": "ganlab.config", "Dataset": "ganlab.data", "load_dataset": "ganlab.data",
    "LOSSES": "ganlab.registry", "MODELS": "ganlab.registry", "TRICKS": "ganlab.registry",
    "count_params": "ganlab.models", "ConfigError": "ganlab.errors",
    "NonFiniteLossError": "ganlab.errors", "open_run": "ganlab.run",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganlab' has no attribute {name!r}")
