"""The SHA-256 of a file, without holding it in memory: manifests, snapshots and weight files."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at `path`, read in blocks (`hashlib.file_digest` from Python 3.11)."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest = hashlib.sha256()  # Python 3.10
        while block := f.read(BLOCK):
            digest.update(block)
        return digest.hexdigest()
