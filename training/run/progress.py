"""What a run shows while it trains: one line per tick, and TensorBoard when it is installed.

The tick line is for a person watching a terminal (or a log): where the run is, how fast it
goes, its losses, and when it will end at the last tick's pace. TensorBoard is an optional
extra (`pip install anyres[tensorboard]`): with it, every tick's numbers become scalars and
every snapshot's sample grid an image, in RUN/tensorboard; without it, nothing is written and
nothing is said beyond one line at the start.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

LOSSES = (("G", "loss_G"), ("D", "loss_D"), ("R1", "R1"), ("teacher", "teacher"), ("ADA p", "aug_p"))


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def tick_line(record: dict[str, Any], total_kimg: float) -> str:
    """`tick 3  0.96/6.00 kimg  155.7 s/kimg  G 0.773 D 1.147 R1 0.030  ETA 13m03s`, and the
    tick's metrics when it measured any."""
    kimg, rate = record["kimg"], record["sec_per_kimg"]
    parts = [f"tick {record['tick']}", f"{kimg:.2f}/{total_kimg:.2f} kimg", f"{rate:.1f} s/kimg"]
    losses = " ".join(f"{label} {record[key]:.3f}" for label, key in LOSSES if record.get(key) is not None)
    if losses:
        parts.append(losses)
    parts += [f"{k.removeprefix('metric/')} {v:.4g}" for k, v in record.items()
              if k.startswith("metric/") and isinstance(v, (int, float))]
    parts.append(f"ETA {duration((total_kimg - kimg) * rate)}" if kimg < total_kimg else "done")
    return "  ".join(parts)


class Board:
    """TensorBoard scalars and images under RUN/tensorboard, or nothing when it is not installed."""

    def __init__(self, out: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            self.writer = None
            return
        self.writer = SummaryWriter(str(out / "tensorboard"))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def scalars(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        images = round(record["kimg"] * 1000)
        for key, value in record.items():
            if key in ("tick", "step", "kimg", "loader") or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(key, value, images)
        self.writer.flush()

    def image(self, tag: str, grid: np.ndarray, kimg: float) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, grid, round(kimg * 1000), dataformats="HWC")
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
