"""Fuzzing the readers in-process: mutated shard bytes, manifest JSON, index values and member
JSON, 1000+ cases in all, seeded. Every outcome is a result, a Problem, or a UserError (one line
at the CLI); any other exception would be a traceback, and fails the test.
"""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest
from rich.console import Console

from plumbing.errors import UserError
from shards import Dataset
from shards.format.schema import SampleMeta
from shards.tools.render import info_report
from shards.tools.stats import summarize
from shards.tools.verify import verify_dataset
from tests.factories import make_dataset

from .hostile import SHARD0, index_rows, write_index

EXTREME_INTS = [0, -1, 1, 511, 512, 513, 2**31 - 1, -(2**31), 2**62, -(2**62), 2**63 - 1]
NASTY_TEXT = ["", "\x1b[2J", "[bold]x[/]", "\ud800", "../../etc/passwd", "//127.0.0.1:9/x.tar", "a" * 5000,
              "file:///etc/passwd", "shards/shard-000000.tar", "\u202e", "\0"]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(EXTREME_INTS) * rng.choice([1, 10**rng.randrange(1, 40)])
    if kind == 1:
        return rng.choice(NASTY_TEXT)
    if kind == 2:
        return rng.random() * 10 ** rng.randrange(-5, 300)
    if kind == 3:
        return None
    if kind == 4:
        return rng.choice([True, False])
    if kind == 5 and depth < 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 6 and depth < 3:
        return {rng.choice(NASTY_TEXT + ["name", "nbytes", "sha256"]): random_value(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    if kind == 7:
        return "0" * 64
    return rng.randrange(-10, 10**6)


def mutate_doc(rng: random.Random, doc):
    """One random edit somewhere in a JSON document: replace, delete or add a value."""
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            return doc
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, (dict, list)) and child and rng.random() < 0.6:
            node = child
            continue
        action = rng.randrange(3)
        if action == 0 or isinstance(node, list):
            node[key] = random_value(rng)
        elif action == 1:
            del node[key]
        else:
            node[rng.choice(NASTY_TEXT)] = random_value(rng)
        return doc


def encode_json(rng: random.Random, doc) -> bytes:
    text = json.dumps(doc).encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:  # and some that are not JSON at all
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + bytes(rng.randrange(256) for _ in range(rng.randrange(4))) + text[cut:]
    return text


def exercise(root) -> None:
    """Everything a command does with a dataset, through the library."""
    try:
        ds = Dataset(str(root))
        Console(file=io.StringIO(), width=100).print(info_report(ds.manifest, summarize(ds.index)), markup=False)
        verify_dataset(str(root))
        for key in ds.index["key"].to_pylist()[:4]:
            with contextlib.suppress(UserError):
                ds.get(key)
        list(ds.iter_samples(on_error=lambda e: None, on_skip=lambda e: None))
    except UserError:
        pass


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    make_dataset(root, n=3, sizes=((24, 16), (16, 24)))
    return root


@pytest.mark.slow  # more than a few seconds
def test_fuzz_shard_bytes(honest):
    rng = random.Random(11)
    path = honest / SHARD0
    original = path.read_bytes()
    try:
        for _ in range(400):
            data = bytearray(original)
            kind = rng.randrange(5)
            if kind == 0:
                for _ in range(rng.randrange(1, 9)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            elif kind == 1:
                del data[rng.randrange(len(data)):]
            elif kind == 2:
                at = rng.randrange(len(data) // 512) * 512
                data[at:at] = bytes(rng.randrange(256) for _ in range(512))
            elif kind == 3:  # a header field set to something odd
                header = rng.randrange(len(data) // 512) * 512
                start, end = rng.choice([(0, 100), (124, 136), (148, 156), (156, 157), (257, 265), (345, 500)])
                data[header + start : header + end] = bytes(rng.randrange(256) for _ in range(end - start))
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
            path.write_bytes(bytes(data))
            exercise(honest)
    finally:
        path.write_bytes(original)


def test_fuzz_manifest_json(honest):
    rng = random.Random(12)
    path = honest / "dataset.json"
    original = path.read_bytes()
    try:
        for _ in range(400):
            doc = json.loads(original)
            for _ in range(rng.randrange(1, 4)):
                doc = mutate_doc(rng, doc)
            path.write_bytes(encode_json(rng, doc))
            exercise(honest)
    finally:
        path.write_bytes(original)


@pytest.mark.slow  # more than a few seconds
def test_fuzz_index_values(honest):
    rng = random.Random(13)
    path = honest / "index.parquet"
    original = path.read_bytes()
    rows = index_rows(honest)
    columns = list(rows[0])
    try:
        for _ in range(200):
            edited = [dict(r) for r in rows]
            for _ in range(rng.randrange(1, 4)):
                row, column = rng.choice(edited), rng.choice(columns)
                value = rng.choice(EXTREME_INTS) if isinstance(row[column], int) else rng.choice(NASTY_TEXT)
                row[column] = value
            try:
                write_index(honest, edited, pin=False)
            except (OverflowError, ValueError, UnicodeEncodeError):
                continue  # a value the index cannot even hold: nothing to read
            exercise(honest)
    finally:
        path.write_bytes(original)


def test_fuzz_member_json():
    rng = random.Random(14)
    base = index_rows_doc()
    for _ in range(1000):
        doc = mutate_doc(rng, json.loads(json.dumps(base)))
        with contextlib.suppress(UserError):
            SampleMeta.from_json_bytes(encode_json(rng, doc))


def index_rows_doc() -> dict:
    return {"key": "file-0123456789abcdef0123", "width": 64, "height": 48, "orientation": 1, "format": "jpeg",
            "ext": "jpg", "mode": "RGB", "nbytes": 1000, "sha256": "0" * 64, "phash": "0" * 16,
            "source": "folder", "source_id": "a.jpg", "license": None, "dup_count": 0,
            "duplicates": ["x"], "title": "t"}
