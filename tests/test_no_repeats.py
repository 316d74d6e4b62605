"""No block of six or more lines is repeated between modules of shards/, curation/ and training/:
a repeated block is a helper that wants one home (issue 10).

Lines are compared stripped, without blank lines, comments and import statements, so moving
code around or re-indenting it does not hide a copy, and shared import lists do not count.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("plumbing", "shards", "curation", "training")
BLOCK = 6


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that count."""
    text = path.read_text()
    imports = set()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.update(range(node.lineno, node.end_lineno + 1))
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#") and number not in imports]


def repeated_blocks() -> list[str]:
    seen: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = code_lines(path)
            name = str(path.relative_to(ROOT))
            for i in range(len(lines) - BLOCK + 1):
                window = tuple(text for _, text in lines[i:i + BLOCK])
                seen[window].append((name, lines[i][0]))
    # One finding per pair of files, at its first window: an eight-line copy is one, not three.
    findings: dict[tuple[str, ...], tuple[tuple[int, ...], str]] = {}
    for window, places in seen.items():
        first = {name: min(line for n, line in places if n == name) for name, _ in places}
        if len(first) < 2:
            continue
        files = tuple(sorted(first))
        lines = tuple(first[name] for name in files)
        if files not in findings or lines < findings[files][0]:
            findings[files] = (lines, window[0])
    return sorted(" = ".join(f"{name}:{line}" for name, line in zip(files, lines)) + f"  ({text[:40]!r} ...)"
                  for files, (lines, text) in findings.items())

def test_no_block_of_six_lines_is_repeated_between_modules():
    assert repeated_blocks() == []
