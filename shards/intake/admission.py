"""What enters a dataset: which files under a folder are looked at, which images are kept, and
the metadata a kept image is stored with. One policy for `anyres-shards pack` and for
`anyres-curate` (folders, URL lists, Flickr alike), so that the same image is kept or rejected,
with the same reason, whichever tool stores it.

Mode policy. The dataset keeps original bytes that training decodes to RGB, so an image is kept
only when that conversion is exact and needs no choice the dataset would be making for its
users:
- RGB and L (8-bit grey) are kept. 16-bit-per-channel RGB PNGs open as RGB and are kept.
- RGBA and LA are kept when the alpha channel is fully opaque (some tools always write one);
  any transparency rejects the image (`transparent`): cut-outs and graphics are not photos, and
  compositing them onto a background would invent pixels.
- CMYK is rejected (`unsupported-mode`): a faithful RGB needs the embedded ICC transform, and
  converting without it shifts colours that a GAN would then learn.
- P (palette), 1 (bilevel), I;16 / I / F (high-bit-depth grey) and anything else are rejected
  (`unsupported-mode`): palette and bilevel images are graphics or posterised, and the 16-bit
  grey modes have no lossless 8-bit RGB reading that readers agree on.
- Animated GIF, PNG and WebP (more than one frame) are rejected (`animated`). A JPEG with more
  than one frame is a camera MPO file, whose first frame is the photo: kept.

Folder policy. Image files are found by suffix, depth first in name order. Symlinked folders
are followed (datasets are often assembled from links) unless they lead back to a folder on the
current path: that is a loop, and becomes a reject rather than an endless walk.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from shards.format.schema import SampleMeta
from shards.intake.probe import DEFAULT_MAX_PIXELS, Decoded, ImageInfo, ProbeError, decode_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
KEPT_MODES = ("RGB", "L")
ALPHA_MODES = ("RGBA", "LA")  # kept when fully opaque
ANIMATABLE = ("gif", "png", "webp", "tiff")


@dataclass(frozen=True)
class FilterConfig:
    min_side: int = 256
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard, on the declared size
    max_aspect: float | None = None  # longer side / shorter side


def admit(data: bytes, filters: FilterConfig) -> ImageInfo:
    """The probed image, or ProbeError with the reason it is rejected."""
    return admit_decoded(data, filters).info


def admit_decoded(data: bytes, filters: FilterConfig) -> Decoded:
    """`admit`, keeping what the probe decoded (see `probe.Decoded`)."""
    decoded = decode_image(data, max_pixels=filters.max_pixels)
    check_image(decoded.info, data, filters)
    return decoded


def check_image(info: ImageInfo, data: bytes, filters: FilterConfig) -> None:
    if info.frames > 1 and info.format in ANIMATABLE:
        raise ProbeError("animated", f"{info.frames} frames")
    if info.mode in ALPHA_MODES:
        if not _opaque(data):
            raise ProbeError("transparent", f"mode {info.mode} with transparent pixels")
    elif info.mode not in KEPT_MODES:
        raise ProbeError("unsupported-mode", f"mode {info.mode}: {_why(info.mode)}")
    side = min(info.width, info.height)
    if side < filters.min_side:
        raise ProbeError("too-small", f"{info.width}x{info.height}, shorter side below {filters.min_side}")
    aspect = max(info.width, info.height) / side
    if filters.max_aspect is not None and aspect > filters.max_aspect:
        raise ProbeError("bad-aspect", f"{info.width}x{info.height}, aspect {aspect:.2f} above {filters.max_aspect}")


def _opaque(data: bytes) -> bool:
    # A second decode, full size: alpha images are rare, and PNG has no reduced decode.
    with Image.open(io.BytesIO(data)) as image:
        low, _ = image.getchannel("A").getextrema()
    return low == 255


def _why(mode: str) -> str:
    if mode == "CMYK":
        return "colours need the embedded ICC transform to be right"
    if mode in ("P", "PA"):
        return "palette images hold at most 256 colours"
    if mode.startswith("I") or mode == "F":
        return "high-bit-depth grey has no agreed 8-bit reading"
    return "only RGB, grey and opaque RGBA/LA are kept"


def file_key(relative_path: str) -> str:
    return "file-" + hashlib.sha1(relative_path.encode()).hexdigest()[:20]


def sample_meta(info: ImageInfo, key: str, source: str, source_id: str, provenance: dict[str, Any],
                extra: dict[str, Any] | None = None) -> SampleMeta:
    """The one way a probed image becomes a sample's metadata."""
    return SampleMeta(key=key, **info.facts(), source=source, source_id=source_id,
                      extra=dict(extra or {}), **provenance)


def read_file(path: str, max_bytes: int | None = None) -> bytes:
    """A file's bytes, or ProbeError saying why they cannot be read."""
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            raise ProbeError("not-a-file", "not a regular file (a device, fifo or socket)")
        if max_bytes is not None and st.st_size > max_bytes:
            raise ProbeError("too-large", f"{st.st_size} bytes, more than the cap of {max_bytes}")
        with open(path, "rb") as f:
            data = f.read(-1 if max_bytes is None else max_bytes + 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProbeError("symlink-loop", exc.strerror or "too many levels of symbolic links") from None
        raise ProbeError("unreadable", f"{exc.strerror or exc} ({type(exc).__name__})") from None
    if max_bytes is not None and len(data) > max_bytes:  # it grew while we read it
        raise ProbeError("too-large", f"more than the cap of {max_bytes} bytes")
    return data


@dataclass(frozen=True)
class FolderEntry:
    relative: str  # POSIX path under the root: the sample's source_id
    path: str  # absolute
    error: tuple[str, str] | None = None  # (reason, detail): a folder that cannot be walked


def walk_images(root: str | Path) -> Iterator[FolderEntry]:
    """Image files under `root` by the folder policy above, and the folders that could not be
    walked, each with the reason."""
    root = Path(root).absolute()
    yield from _walk(root, "", [_dir_id(root)])


def _dir_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _walk(folder: Path, prefix: str, ancestors: list[tuple[int, int]]) -> Iterator[FolderEntry]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield FolderEntry(prefix.rstrip("/") or ".", str(folder), ("unreadable", f"cannot list folder: {exc.strerror}"))
        return
    for entry in entries:
        relative = prefix + entry.name
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError:  # a link to itself: not a folder; reading it says why
            is_dir = False
        if is_dir:
            try:
                ident = _dir_id(Path(entry.path))
            except OSError as exc:
                yield FolderEntry(relative, entry.path, ("unreadable", f"cannot stat folder: {exc.strerror}"))
                continue
            if ident in ancestors:
                target = os.path.realpath(entry.path)
                yield FolderEntry(relative, entry.path, ("symlink-loop", f"folder link back to {target}"))
                continue
            yield from _walk(Path(entry.path), relative + "/", [*ancestors, ident])
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            yield FolderEntry(relative, entry.path)
