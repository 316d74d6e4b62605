"""bench_mechanism.py's measures: rho (texture power, generated over real) per scale, each stage 2's
distance from its teacher at R, rho against kimg, and the figure.

Real patches come from the training loader itself (eval/sources.real_batches: random windows at
exactly S, seeded, the same for every model); generated ones through the very same T and S
(eval/sources.fake_images: `patch` rendered, `patch-lanczos` the canvas at R interpolated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mechanism_data import Texture

from shards import Dataset
from training.checkpoint import load_generator
from training.commands.eval import snapshot_kimg
from training.eval.sources import RealSpec, fake_images, latents, real_batches
from training.eval.spectrum import band_power, grey, octave_edges, tone_power
from training.networks.generator import Generator
from training.networks.render import identity_view

EVAL_SEED = 12345  # the real windows and the latents, the same for every arm and seed
P = 32  # the tiny preset's patch side


def real_patches(data: Path, scale: float, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n real p x p patches at exactly S, with their T and S (uint8, float32, float64)."""
    spec = RealSpec("patch", P, n, EVAL_SEED, float(scale), float(scale))
    parts = list(real_batches(Dataset(str(data)), spec, 32))
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def tone(images: torch.Tensor, texture: Texture, scale: float) -> float:
    """Mean texture power over the patches, in grey levels squared."""
    return float(tone_power(grey(images), texture.cycles_per_pixel(scale), texture.radians).mean())


def generated(g: Generator, kind: str, transform: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    z = latents(len(transform), g.cfg.z_dim, EVAL_SEED)
    return torch.cat([fake_images(g, kind, z[i:i + 32], P, P, transform[i:i + 32], scale[i:i + 32])
                      for i in range(0, len(z), 32)])


@torch.no_grad()
def teacher_gap(student: Generator, teacher: Generator, n: int) -> float:
    """Mean |G(z) - teacher(z)| of the whole canvas at R, in [-1, 1] units: how far stage 2 moved."""
    z = latents(n, student.cfg.z_dim, EVAL_SEED)
    eye, r = identity_view(n, student.cfg.resolution, z.device)
    a = student.synthesis(student.mapping(z), eye, r, student.cfg.resolution, grid="exact")
    b = teacher.synthesis(teacher.mapping(z), eye, r, teacher.cfg.resolution, grid="exact")
    return float((a - b).abs().mean())


ALL_RUNS = ("stage1", "stage1-noscale", "stage2", "stage2-twin", "stage2-teacher0", "stage2-noscale")


def measure_seed(root: Path, data: Path, texture: Texture, resolution: int, scales: tuple[int, ...],
                 n: int, runs: list[str] | tuple[str, ...] = ALL_RUNS) -> dict:
    """rho of each trained run at every scale, the reals' texture power, and the stage-2 teacher gaps."""
    torch.set_num_threads(1)
    nets = {arm: load_generator(root / arm / "checkpoint.pt") for arm in ALL_RUNS if arm in runs}
    out: dict = {"real": {}}
    for arm in nets:
        out[arm] = {"rendered": {}}
    out["stage1"]["upsampled"] = {}
    for k in scales:
        scale = k * resolution
        images, transform, s = real_patches(data, scale, n)
        real = tone(images, texture, scale)
        out["real"][str(k)] = real
        for arm, g in nets.items():
            out[arm]["rendered"][str(k)] = tone(generated(g, "patch", transform, s), texture, scale) / real
        out["stage1"]["upsampled"][str(k)] = tone(generated(nets["stage1"], "patch-lanczos", transform, s),
                                                  texture, scale) / real
    for arm, teacher in (("stage2", "stage1"), ("stage2-twin", "stage1"), ("stage2-teacher0", "stage1"),
                         ("stage2-noscale", "stage1-noscale")):
        if arm in nets:
            out[arm]["teacher_gap"] = teacher_gap(nets[arm], nets[teacher], n)
    return out


def rho_curve(root: Path, data: Path, texture: Texture, resolution: int, n: int) -> list[tuple[float, float]]:
    """(kimg, rho at 4R) for every snapshot of the textured stage 2."""
    torch.set_num_threads(1)
    scale = 4 * resolution
    images, transform, s = real_patches(data, scale, n)
    real = tone(images, texture, scale)
    curve = []
    for path in sorted((root / "stage2").glob("network-snapshot-*.pt"), key=snapshot_kimg):
        g = load_generator(path)
        curve.append((snapshot_kimg(path), tone(generated(g, "patch", transform, s), texture, scale) / real))
    return curve


def draw_figure(root: Path, data: Path, texture: Texture, resolution: int, path: Path, n: int = 64) -> None:
    """Top: band power at 4R, real, stage 2 rendered, stage 1 upsampled, stage 2 on the twin set.
    Below: 4R patches, the same windows: stage 1 upsampled, stage 2 rendered, real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)
    scale = 4 * resolution
    images, transform, s = real_patches(data, scale, n)
    stage1, stage2 = load_generator(root / "stage1" / "checkpoint.pt"), load_generator(root / "stage2" / "checkpoint.pt")
    twin = load_generator(root / "stage2-twin" / "checkpoint.pt")
    sets = {"real": images, "stage 2, rendered": generated(stage2, "patch", transform, s),
            "stage 1, R image upsampled": generated(stage1, "patch-lanczos", transform, s),
            "stage 2 on the twin set": generated(twin, "patch", transform, s)}
    edges = octave_edges(P)
    centres = np.sqrt(edges[:-1] * edges[1:])
    fig = plt.figure(figsize=(10, 7.5))
    ax = fig.add_axes((0.08, 0.58, 0.86, 0.36))
    for (label, batch), style in zip(sets.items(), ("k-o", "b-^", "--s", ":d")):
        ax.plot(centres, band_power(grey(batch), edges).mean(0), style, label=label)
    ax.axvline(texture.cycles_per_pixel(scale), color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("frequency (cycles / pixel) at S = 4R; the grey line is the texture's")
    ax.set_ylabel("power per octave (grey levels²)")
    ax.legend(fontsize=8)
    order = ("stage 1, R image upsampled", "stage 2, rendered", "real")
    for row, label in enumerate(order):
        for col in range(6):
            a = fig.add_axes((0.08 + col * 0.145, 0.37 - row * 0.17, 0.13, 0.15))
            a.imshow(sets[label][col].permute(1, 2, 0).numpy(), interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if col == 0:
                a.set_ylabel(label.replace(", ", ",\n"), fontsize=7)
    fig.savefig(path, dpi=90)
    plt.close(fig)
