"""User errors a training run can have, found before any network is built or batch is drawn.

Each is one sentence saying what is wrong and what would fix it; the CLI prints it on one line
and exits 2 (DESIGN.md 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shards.errors import DatasetError
from shards.reader import Dataset

from . import checkpoint
from .errors import TrainingError
from .presets import TrainConfig


def check_dataset(cfg: TrainConfig) -> None:
    try:
        index = Dataset(cfg.data).index
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


def _architecture_mismatch(cfg: TrainConfig, saved: dict) -> str | None:
    saved_cfg = TrainConfig.from_dict(saved)
    for name, ours, theirs in (("generator", cfg.g, saved_cfg.g), ("discriminator", cfg.d, saved_cfg.d)):
        a, b = ours.architecture(), theirs.architecture()
        diff = [f"{k}={b[k]!r} (this run: {a[k]!r})" for k in a if a[k] != b[k]]
        if diff:
            return f"{name} " + ", ".join(diff)
    return None


def _load(path: Path, what: str) -> dict:
    if not path.is_file():
        raise TrainingError(f"{what} {path} does not exist")
    try:
        state = checkpoint.load(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise TrainingError(f"{what} {path} is not a training checkpoint: {type(exc).__name__}") from None
    if not isinstance(state, dict) or "trainer" not in state or "config" not in state:
        raise TrainingError(f"{what} {path} is not a training checkpoint")
    return state


def teacher_state(cfg: TrainConfig) -> dict:
    """The stage-1 checkpoint a patch-stage run starts from, checked against this architecture."""
    if cfg.teacher is None:
        raise TrainingError("--stage patch needs --teacher CKPT: the stage-1 (global) checkpoint")
    state = _load(Path(cfg.teacher), "teacher")
    mismatch = _architecture_mismatch(cfg, state["config"])
    if mismatch:
        raise TrainingError(f"teacher {cfg.teacher} has another architecture: {mismatch}")
    return state


def check_resume(cfg: TrainConfig, world: int) -> dict:
    path = Path(cfg.out) / checkpoint.CHECKPOINT
    state = _load(path, "--resume: checkpoint")
    mismatch = _architecture_mismatch(cfg, state["config"])
    if mismatch:
        raise TrainingError(f"checkpoint {path} has another architecture: {mismatch}")
    if state["config"]["stage"] != cfg.stage:
        raise TrainingError(f"checkpoint {path} is from stage {state['config']['stage']!r}, not {cfg.stage!r}")
    if len(state["rng"]) != world:
        raise TrainingError(f"checkpoint {path} was written by {len(state['rng'])} processes; resume with as many "
                            f"(this run has {world})")
    return state


def check_run(cfg: TrainConfig, world: int) -> None:
    check_dataset(cfg)
    if cfg.resume:
        check_resume(cfg, world)
    elif cfg.stage == "patch":
        teacher_state(cfg)
    if cfg.lpips is not None and not Path(cfg.lpips).is_file():
        raise TrainingError(f"--lpips {cfg.lpips} does not exist (LPIPS weights are never downloaded)")
