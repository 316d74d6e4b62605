"""User errors a training run can have, found before any network is built or batch is drawn.

Each is one sentence saying what is wrong and what would fix it; the CLI prints it on one line
and exits 2 (DESIGN.md 5). What the checks open (the dataset and its index, the checkpoint the
run starts from) is handed on in a `Start`, so the run reads nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumbing.errors import DatasetError
from shards.format.reader import Dataset

from .. import checkpoint
from ..errors import TrainingError
from ..loader.panorama_frames import aspect_bounds, turn_of
from .config import TrainConfig


@dataclass(frozen=True)
class Start:
    dataset: Dataset  # opened, its index read
    state: dict | None  # resume: this run's checkpoint; stage patch: the teacher's; else None
    patch_dataset: Dataset | None = None  # stage patch with --data-hr: that dataset, opened; else None


def open_dataset(path: str, flag: str = "dataset") -> Dataset:
    try:
        dataset = Dataset(path)
        index = dataset.index
    except DatasetError as exc:
        raise TrainingError(f"cannot read {flag} {path}: {exc}") from None
    if index.num_rows == 0:
        raise TrainingError(f"{flag} {path} has no samples")
    return dataset


def check_sides(dataset: Dataset, path: str, need: int, why: str, flag: str = "dataset") -> None:
    """At least one image whose canvas renders at `need` px without upsampling: a stream over a
    dataset with none would only count skips, after the networks were built."""
    index = dataset.index
    sides = np.minimum(index["width"].to_numpy(), index["height"].to_numpy())
    if int((sides >= need).sum()) == 0:
        raise TrainingError(f"{flag} {path} is too small for this run: no image has a shorter side of "
                            f"{need} px ({why}); its largest is {int(sides.max())} px")


def check_panoramas(dataset: Dataset, path: str, fov: float) -> None:
    """At least one image that is a turn of 360/fov frames: stage global-360 skips the others."""
    index = dataset.index
    aspect = index["width"].to_numpy() / np.maximum(index["height"].to_numpy(), 1)
    low, high = aspect_bounds(fov)
    if not np.any((aspect >= low) & (aspect <= high)):
        raise TrainingError(f"dataset {path} has no 360° panorama for --fov {fov:g}: each image is taken as one turn "
                            f"of {turn_of(fov):g} frames, so its width must be {low:.2f} to {high:.2f} times its "
                            f"height (its images: {aspect.min():.2f} to {aspect.max():.2f}); pick the --fov of one frame")


def open_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """--data for the global stream (and the patch stream without --data-hr), --data-hr if given:
    each opened once, and checked against what its streams need."""
    dataset = open_dataset(cfg.data)
    check_sides(dataset, cfg.data, cfg.resolution, f"R={cfg.resolution}")
    if cfg.stage == "global-360":
        check_panoramas(dataset, cfg.data, cfg.g.fov)
    patch = cfg.loader.stream
    hr = open_dataset(cfg.data_hr, "--data-hr dataset") if cfg.data_hr is not None else None
    if cfg.stage == "patch":
        why = f"s_min={patch.min_scale:g}, p={cfg.patch_size}"
        if hr is None:
            check_sides(dataset, cfg.data, patch.usable_side(), why)
        else:
            check_sides(hr, cfg.data_hr, patch.usable_side(), why, "--data-hr dataset")
    return dataset, hr


def _architecture_mismatch(cfg: TrainConfig, state: dict) -> str | None:
    g, d = checkpoint.network_configs(state)
    for name, ours, theirs in (("generator", cfg.g, g), ("discriminator", cfg.d, d)):
        a, b = ours.architecture(), theirs.architecture()
        diff = [f"{k}={b[k]!r} (this run: {a[k]!r})" for k in a if a[k] != b[k]]
        if diff:
            return f"{name} " + ", ".join(diff)
    return None


def teacher_state(cfg: TrainConfig) -> dict:
    """The stage-1 checkpoint or network snapshot a patch-stage run starts from, checked against
    this architecture."""
    if cfg.teacher is None:
        raise TrainingError("--stage patch needs --teacher CKPT: the stage-1 (global) checkpoint.pt or a "
                            "network-snapshot-*.pt")
    state = checkpoint.read(Path(cfg.teacher), "teacher")
    mismatch = _architecture_mismatch(cfg, state)
    if mismatch:
        raise TrainingError(f"teacher {cfg.teacher} has another architecture: {mismatch}")
    return state


def resume_state(cfg: TrainConfig, world: int) -> dict:
    path = Path(cfg.out) / checkpoint.CHECKPOINT
    state = checkpoint.read(path, "--resume: checkpoint", resumable=True)
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
    if cfg.batch_gpu is not None and (cfg.batch // world) % cfg.batch_gpu:
        raise TrainingError(f"--batch-gpu {cfg.batch_gpu} does not divide each process's share of the batch "
                            f"({cfg.batch} over {world} processes: {cfg.batch // world})")
    existing = Path(cfg.out) / checkpoint.CHECKPOINT
    if not cfg.resume and existing.is_file():
        # Starting over here would mix this run's snapshots and grids with the old run's.
        raise TrainingError(f"{cfg.out} already holds a run ({existing.name}): --resume to continue it, or "
                            "choose another --out")
    dataset, patch_dataset = open_datasets(cfg)
    state = None
    if cfg.resume:
        state = resume_state(cfg, world)
    elif cfg.stage == "patch":
        state = teacher_state(cfg)
    if cfg.lpips is not None and not Path(cfg.lpips).is_file():
        raise TrainingError(f"--lpips {cfg.lpips} does not exist (LPIPS weights are never downloaded)")
    return Start(dataset, state, patch_dataset)
