"""The host-memory bound of anyres-generate, measured (issue 13): an 8192 x 8192 PNG is rendered by
tiles in a child process whose peak RSS is read with getrusage, against the same command at
1024 x 1024 (the process, torch, its network and a batch of tiles: everything that does not grow
with the image). The stated bound (commands/generate.MEMORY, memory.host_bound) says the difference
is a few rows of tiles, not the image's 192 MiB.

The generator is MICRO_G (two layers of 4 channels), not TINY_G: on two shared CPU cores TINY_G
takes about 6 minutes for 8192^2 (about 95 ms per 128 px tile), MICRO_G about a minute
(14 to 21 ms a tile, with or without other work on the cores)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from training.generate import memory

from .gan_helpers import SUBPROCESS_ENV
from .generate_helpers import MICRO_G, save_snapshot

TILE, BATCH = 128, 8
PEAK = """
import resource, sys
from training.commands.generate import main
code = main(sys.argv[1:])
print("peak-rss-kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def peak_rss(snapshot: Path, out: Path, size: int) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK, str(snapshot), "--out", str(out), "--size", str(size),
                             "--tile", str(TILE), "--batch", str(BATCH), "--device", "cpu"],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=900)
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())
    return int(re.search(r"peak-rss-kib (\d+)", result.stderr).group(1)) * 1024


def png_rows(path: Path) -> tuple[int, int, int]:
    """(width, height, rows decoded): the whole zlib stream inflated piece by piece, never held whole."""
    inflate, decoded = zlib.decompressobj(), 0
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        while True:
            length, kind = struct.unpack(">I4s", f.read(8))
            data = f.read(length)
            f.read(4)
            if kind == b"IHDR":
                width, height = struct.unpack(">II", data[:8])
            elif kind == b"IDAT":
                decoded += len(inflate.decompress(data))
            elif kind == b"IEND":
                break
    assert decoded % (1 + 3 * width) == 0
    return width, height, decoded // (1 + 3 * width)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_8192_image_stays_within_the_stated_host_memory_bound(tmp_path):
    snapshot = save_snapshot(tmp_path / "network-snapshot-000000.pt", MICRO_G)
    small = peak_rss(snapshot, tmp_path / "small.png", 1024)
    big = peak_rss(snapshot, tmp_path / "big.png", 8192)
    assert png_rows(tmp_path / "big.png") == (8192, 8192, 8192)
    image_bytes = 3 * 8192 ** 2
    bound = memory.host_bound(MICRO_G, 8192, TILE, BATCH, torch.device("cpu"))
    print(f"peak RSS {small / 2**20:.0f} MiB at 1024^2, {big / 2**20:.0f} MiB at 8192^2 "
          f"(bound: +{bound / 2**20:.0f} MiB; the image: {image_bytes / 2**20:.0f} MiB)")
    assert big - small <= bound
    assert big - small < image_bytes / 4  # nowhere near holding the image
