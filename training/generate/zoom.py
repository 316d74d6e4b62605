"""A continuous zoom from the whole canvas into a point: the paper's way of showing that detail
is added at every scale, as frames, an animated WebP and, where a video writer is installed, an MP4.

Frame k of N is a P x P patch at scale S_k = P (Z / P)^(k / (N - 1)), from the whole canvas
(S = P) to the final scale Z: geometric, so each frame is the same ratio closer than the one
before and the zoom runs at a steady pace. Its window, P / S_k canvas units wide, is centred on
the target (cu, cv) as far as the canvas allows: the centre is clamped so that the window stays
inside [-0.5, 0.5]^2, which starts on the whole canvas and slides towards the target as the
window shrinks. Every frame is rendered with T = patch_transform(S_k, cu_k, cv_k, P).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plumbing.atomic import atomic_write_with

from ..geometry import patch_transform
from ..networks.generator import Generator
from ..networks.render import to_uint8

VIDEO_BACKENDS = ("imageio_ffmpeg", "av")  # optional: never a dependency


@dataclass(frozen=True)
class ZoomFrame:
    scale: float
    cu: float
    cv: float


def zoom_path(frames: int, size: int, zoom_to: float, cu: float, cv: float) -> list[ZoomFrame]:
    path = []
    for k in range(frames):
        scale = size * (zoom_to / size) ** (k / (frames - 1))
        room = max(0.0, 0.5 - size / (2 * scale))  # how far the window's centre may move
        path.append(ZoomFrame(scale, min(max(cu, -room), room), min(max(cv, -room), room)))
    return path


@torch.no_grad()
def render_frames(g: Generator, ws: torch.Tensor, path: list[ZoomFrame], size: int, batch: int,
                  progress: Callable[[int], None] = lambda n: None) -> Iterator[np.ndarray]:
    """The frames, (P, P, 3) uint8 each, `batch` frames per generator call."""
    device = ws.device
    for start in range(0, len(path), batch):
        chunk = path[start:start + batch]
        t = torch.from_numpy(np.stack([patch_transform(f.scale, f.cu, f.cv, size) for f in chunk])).to(device)
        s = torch.tensor([f.scale for f in chunk], device=device)
        yield from to_uint8(g.synthesis(ws.expand(len(chunk), -1, -1), t, s, size, grid="exact"))
        progress(len(chunk))


def write_webp(path: Path, frames: list[np.ndarray], fps: int) -> None:
    images = [Image.fromarray(f) for f in frames]
    atomic_write_with(path, lambda sink: images[0].save(
        sink, format="WEBP", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
        quality=90))


def video_backend() -> str | None:
    """The first installed video writer, or None: MP4s are a bonus, never a requirement."""
    return next((name for name in VIDEO_BACKENDS if importlib.util.find_spec(name) is not None), None)


def _mp4_imageio(tmp: Path, frames: list[np.ndarray], fps: int) -> None:
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    # macro_block_size 2: yuv420p needs even sides only; the default 16 would rescale the frames.
    writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=2, quality=8)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()


def _mp4_av(tmp: Path, frames: list[np.ndarray], fps: int) -> None:
    import av

    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder's delayed frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: int, backend: str) -> str | None:
    """Writes path and returns None, or returns why no MP4 was written (a codec the installed
    writer lacks, say): the frames and the WebP are the zoom, the MP4 only a convenience."""
    tmp = path.with_name(path.stem + ".tmp.mp4")  # ffmpeg picks the container from the extension
    try:
        (_mp4_imageio if backend == "imageio_ffmpeg" else _mp4_av)(tmp, frames, fps)
        os.replace(tmp, path)
        return None
    except Exception as exc:  # noqa: BLE001 - any writer failure only costs the MP4
        tmp.unlink(missing_ok=True)
        return f"{backend} could not write it ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
