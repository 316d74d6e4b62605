"""anyres-eval on several processes (torchrun): this rank's share of every set, and the few
collectives that put the shares back together.

Every set is cut into the batches one process would make, and rank r makes a contiguous block of
them; gathered in rank order, the blocks are the one-process set batch for batch, so the numbers
do not depend on the number of processes. Each collective here is called by every rank in the
same order and carries a result or a user error: a rank that fails hands its error to all, so
every rank ends with the same one line and exit code 2, and none is left waiting for the others.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as tdist

from plumbing.errors import UserError

from .. import dist
from ..errors import TrainingError

T = TypeVar("T")


def start(device: str | None) -> dist.World:
    """Join torchrun's process group, if any: gloo for --device cpu, nccl for cuda, where each
    process takes the device of its LOCAL_RANK. (dist.start would pick CUDA whenever it is
    there; here the user's --device decides, and None means cuda where there is one.)"""
    size = int(os.environ.get("WORLD_SIZE", 1))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda: no CUDA device is available here")
        local, count = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
        if local >= count:
            raise TrainingError(f"--device cuda: local rank {local} but {count} CUDA device(s) here: "
                                f"start at most {count} processes per node")
        where = torch.device("cuda", local)
        torch.cuda.set_device(where)
    else:
        where = torch.device("cpu")
    if size > 1 and not tdist.is_initialized():
        tdist.init_process_group("nccl" if where.type == "cuda" else "gloo")
        return dist.World(tdist.get_rank(), size, where, True)
    if tdist.is_initialized():
        return dist.World(tdist.get_rank(), tdist.get_world_size(), where, False)
    return dist.World(0, 1, where, False)


def _attempt(work: Callable[[], T]) -> tuple[str | None, T | None]:
    """(None, result), or (the one line a user error prints, None)."""
    try:
        return None, work()
    except UserError as exc:
        return str(exc), None
    except OSError as exc:  # as console.run_command words it, e.g. an output folder not writable
        where = getattr(exc, "filename", None)
        return f"{exc.strerror or exc}" + (f": {where}" if where else ""), None


def _raise_first(outcomes: list[tuple[str | None, object]]) -> None:
    errors = [error for error, _ in outcomes if error is not None]
    if errors:
        raise TrainingError(errors[0])


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    size: int = 1  # 1: plain calls, no collective

    def block(self, batches: int) -> range:
        """This rank's contiguous share of `batches` batches (shares differ by one at most)."""
        return range(self.rank * batches // self.size, (self.rank + 1) * batches // self.size)

    def items(self, n: int, batch: int) -> int:
        """How many of n items, in batches of `batch`, fall in this rank's block."""
        mine = self.block(math.ceil(n / batch))
        return max(0, min(n, mine.stop * batch) - mine.start * batch)

    def together(self, work: Callable[[], T]) -> T:
        """work() on every rank, each keeping its own result; a user error anywhere is raised everywhere."""
        if self.size == 1:
            return work()
        error, result = _attempt(work)
        _raise_first(dist.gather((error, None), self.size))
        return result  # type: ignore[return-value]

    def each(self, work: Callable[[], T]) -> list[T]:
        """Every rank's work(), in rank order, on every rank; a user error anywhere is raised everywhere."""
        if self.size == 1:
            return [work()]
        outcomes = dist.gather(_attempt(work), self.size)
        _raise_first(outcomes)
        return [result for _, result in outcomes]  # type: ignore[misc]

    def first(self, work: Callable[[], T]) -> T:
        """Rank 0's work() (the others do nothing), on every rank; its user error is raised everywhere."""
        if self.size == 1:
            return work()
        box = [_attempt(work) if self.rank == 0 else None]
        tdist.broadcast_object_list(box, src=0)
        _raise_first(box)
        return box[0][1]  # type: ignore[index]


def joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The ranks' blocks of one set, in rank order: the set in its one-process order. A rank with
    no batch (fewer batches than ranks) gave an empty dict."""
    parts = [p for p in parts if p]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
