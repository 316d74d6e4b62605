"""Files that appear only when complete: write a temporary beside the target, fsync, rename.

A crash or a kill leaves at most a `NAME.tmp`, never a half-written file under its final name
(DESIGN.md 5). The temporary is created with O_EXCL | O_NOFOLLOW after removing any leftover,
so a symlink planted at `NAME.tmp` cannot redirect the write out of the folder.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def open_exclusive(path: Path) -> IO[bytes]:
    """A new file at `path` for writing, whatever was there (file or symlink) removed first."""
    path.unlink(missing_ok=True)  # removes a symlink itself, never its target
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "wb")


def finish(file: IO[bytes], tmp: Path, path: Path) -> None:
    """Flush and fsync an open temporary, close it, and rename it to its final name."""
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(tmp, path)


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = tmp_path(path)
    file = open_exclusive(tmp)
    try:
        file.write(data)
        finish(file, tmp, path)
    except BaseException:
        file.close()
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_with(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Atomic write of whatever `write(buffer)` produces (a parquet table, a PNG, a checkpoint)."""
    buffer = io.BytesIO()
    write(buffer)
    atomic_write(path, buffer.getvalue())


def atomic_write_json(path: Path, value: Any, end: str = "", **dumps_options: Any) -> None:
    """`value` as JSON (json.dumps with `dumps_options`, then `end`), atomically."""
    atomic_write(path, (json.dumps(value, **dumps_options) + end).encode())


def atomic_write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """One JSON line per record, atomically: a JSONL file rewritten whole."""
    atomic_write(path, "".join(json.dumps(record) + "\n" for record in records).encode())


def atomic_write_parquet(path: Path, table, **options: Any) -> None:
    import pyarrow.parquet as pq

    atomic_write_with(path, lambda sink: pq.write_table(table, sink, **options))


def atomic_write_png(path: Path, image) -> None:
    """A Pillow image or a matplotlib figure, as PNG."""
    if hasattr(image, "savefig"):
        atomic_write_with(path, lambda sink: image.savefig(sink, format="png"))
    else:
        atomic_write_with(path, lambda sink: image.save(sink, format="PNG"))
