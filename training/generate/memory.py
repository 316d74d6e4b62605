"""How many tiles one generator call takes, and the host memory a generation needs.

A tile's peak activations are estimated from the layer plan on exact grids: the largest layer
holds its input and, around the nonlinearity, a few tensors at its fine rate (upsampled, after
the leaky ReLU, being downsampled), fp32. The batch of tiles per call fills a share of the
device's free memory with that estimate; on the CPU the same activations are host memory, so
the share is a fixed budget there.
"""

from __future__ import annotations

import math

import torch

from ..networks.generator import GeneratorConfig
from ..networks.synthesis_plan import grid_sizes

FINE_TENSORS = 4  # fine-rate tensors alive at once in a layer (see the module docstring)
CPU_BUDGET = 1 << 28  # bytes of tile activations per call on the CPU: bigger batches are no faster there
DEVICE_SHARE = 0.5  # of the device's free memory, leaving room for the allocator's caching
MAX_BATCH = 64  # beyond this a call is no faster, and the progress bar moves too rarely


def tile_bytes(cfg: GeneratorConfig, p: int) -> int:
    """Estimated peak activation bytes of one p x p tile."""
    _, sides = grid_sizes(cfg.plan(), p, "exact")
    per_layer = [layer.in_channels * s.input ** 2 + FINE_TENSORS * max(layer.in_channels, layer.out_channels) * s.fine ** 2
                 for layer, s in zip(cfg.plan().layers, sides)]
    return 4 * max(per_layer)


def default_batch(cfg: GeneratorConfig, p: int, device: torch.device, tiles: int) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free * DEVICE_SHARE
    else:
        budget = CPU_BUDGET
    return max(1, min(MAX_BATCH, tiles, int(budget // tile_bytes(cfg, p))))


def default_tile(cfg: GeneratorConfig, width: int, height: int) -> int:
    """The generator's R, at least 256 (smaller tiles spend most of their work on the margins
    that exact grids need), and no larger than the image needs; a multiple of the size step."""
    step = cfg.size_step()
    want = min(max(cfg.resolution, 256), max(width, height))
    return step * math.ceil(want / step)


def row_bytes(width: int, p: int) -> int:
    """One row of tiles as uint8 RGB, the whole width of the padded image."""
    return 3 * p * p * math.ceil(width / p)


def host_bound(cfg: GeneratorConfig, width: int, p: int, batch: int, device: torch.device) -> int:
    """Host bytes beyond the process with its network loaded, for a streamed PNG: the row
    buffer, the PNG encoder's filtered copy of a band and its byte string (3 tile rows in all, with
    one for slack), the batch's fp32 and uint8 outputs, and on the CPU the batch's activations."""
    outputs = batch * 3 * p * p * (4 + 1)
    activations = batch * tile_bytes(cfg, p) if device.type == "cpu" else 0
    return 4 * row_bytes(width, p) + outputs + activations


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"
