"""User errors a training run can have, found before any network is built or batch is drawn.

Each is one sentence saying what is wrong and what would fix it; the CLI prints it on one line
and exits 2 (DESIGN.md 5). What the checks open (the dataset and its index, the checkpoint the
run starts from) is handed on in a `Start`, so the run reads nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shards.errors import DatasetError
from shards.reader import Dataset

from ..errors import TrainingError
from . import checkpoint
from .config import TrainConfig


@dataclass(frozen=True)
class Start:
    dataset: Dataset  # opened, its index read
    state: dict | None  # resume: this run's checkpoint; stage patch: the teacher's; else None


def open_dataset(cfg: TrainConfig) -> Dataset:
    try:
        dataset = Dataset(cfg.data)
        index = dataset.index
    except DatasetError as exc:
        raise TrainingError(f"cannot read dataset {cfg.data}: {exc}") from None
    if index.num_rows == 0:
        raise TrainingError(f"dataset {cfg.data} has no samples")
    sides = np.minimum(index["width"].to_numpy(), index["height"].to_numpy())
    need = max(cfg.resolution, cfg.patch_size)
    usable = int((sides >= need).sum())
    if usable == 0:
        raise TrainingError(f"dataset {cfg.data} is too small for this run: no image has a shorter side of "
                            f"{need} px (R={cfg.resolution}, p={cfg.patch_size}); its largest is {int(sides.max())} px")
    return dataset


def _architecture_mismatch(cfg: TrainConfig, state: dict) -> str | None:
    g, d = checkpoint.network_configs(state)
    for name, ours, theirs in (("generator", cfg.g, g), ("discriminator", cfg.d, d)):
        a, b = ours.architecture(), theirs.architecture()
        diff = [f"{k}={b[k]!r} (this run: {a[k]!r})" for k in a if a[k] != b[k]]
        if diff:
            return f"{name} " + ", ".join(diff)
    return None


def teacher_state(cfg: TrainConfig) -> dict:
    """The stage-1 checkpoint a patch-stage run starts from, checked against this architecture."""
    if cfg.teacher is None:
        raise TrainingError("--stage patch needs --teacher CKPT: the stage-1 (global) checkpoint")
    state = checkpoint.read(Path(cfg.teacher), "teacher")
    mismatch = _architecture_mismatch(cfg, state)
    if mismatch:
        raise TrainingError(f"teacher {cfg.teacher} has another architecture: {mismatch}")
    return state


def resume_state(cfg: TrainConfig, world: int) -> dict:
    path = Path(cfg.out) / checkpoint.CHECKPOINT
    state = checkpoint.read(path, "--resume: checkpoint")
    mismatch = _architecture_mismatch(cfg, state)
    if mismatch:
        raise TrainingError(f"checkpoint {path} has another architecture: {mismatch}")
    if state["config"]["stage"] != cfg.stage:
        raise TrainingError(f"checkpoint {path} is from stage {state['config']['stage']!r}, not {cfg.stage!r}")
    if len(state["rng"]) != world:
        raise TrainingError(f"checkpoint {path} was written by {len(state['rng'])} processes; resume with as many "
                            f"(this run has {world})")
    return state


def check_run(cfg: TrainConfig, world: int) -> Start:
    if cfg.batch % world:
        raise TrainingError(f"batch {cfg.batch} does not split evenly over {world} processes")
    dataset = open_dataset(cfg)
    state = None
    if cfg.resume:
        state = resume_state(cfg, world)
    elif cfg.stage == "patch":
        state = teacher_state(cfg)
    if cfg.lpips is not None and not Path(cfg.lpips).is_file():
        raise TrainingError(f"--lpips {cfg.lpips} does not exist (LPIPS weights are never downloaded)")
    return Start(dataset, state)
