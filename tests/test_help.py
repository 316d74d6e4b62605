"""Every command and subcommand's --help explains every flag with a sentence (issue 14): a flag
that shows up bare in --help is a flag nobody can use without reading the code."""

from __future__ import annotations

import argparse

import pytest

from curation.cli import build_parser as curate_parser
from shards.tools.cli import build_parser as shards_parser
from tests.cli_outcome import unexplained_flags
from training.commands.eval import build_parser as eval_parser
from training.commands.generate import build_parser as generate_parser
from training.commands.train import build_parser as train_parser

COMMANDS = {"anyres-shards": shards_parser, "anyres-curate": curate_parser, "anyres-train": train_parser,
            "anyres-eval": eval_parser, "anyres-generate": generate_parser}


def parsers(name: str, parser: argparse.ArgumentParser):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from parsers(f"{name} {sub}", subparser)


ALL = [(name, p) for command, build in COMMANDS.items() for name, p in parsers(command, build())]


@pytest.mark.parametrize("name, parser", ALL, ids=[name for name, _ in ALL])
def test_every_flag_and_argument_has_a_sentence_of_help(name, parser):
    assert unexplained_flags(parser) == [], f"{name}: flags without help"


def summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The one-line help each subcommand is listed with in its parent's --help."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({choice.dest: choice.help or "" for choice in action._choices_actions})
    return found


@pytest.mark.parametrize("name, parser", ALL, ids=[name for name, _ in ALL])
def test_every_command_says_what_it_does(name, parser):
    command, _, sub = name.partition(" ")
    said = parser.description or (summaries(COMMANDS[command]()).get(sub, "") if sub else "")
    assert len(said.split()) >= 3, f"{name}: no description"
