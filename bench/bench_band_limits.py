"""What each change of resolution lets through: the teacher's frame, and the loader's views at R.

    .venv/bin/python bench/bench_band_limits.py
    PYTHONPATH=OLD_CHECKOUT .venv/bin/python OLD_CHECKOUT/bench/bench_band_limits.py   # before

(the second form runs an older checkout's code with this file copied there; only the public
`to_teacher_frame`, `masked_l1` and loader classes are used.)

1. Teacher: a p = R = 32 patch at scale S holding stripes of amplitude 1 at f cycles per canvas
   along u, brought to the teacher's frame by `to_teacher_frame`; its masked L1 against zero is
   what the stripes cost in the teacher loss (worst of 8 phases). Below the teacher's Nyquist
   (R/2 = 16) the cost should be the stripes' own mean |sin| (0.64; more over small masks of
   few pixels): that is the layout the teacher keeps. Above it, the cost should be near 0.
2. Loader: 256 px PNGs of grey 128 plus stripes of amplitude 40 at 24 cycles per canvas (1.5x
   R's Nyquist), read as R = 32 global views by the training loader; the power that lands at
   the alias (32 - 24 = 8 cycles per canvas), as a fraction of the stripes' 800 grey levels².
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shards import DatasetWriter, WriterConfig
from shards.format.schema import SampleMeta
from shards.intake.probe import probe_image
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig
from training.networks.losses import masked_l1, to_teacher_frame
from training.networks.render import view

R = P = 32
PHASES = torch.linspace(0, 2 * math.pi, 9)[:-1].tolist()


def stripes(freq: float, scale: float, phase: float):
    t, s = view(1, scale, P, torch.device("cpu"), cu=0.1, cv=-0.05)
    u = t[0, 0, 2] + ((torch.arange(P, dtype=torch.float64) + 0.5) / P - 0.5) * t[0, 0, 0]
    return torch.sin(2 * math.pi * freq * u + phase).float().view(1, 1, 1, P).expand(1, 3, P, P), t.float(), s.float()


def teacher_cost(freq: float, scale: float) -> float:
    costs = []
    for phase in PHASES:
        seen, mask = to_teacher_frame(*stripes(freq, scale, phase), R)
        costs.append(masked_l1(seen, torch.zeros_like(seen), mask).item())
    return max(costs)


def png(side: int, freq: float, amplitude: float, phase: float) -> bytes:
    x = (np.arange(side) + 0.5) / side - 0.5
    row = np.rint(128 + amplitude * np.sin(2 * np.pi * freq * x + phase)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.tile(row, (side, 1))).convert("RGB").save(out, "PNG")
    return out.getvalue()


def loader_alias(folder: Path) -> float:
    with DatasetWriter(folder, WriterConfig()) as writer:
        for i, phase in enumerate((0.0, 1.0, 2.0, 3.0)):
            data = png(256, 24.0, 40.0, phase)
            info = probe_image(data)
            writer.add(SampleMeta(key=f"file-{i:020d}", width=info.width, height=info.height,
                                  orientation=info.orientation, format=info.format, ext=info.ext, mode=info.mode,
                                  nbytes=info.nbytes, sha256=info.sha256, phash=info.phash, source="folder",
                                  source_id=f"{i}.png"), data)
        writer.finalize(curation={"tool": "bench_band_limits"})
    config = LoaderConfig(str(folder), StreamConfig("global", size=R), batch_size=4, epoch_patches=8,
                          shuffle_buffer=0, num_workers=0, dtype="uint8")
    views = torch.cat([b.image for b in PatchLoader(config, rank=0, world_size=1)]).double().mean(1).numpy()
    x = (np.arange(R) + 0.5) / R - 0.5
    alias = np.exp(-2j * np.pi * 8 * x)  # 8 cycles per canvas along u, the stripes' alias
    amplitude = np.abs((views - views.mean(axis=(1, 2), keepdims=True)) @ alias).mean(axis=1) * 2 / R
    return float((amplitude**2 / 2).max() / 800.0)


def main() -> None:
    print("teacher loss of stripes of amplitude 1 (worst of 8 phases), R = p = 32")
    print("| f (cycles/canvas) | S = 2R | S = 4R | S = 8R |")
    print("| --- | --- | --- | --- |")
    for freq in (4, 12, 20, 24, 28):
        cells = " | ".join(f"{teacher_cost(freq, k * R):.3f}" for k in (2, 4, 8))
        print(f"| {freq} ({freq / (R / 2):.2f}x Nyquist) | {cells} |")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\nloader, R = 32 global views of 256 px stripes at 24 cycles/canvas: power at the alias "
              f"{loader_alias(Path(tmp) / 'ds'):.2e} of the stripes'")


if __name__ == "__main__":
    main()
