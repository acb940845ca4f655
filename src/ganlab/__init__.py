"""ganlab: GAN experiments as a library and a CLI."""
from .config import RunConfig, load_config
from .data import Dataset, load_dataset
from .engine import Game, History, NonFiniteLossError
from .losses import LOSSES
from .models import MODELS, count_params
from .registry import ConfigError

__version__ = "0.1.0"

__all__ = ["Game", "History", "NonFiniteLossError", "RunConfig", "load_config", "Dataset",
           "load_dataset", "LOSSES", "MODELS", "count_params", "ConfigError", "__version__"]
