"""Process groups: one process per device under torchrun (gloo on CPU, nccl on GPU), or one plain
process; and the few collectives a run needs, each a no-op in a world of one.

Every collective here is called by every rank in the same order: the loop decides the kind of
each step from (seed, step) alone, so the ranks' calls always pair up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device
    owns_group: bool  # whether this process started the group, and so must tear it down


def start() -> World:
    """Join (or start, under torchrun) the process group, and pick this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
        return World(dist.get_rank(), size, device, True)
    if dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), device, False)
    return World(0, 1, device, False)


def finish(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        # Rank 0 may still be writing the last snapshot; tearing the group down under it
        # aborts the other process ("terminate called without an active exception").
        dist.barrier()
        dist.destroy_process_group()


def gather(obj, size: int) -> list:
    """Every rank's `obj` (any picklable value), in rank order, on every rank."""
    if size == 1:
        return [obj]
    out: list = [None] * size
    dist.all_gather_object(out, obj)
    return out


def sum_(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """In place: the sum over ranks."""
    if size > 1:
        dist.all_reduce(tensor)
    return tensor


def mean_(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """In place: the mean over ranks."""
    if size > 1:
        dist.all_reduce(tensor)
        tensor /= size
    return tensor
