"""What a 360° model (GeneratorConfig.fov) adds to training: frames that cross frame borders.

The paper's cross-frame discriminator: a generated frame and the next one along the turn (T
moved one window width to the right) are rendered apart, set side by side, and D sees a
frame-sized window of the pair starting anywhere from 0 to p pixels in. Frames rendered apart
must therefore join where they meet, which is what a panorama made of separately rendered frames
relies on; the real frames cross the image's seam as often (loader/panorama_frames.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def splice_offsets(seed: int, rank: int, step: int, salt: int, batch: int, size: int) -> torch.Tensor:
    """Where each sample's window starts in its pair, 0 to `size` pixels: a function of (seed,
    rank, step, salt) alone, so that a resumed run draws what the uninterrupted one did."""
    rng = np.random.default_rng([seed, rank, step, salt, 0x360])
    return torch.from_numpy(rng.integers(0, size + 1, batch))


def next_frames(transform: torch.Tensor) -> torch.Tensor:
    """T of the frame one window width to the right of each frame."""
    shifted = transform.clone()
    shifted[:, 0, 2] += transform[:, 0, 0]  # the window spans T[0, 0] canvas units
    return shifted


def spliced_frames(render: Callable[..., torch.Tensor], z: torch.Tensor, transform: torch.Tensor,
                   scale: torch.Tensor, size: int, offsets: torch.Tensor, update_avg: bool = False) -> torch.Tensor:
    """`render(z, T, S, size, update_avg=...)` of each frame and its right neighbour, in one call,
    then each sample's size-wide window of the pair from offsets[i]."""
    b = z.shape[0]
    pair = render(torch.cat([z, z]), torch.cat([transform, next_frames(transform)]), torch.cat([scale, scale]), size,
                  update_avg=update_avg)
    wide = torch.cat(pair.split(b), dim=3)  # b x c x size x 2 size
    columns = offsets.to(wide.device)[:, None] + torch.arange(size, device=wide.device)
    index = columns[:, None, None, :].expand(b, wide.shape[1], size, size)
    return wide.gather(3, index)
