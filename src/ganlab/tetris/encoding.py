"""How boards enter and leave the networks: one-hot maps in, argmax boards out."""
from __future__ import annotations

import numpy as np
import torch


def one_hot(boards, cells: int = 2) -> torch.Tensor:
    """(..., 22, 10) boards of 0..cells-1 -> (..., cells, 22, 10) float one-hot, channel c =
    (cell == c), as the original notebooks encode them (2 cells classic, 8 interactive)."""
    b = torch.as_tensor(np.asarray(boards), dtype=torch.long)
    return torch.nn.functional.one_hot(b, cells).movedim(-1, -3).float()


def event_planes(events, shape, n_events: int = 5) -> torch.Tensor:
    """(N,) events -> (N, n_events, rows, cols): one constant plane per event, 1 on the event's."""
    e = torch.as_tensor(np.asarray(events), dtype=torch.long)
    planes = torch.nn.functional.one_hot(e, n_events).float()
    return planes[:, :, None, None].expand(-1, -1, *shape).contiguous()


def to_boards(t: torch.Tensor) -> torch.Tensor:
    """One-hot or probability maps (N, C, 22, 10) -> boards (N, 22, 10) of 0..C-1 by argmax."""
    return t.argmax(1).to(torch.int8)
