"""Hostile images and resource bombs: deep verify checks what training uses, and no dataset
takes unbounded memory or time (measured in a subprocess by its peak resident memory, or timed).

Images here are consistent forgeries: the json and the index agree with the stored bytes'
sha256, so only decoding the image can tell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards import DatasetWriter, WriterConfig
from shards.format.schema import INDEX_SCHEMA
from shards.intake.probe import probe_image
from tests.factories import encode, gradient, make_dataset, make_sample

from .hostile import SHARD0, read_manifest, repin, write_manifest
from .test_hostile import one_line_error, run_cli


def write_one(root: Path, data: bytes, good: bytes | None = None, **fields) -> str:
    """A one-sample dataset holding `data`, described as `good` (default: itself) would be."""
    meta, _ = make_sample(0, 8, 8)
    info = probe_image(good or data)
    described = {"width": info.width, "height": info.height, "orientation": info.orientation, "format": info.format,
                 "ext": info.ext, "mode": info.mode, "phash": info.phash}
    meta = dataclasses.replace(meta, **{**described, **fields}, nbytes=len(data),
                               sha256=hashlib.sha256(data).hexdigest())
    with DatasetWriter(root, WriterConfig()) as writer:
        writer.add(meta, data)
        writer.finalize()
    return meta.key


def flipped_png() -> tuple[bytes, bytes]:
    good = encode(gradient(64, 48), "PNG")
    at = good.index(b"IDAT") + 4 + 40  # inside the zlib stream
    bad = bytearray(good)
    bad[at] ^= 0x10
    return good, bytes(bad)


def many_scans(n: int = 3000) -> bytes:
    buffer = io.BytesIO()
    gradient(64, 48).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    return data[:-2] + data[last_scan:-2] * n + b"\xff\xd9"


def huge_png(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(8, 8), "PNG"))
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


def flipped_case():
    good, bad = flipped_png()
    return bad, good, {}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (flipped_case, "does not decode: corrupt"),
        (lambda: (encode(gradient(64, 48), "JPEG"), None, {"orientation": 6, "width": 48, "height": 64}),
         "disagree on width (json 48, image 64), height (json 64, image 48), orientation (json 6, image 1)"),
        (lambda: (encode(gradient(64, 48), "JPEG"), None, {"mode": "L"}), "mode (json 'L', image 'RGB')"),
        (lambda: (encode(gradient(64, 48), "PNG"), None, {"format": "jpeg"}), "format (json 'jpeg', image 'png')"),
        (lambda: (many_scans(), None, {}), "too-many-scans"),
        (lambda: (huge_png(15_000, 15_000), None, {}), "decompression-bomb"),
    ],
    ids=["png-flipped-zlib-bit", "wrong-orientation", "wrong-mode", "wrong-format", "3000-scans", "pixel-bomb"],
)
def test_deep_verify_checks_what_training_uses(tmp_path, capsys, make, expected):
    data, good, fields = make()
    root = tmp_path / "ds"
    key = _write_case(root, data, good, fields, expected)
    assert run_cli(capsys, "verify", root)[0] == 0  # consistent on its face
    start = time.perf_counter()
    code, printed, _ = run_cli(capsys, "verify", root, "--deep")
    assert code == 1 and expected in printed, printed
    assert time.perf_counter() - start < 10
    code, _, err = run_cli(capsys, "show", root, key, "-o", tmp_path, "--orient")
    assert code == 0 or one_line_error(code, err)
    assert run_cli(capsys, "grid", root, "-o", tmp_path / "g.png")[0] == 0  # a red cell reports it


def _write_case(root, data, good, fields, expected):
    if "scans" in expected or "bomb" in expected:  # the probe refuses these: describe them by hand
        meta, _ = make_sample(0, 8, 8)
        fmt = "jpeg" if "scans" in expected else "png"
        meta = dataclasses.replace(meta, format=fmt, ext="jpg" if fmt == "jpeg" else "png",
                                   nbytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        with DatasetWriter(root, WriterConfig()) as writer:
            writer.add(meta, data)
            writer.finalize()
        return meta.key
    return write_one(root, data, good, **fields)


def test_progressive_scan_bound_is_what_keeps_decoding_short(monkeypatch):
    data = many_scans(300)
    start = time.perf_counter()
    with pytest.raises(Exception, match="too-many-scans"):
        probe_image(data)
    assert time.perf_counter() - start < 0.5


# The peak is VmHWM, this process's own high-water mark: getrusage's ru_maxrss would carry
# over the peak of the pytest process it was forked from (Linux keeps it across exec).
MEASURE = """
import re, sys, time
from shards.tools.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1))
print(code, peak_kb // 1024, time.perf_counter() - start)
"""
MEMORY_BOUND_MB = 400  # the interpreter with pyarrow, Pillow and rich loaded is ~150 MB of it


def measured(*args, env=None) -> tuple[int, int, float]:
    """(exit code, peak resident MB, seconds) of an anyres-shards command in a fresh process."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *map(str, args)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    code, mb, seconds = result.stdout.split()[-3:]
    return int(code), int(mb), float(seconds)


def twenty_million_rows(root: Path) -> None:
    make_dataset(root, n=1)
    n = 500_000
    columns = {}
    for field in INDEX_SCHEMA:
        if pa.types.is_string(field.type):
            columns[field.name] = pa.array(np.full(n, "x", dtype=object), field.type)
        else:
            columns[field.name] = pa.array(np.ones(n, dtype=np.int64), pa.int64()).cast(field.type)
    table = pa.table(columns, schema=INDEX_SCHEMA)
    with pq.ParquetWriter(root / "index.parquet", INDEX_SCHEMA, compression="zstd") as writer:
        for _ in range(40):
            writer.write_table(table)
    doc = read_manifest(root)
    doc["num_samples"] = 40 * n
    write_manifest(root, doc)
    repin(root)


@pytest.mark.slow  # more than a few seconds
def test_index_bomb_is_refused_from_its_footer(tmp_path):
    root = tmp_path / "ds"
    twenty_million_rows(root)
    assert (root / "index.parquet").stat().st_size < 2_000_000
    for command in ("info", "ls"):
        code, mb, seconds = measured(command, root)
        assert code == 2 and mb < MEMORY_BOUND_MB and seconds < 10
    # With the per-row bound lifted, the rows must still agree with the manifest's num_samples.
    doc = read_manifest(root)
    doc["num_samples"] = 1
    write_manifest(root, doc)
    code, mb, _ = measured("info", root, env={"ANYRES_MIN_INDEX_BYTES_PER_ROW": "1"})
    assert code == 2 and mb < MEMORY_BOUND_MB


def test_a_member_claiming_8_gib_costs_no_memory(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, n=2)
    path = root / SHARD0
    data = bytearray(path.read_bytes())
    data[124:136] = b"77777777777\0"
    block = bytearray(data[:512])
    block[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(block)
    path.write_bytes(bytes(data))
    repin(root)
    for env in ({}, {"ANYRES_MAX_MEMBER_BYTES": str(16 * 2**30)}):  # even with the bound raised
        code, mb, seconds = measured("verify", root, env=env)
        assert code == 1 and mb < MEMORY_BOUND_MB and seconds < 10


def cli_process(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "shards.tools.cli", *map(str, args)], capture_output=True,
                            text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_fifos_never_hang(tmp_path):
    root = tmp_path / "manifest-fifo"
    make_dataset(root, n=2)
    (root / "dataset.json").unlink()
    os.mkfifo(root / "dataset.json")
    for args in (("info", root), ("verify", root), ("ls", root)):
        result = cli_process(*args)
        assert result.returncode == 2 and "not a regular file" in result.stderr
    root = tmp_path / "shard-fifo"
    make_dataset(root, n=2)
    key = pq.read_table(root / "index.parquet")["key"][0].as_py()
    (root / SHARD0).unlink()
    os.mkfifo(root / SHARD0)
    result = cli_process("verify", root)
    assert result.returncode == 1 and "not a regular file" in result.stdout
    result = cli_process("show", root, key)
    assert result.returncode == 2 and "not a regular file" in result.stderr
