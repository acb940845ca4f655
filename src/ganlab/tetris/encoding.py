"""How boards enter and leave the networks: one-hot maps in, argmax boards out."""
from __future__ import annotations

import numpy as np
import torch


def one_hot(boards) -> torch.Tensor:
    """(..., 22, 10) 0/1 boards -> (..., 2, 22, 10) float one-hot, channel c = (cell == c), as
    the original notebooks encode them."""
    b = torch.as_tensor(np.asarray(boards), dtype=torch.long)
    return torch.nn.functional.one_hot(b, 2).movedim(-1, -3).float()


def to_boards(t: torch.Tensor) -> torch.Tensor:
    """One-hot or probability maps (N, 2, 22, 10) -> 0/1 boards (N, 22, 10) by argmax."""
    return t.argmax(1).to(torch.int8)
