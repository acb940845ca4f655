"""Data-parallel training over processes (``torchrun``), with plain ``torch.distributed``.

Each rank holds full copies of G and D. Every step draws the *global* batch of data indices and
noise from generators seeded alike on all ranks and keeps its own slice, so a run on W ranks with
batch B sees exactly the examples and noise of a one-process run with batch W*B. After each
backward the gradients are averaged across ranks (one flattened all-reduce per network and step),
which is what DistributedDataParallel does; the mean of per-rank mean losses is the global mean
loss, so without batch-dependent layers (batch norm keeps per-rank statistics, as in DDP without
SyncBatchNorm) the update equals the one-process update up to floating-point summation order.
Rank 0 writes logs, samples and checkpoints; the others write nothing.

Start with ``torchrun --nproc_per_node N -m ganlab train CONFIG --out RUN_DIR``; gloo on CPU,
NCCL on CUDA.
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); initialises the process group from torchrun's environment once."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get(
            "GANLAB_BACKEND", "") != "gloo" else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(_shutdown)
    return dist.get_rank(), dist.get_world_size()


def _shutdown() -> None:
    """At exit: meet the other ranks, then tear the group down. A rank that exits while another
    still holds its connections can make gloo abort ("terminate called without an active
    exception") even though the run finished."""
    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@torch.no_grad()
def average_gradients(params: list, size: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def average(t: torch.Tensor, size: int) -> torch.Tensor:
    dist.all_reduce(t)
    return t.div_(size)


def gather_objects(obj, size: int) -> list:
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


def barrier(size: int) -> None:
    if size > 1:
        dist.barrier()
