"""Real statistics on disk: the features of a real set, with the transforms of its patches.

A file is named by the hash of its key and holds the key itself, checked on every read: the
dataset's fingerprint (its manifest's root hash), the real source (stream, size, scales), the
sample count, the seed and the feature network. Any change to any of them is another file, so
statistics are never mixed, and a stale or foreign file is recomputed, never trusted. Files are
written atomically (plumbing.atomic): a killed run leaves no half file under a final name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from plumbing.atomic import atomic_write_with

VERSION = 2  # of this file layout and of how real sets are drawn: bump to orphan old files (2: spectra)


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "anyres" / "eval"


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"version": VERSION, **key}, sort_keys=True).encode()).hexdigest()


class StatsCache:
    def __init__(self, folder: Path | None):
        self.folder = None if folder is None else Path(folder)  # None: no caching at all

    def path(self, key: dict[str, Any]) -> Path:
        assert self.folder is not None
        return self.folder / f"real-{key_digest(key)[:24]}.npz"

    def load(self, key: dict[str, Any]) -> dict[str, np.ndarray] | None:
        if self.folder is None:
            return None
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None  # absent or unreadable: computed afresh, and the file replaced
        stored = arrays.pop("key", None)
        if stored is None or json.loads(str(stored)) != json.loads(json.dumps({"version": VERSION, **key})):
            return None
        return arrays

    def save(self, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path | None:
        if self.folder is None:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        text = np.array(json.dumps({"version": VERSION, **key}, sort_keys=True))

        def write(sink: io.BytesIO) -> None:
            np.savez(sink, key=text, **arrays)

        atomic_write_with(path, write)
        return path
