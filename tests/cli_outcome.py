"""How a command ends, as the failure policy (DESIGN.md 5) wants it: exit 0, or exit 2 with
exactly one line on stderr, and never a traceback. Shared by the flag fuzz of every CLI."""

from __future__ import annotations

from collections.abc import Callable


def run_main(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse rejects a flag value by exiting
        return exc.code


def one_error_line(code: int, err: str) -> str:
    """The single stderr line of a refused call (exit 2)."""
    assert code == 2, err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and "error:" in err, err
    return err.rstrip("\n")


def check_flag_outcome(code: int, err: str, flag: str, is_setting: bool) -> None:
    """A value that is a setting ends normally or in one user-error line about the result; any
    other value is refused at the flag itself, before any dataset or network is touched."""
    if is_setting and code == 0:
        assert "Traceback" not in err, err
        return
    line = one_error_line(code, err)
    if not is_setting:
        assert f"argument {flag}" in line, err


def unexplained_flags(parser, min_words: int = 2, shown: str | None = None) -> list[str]:
    """The flags and arguments of an argparse parser whose help is not a sentence of at least
    `min_words` words (or, given the --help text `shown`, is missing from it)."""
    import argparse

    missing = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        text = " ".join((action.help or "").split())
        if len(text.split()) < min_words or (shown is not None and text not in shown):
            missing.append("/".join(action.option_strings) or action.dest)
    return missing
