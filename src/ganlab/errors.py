"""The errors a user can act on. The command line prints each as one ``ganlab: error:`` line
(exit code 2); anything else is a bug and keeps its traceback.

Every message names what is wrong and where: the file, the key, the expected shape, the valid
choices.
"""
from __future__ import annotations


class GanlabError(Exception):
    """Base class: bad input, a bad config or a bad file, never a bug."""


class ConfigError(GanlabError, ValueError):
    """A run's configuration (a file, a key, a value or a name in it) is invalid."""


class DataError(GanlabError, FileNotFoundError):
    """A dataset's files are missing or malformed; the message names the file."""


class CheckpointError(GanlabError, RuntimeError):
    """A checkpoint or run directory is missing, unreadable, unsafe or not ganlab's."""


class NonFiniteLossError(GanlabError, FloatingPointError):
    """A loss became NaN or infinite; training stopped with the last good checkpoint kept."""
