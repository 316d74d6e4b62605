"""The two sides of every metric: real images from the loader, and the generator's images made to
match them.

Real sets come from the training loader itself (DESIGN.md 3), seeded, with random canvases
(`centred=False`, as training sees them): `full` is its global stream at a size S (canvases
downscaled to S; images whose shorter side is below S are left out, never upsampled), `patch` its
patch stream (windows at scales S in [S_min, S_max], each with its transform T).

Generated sets are rendered on exact grids: `full` is the canvas at S (by tiles when S is larger
than a tile, networks.render.render_full), `up` the canvas at R upsampled to S (bicubic: the
baseline fid-up measures against), `patch` a window rendered through the very T and S of a real
patch, `patch-up` the same window resampled from the canvas at R (bicubic), `patch-lanczos` the
same with a Lanczos-3 interpolator (the spectra's baseline: its imaging is far weaker).

Every set carries, per image, its features (where a metric needs them), the Laplacian proxy and
its power per octave of frequency (spectrum.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shards.format.index import IndexFilter
from shards.format.reader import Dataset

from ..errors import TrainingError
from ..loader.pipeline import LoaderConfig, PatchLoader
from ..loader.sampler import StreamConfig
from ..networks.generator import Generator
from ..networks.render import identity_view, pixel_grid, render_full
from .features import FeatureNet
from .names import FakeKind, RealKind
from .spectrum import band_power, grey, octave_edges, upsample_lanczos
from .stats import laplacian_variance


@dataclass(frozen=True)
class RealSpec:
    kind: RealKind
    size: int  # full: the output side S; patch: the patch side p
    n: int
    seed: int
    s_min: float | None = None  # patch only
    s_max: float | None = None
    distribution: str = "uniform"

    def stream(self) -> StreamConfig:
        if self.kind == "full":
            return StreamConfig("global", size=self.size, centred=False)
        return StreamConfig("patch", size=self.size, s_min=self.s_min, s_max=self.s_max,
                            distribution=self.distribution, centred=False)

    def describe(self) -> dict[str, Any]:
        d = {"kind": self.kind, "size": self.size, "n": self.n, "seed": self.seed}
        if self.kind == "patch":
            d.update(s_min=self.stream().min_scale, s_max=self.s_max, distribution=self.distribution)
        return d


def dataset_fingerprint(dataset: Dataset) -> str:
    """The manifest's root hash (it pins the index and every shard's bytes); a manifest without
    one is fingerprinted by its own bytes."""
    import hashlib
    import json

    root = dataset.manifest.get("root_hash")
    if isinstance(root, str):
        return root
    return "manifest:" + hashlib.sha256(json.dumps(dataset.manifest, sort_keys=True, default=str).encode()).hexdigest()


def loader_config(data: str, spec: RealSpec, batch: int) -> LoaderConfig:
    stream = spec.stream()
    # Only images that render at S without upsampling: for `full` at 1024, the high-resolution
    # subset, chosen from the index without opening a tar.
    select = IndexFilter(min_side=stream.usable_side())
    return LoaderConfig(data=data, stream=stream, batch_size=batch, epoch_patches=math.ceil(spec.n / batch) * batch,
                        shuffle_buffer=0, seed=spec.seed, resampled=True, num_workers=0, dtype="uint8",
                        select=select)


def usable_images(dataset: Dataset, spec: RealSpec) -> int:
    index = dataset.index
    sides = np.minimum(index["width"].to_numpy(), index["height"].to_numpy())
    return int((sides >= spec.stream().usable_side()).sum())


def real_batches(dataset: Dataset, spec: RealSpec, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 images, T float32, S float64) in batches, exactly spec.n patches in all."""
    if usable_images(dataset, spec) == 0:
        raise TrainingError(f"no image of {dataset.url} has a shorter side of at least "
                            f"{spec.stream().usable_side()} px: nothing to compare a {spec.kind} set at {spec.size} with")
    loader = PatchLoader(loader_config(dataset.url, spec, batch), rank=0, world_size=1, dataset=dataset)
    left = spec.n
    for b in loader:
        take = min(left, len(b))
        yield b.image[:take], b.transform[:take], b.scale[:take]
        left -= take
        if left == 0:
            return
    raise TrainingError(f"the loader gave only {spec.n - left} of {spec.n} real {spec.kind} images from {dataset.url}")


def batch_count(n: int, batch: int) -> int:
    return math.ceil(n / batch)


def real_set(dataset: Dataset, spec: RealSpec, features: FeatureNet, batch: int,
             progress: Callable[[int], None] = lambda n: None, batches: range | None = None) -> dict[str, np.ndarray]:
    """Features, transforms, scales and the high-frequency proxy of one real set, or of its
    `batches` only (one rank's share, ranks.py); empty when that share is."""
    batches = range(batch_count(spec.n, batch)) if batches is None else batches
    if not batches:
        return {}
    device = next(features.parameters(), torch.empty(0)).device
    out: dict[str, list] = {"features": [], "transform": [], "scale": [], "laplacian": [], "spectrum": []}
    # Every share is cut from the whole one-process draw (rank 0 of a world of 1): the loader's
    # draws depend on its rank and world, and these must not. Earlier batches are drawn and
    # dropped, so decoding repeats on every rank while the embedding, the costly part on a
    # device, is split; sending decoded images from one rank would move far more bytes.
    for i, (images, t, s) in enumerate(real_batches(dataset, spec, batch)):
        if i < batches.start:
            continue
        if i >= batches.stop:
            break
        out["features"].append(features(images.to(device)).cpu().numpy())
        out["transform"].append(t.numpy())
        out["scale"].append(s.numpy())
        out["laplacian"].append(laplacian_variance(images))
        out["spectrum"].append(band_power(grey(images), octave_edges(images.shape[-1])))
        progress(len(images))
    return {k: np.concatenate(v) for k, v in out.items()}


def latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def choose_tile(size: int, step: int, max_tile: int) -> int:
    """The largest tile side that divides `size`, is a multiple of the generator's grid step and
    is at most max_tile: exact tiles of one render (networks/render.py)."""
    if size % step:
        raise TrainingError(f"--size {size} is not a multiple of {step}, the generator's coarsest grid step")
    tiles = [t for t in range(step, min(size, max(max_tile, step)) + 1, step) if size % t == 0]
    return max(tiles)


def upsample_window(canvas: torch.Tensor, transform: torch.Tensor, p: int) -> torch.Tensor:
    """The p x p window T of a canvas image, resampled bicubically: pixel centres go through T to
    canvas coordinates in [-0.5, 0.5], which grid_sample (align_corners=False) reads as 2u."""
    grid = pixel_grid(p, canvas.device).double()  # p x p x 3 homogeneous patch coordinates
    coords = torch.einsum("bij,hwj->bhwi", transform[:, :2].double().to(canvas.device), grid)
    return F.grid_sample(canvas.float(), (2 * coords).float(), mode="bicubic", padding_mode="border",
                         align_corners=False)


@torch.no_grad()
def fake_images(g: Generator, kind: FakeKind, z: torch.Tensor, size: int, tile: int,
                transform: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
    """One batch of generated images as uint8: `size` is S for full/up, p for the patch kinds."""
    device = next(g.parameters()).device
    ws = g.mapping(z.to(device))
    r = g.cfg.resolution
    if kind == "full":
        return to_uint8(render_full(g, ws, size, tile if tile < size else None))
    if kind == "patch":
        return to_uint8(g.synthesis(ws, transform.to(device), scale.to(device), size, grid="exact"))
    canvas = g.synthesis(ws, *identity_view(len(ws), r, device), r, grid="exact")
    if kind == "up":
        return to_uint8(F.interpolate(canvas.float(), size=(size, size), mode="bicubic", align_corners=False))
    if kind == "patch-lanczos":
        return to_uint8(upsample_lanczos(canvas.float(), transform, size))
    return to_uint8(upsample_window(canvas, transform, size))


def fake_set(g: Generator, kind: FakeKind, real: dict[str, np.ndarray], spec: RealSpec, features: FeatureNet,
             batch: int, seed: int, tile: int, progress: Callable[[int], None] = lambda n: None,
             batches: range | None = None, embed: bool = True) -> dict[str, np.ndarray]:
    """The generated counterpart of a real set: n latents from `seed`; for the patch kinds, patch
    i is made through real patch i's own T and S. `batches`: one rank's share (ranks.py).
    `embed=False`: no features (the spectra and the proxy need none, and embedding is the cost)."""
    batches = range(batch_count(spec.n, batch)) if batches is None else batches
    if not batches:
        return {}
    z = latents(spec.n, g.cfg.z_dim, seed)  # all n on every rank: latent i whatever the share
    transform, scale = torch.from_numpy(real["transform"]), torch.from_numpy(real["scale"])
    device = next(features.parameters(), torch.empty(0)).device
    out: dict[str, list] = {"features": [], "laplacian": [], "spectrum": []}
    for b in batches:
        part = slice(b * batch, (b + 1) * batch)
        images = fake_images(g, kind, z[part], spec.size, tile, transform[part], scale[part])
        if embed:
            out["features"].append(features(images.to(device)).cpu().numpy())
        out["laplacian"].append(laplacian_variance(images.cpu()))
        out["spectrum"].append(band_power(grey(images.cpu()), octave_edges(images.shape[-1])))
        progress(len(images))
    return {k: np.concatenate(v) for k, v in out.items() if v}
