"""Admission: decode the bytes once (reduced-size for JPEG), apply the filters and the mode
policy, and describe what is kept as a `SampleMeta`.

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
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from shards import SampleMeta
from shards.probe import DEFAULT_MAX_PIXELS, ImageInfo, ProbeError, probe_image

from .items import Item

KEPT_MODES = ("RGB", "L")
ALPHA_MODES = ("RGBA", "LA")  # kept when fully opaque
ANIMATABLE = ("gif", "png", "webp", "tiff")


@dataclass(frozen=True)
class FilterConfig:
    min_side: int = 256
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard, on the declared size
    max_aspect: float | None = None  # longer side / shorter side


def admit(item: Item, data: bytes, filters: FilterConfig) -> SampleMeta:
    """The sample's metadata, or ProbeError with the reason it is rejected."""
    info = probe_image(data, max_pixels=filters.max_pixels)
    check_image(info, data, filters)
    provenance = dict(item.provenance)
    if item.source == "url":
        provenance.setdefault("url", item.source_id)
    return SampleMeta(
        key=item.key, width=info.width, height=info.height, orientation=info.orientation,
        format=info.format, ext=info.ext, mode=info.mode, nbytes=info.nbytes, sha256=info.sha256,
        phash=info.phash, source=item.source, source_id=item.source_id, extra=dict(item.extra), **provenance,
    )


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
