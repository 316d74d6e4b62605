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


def loader_processes(workers: int | None, cuda: bool, local_ranks: int, cpus: int) -> tuple[int, bool]:
    """(loader workers per rank, pin_memory) for a run: `workers` when given, else chosen here.

    On a GPU the step is fast enough that decoding in the training process starves it, so each
    rank gets worker processes: up to 4, from its share of the machine's cores less the one its
    own process needs. Pinned batches copy to the device asynchronously. On the CPU, workers
    would only compete with the step for the same cores, so the default stays in-process.
    """
    if workers is None:
        workers = min(4, max(0, cpus // max(1, local_ranks) - 1)) if cuda else 0
    return workers, cuda


def machine_loader_processes(workers: int | None) -> tuple[int, bool]:
    """loader_processes for this machine and this process's device (as `start` picks it)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # torchrun: processes on this node
    return loader_processes(workers, torch.cuda.is_available(), local, cpus)


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
