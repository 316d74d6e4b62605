"""What every anyres command shares at the terminal: flag parsers with stated bounds, a progress
bar on stderr, and the one error path (`run_command`).

Parsers reject what no setting can mean (nan, inf, out of range) at the flag, so a bad value
ends in argparse's one-line usage error with exit code 2, never in a traceback further in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from plumbing.errors import UserError

_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}
MAX_SIZE_BYTES = 2**50  # 1 PiB: beyond any shard or file bound anyone means
MAX_SIDE = 2**31 - 1  # pixels: the index stores sides as int32


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GB, 500MB, 64MiB, 1000000)")
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not value <= MAX_SIZE_BYTES:
        raise argparse.ArgumentTypeError(f"size too large: {text!r} (at most 1 PiB)")
    return int(value)


def size_between(low: int, high: int = MAX_SIZE_BYTES) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_size(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high} bytes, got {text!r}")
        return value

    return parse


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return parse


def float_between(low: float, high: float = math.inf, low_open: bool = True,
                  high_open: bool = False) -> Callable[[str], float]:
    """A finite float in (low, high] by default; nan and inf are never settings."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {'more than' if low_open else 'at least'} {low}, got {value}")
        if value > high or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"must be {'less than' if high_open else 'at most'} {high}, got {value}")
        return value

    return parse


# C0 and C1 control characters, DEL, and the Unicode controls that reorder or hide text (bidi
# overrides, zero-width marks, line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: object) -> str:
    """Text from a dataset, safe to print: control characters become visible escapes, so a
    shard name or a licence cannot clear the screen, move the cursor or fake an "OK" line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", str(text))


_CONTROL_NON_ASCII = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable_json(doc: object) -> str:
    """Indented JSON that stays valid and readable, with every control character escaped
    (json escapes those below 0x20 itself; the rest become \\uXXXX here)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    return _CONTROL_NON_ASCII.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `PROG CMD: error: argument --x: ... (see --help)`,
    exit code 2, instead of the usage block above it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A bar on stderr, shown from the first step on: a call that fails before any work
    leaves its one error line alone."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    progress = Progress(*columns, console=Console(stderr=True), transient=True)
    task = progress.add_task(label, total=total)

    def advance(n: int) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.advance(task, n)

    try:
        yield advance
    finally:
        if progress.live.is_started:
            progress.stop()


def _reader_gone() -> None:
    # Rich's default exits with status 1 when stdout's reader has gone (`info | head`); raised
    # instead, it ends where every command's does (console.run_command): exit 0, stdout quiet.
    raise BrokenPipeError


def print_report(renderable: Any, markup: bool = False) -> None:
    """A rich table or panel on stdout; a reader that goes away ends the command quietly."""
    from rich.console import Console

    console = Console()
    console.on_broken_pipe = _reader_gone
    console.print(renderable, markup=markup, emoji=False)  # markup only in a caller's own strings


def _silence_stdout() -> None:
    # The reader of our stdout has gone (`ls | head`): point stdout at /dev/null so that the
    # interpreter's final flush does not fail a second time and turn exit 0 into 120.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_command(prog: str, args: argparse.Namespace, interrupted: str = "interrupted") -> int:
    """Every anyres command ends here: user errors become one line on stderr and exit code 2."""
    try:
        return args.run(args)
    except UserError as exc:
        # One line, escaped: messages quote dataset text (names, values) and library errors.
        print(f"{prog}: error: {printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `anyres-shards ls ... | head`
        _silence_stdout()
        return 0
    except OSError as exc:  # e.g. an output folder that cannot be written
        where = getattr(exc, "filename", None)
        print(f"{prog}: error: {exc.strerror or exc}" + (f": {where}" if where else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
