"""training/'s rooms import one another one way: no loop between its folders.

A node is a folder of training/ (loader, networks, run, ...) or one of its top-level modules
(geometry, checkpoint, dist, ...): those are the shared ground every folder may stand on. Every
import statement counts, relative ones and those inside functions too, as test_layering reads them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "training"


def node_of(module: list[str]) -> str | None:
    """training.run.loop -> 'run'; training.checkpoint -> 'checkpoint'; training itself -> None."""
    return module[1] if len(module) > 1 else None


def module_parts(path: Path) -> list[str]:
    parts = ["training", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(path: Path) -> set[tuple[str, ...]]:
    """Every training module a file imports, as dotted parts, relative imports resolved."""
    here = module_parts(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {tuple(alias.name.split(".")) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            # `from . import checkpoint` names modules; `from .x import name` names x.
            found |= {(*module, alias.name) for alias in node.names} if not node.module else {tuple(module)}
    return {m for m in found if m[0] == "training"}


def folder_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        source = node_of(module_parts(path))
        if source is None or source == "__main__":  # the package and `python -m training` stand above all
            continue
        for target in map(node_of, map(list, imported_modules(path))):
            if target is not None and target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return [*trail[trail.index(node):], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target, [*trail, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def test_the_folders_of_training_import_one_another_without_a_loop():
    graph = folder_graph()
    assert {"run", "eval", "generate", "loader", "networks"} <= set(graph)  # the walk saw the folders
    cycle = find_cycle(graph)
    assert cycle is None, "import loop: " + " -> ".join(cycle)


def test_checkpoints_and_process_groups_stand_below_every_command():
    # Every command reads snapshots or joins process groups: these import no folder of training/
    # but the networks a checkpoint builds.
    graph = folder_graph()
    assert graph.get("dist", set()) == set()
    assert graph.get("checkpoint", set()) <= {"errors", "networks"}


def test_a_loop_is_found_where_there_is_one():
    assert find_cycle({"run": {"eval"}, "eval": {"dist", "run"}}) == ["eval", "run", "eval"]
    assert find_cycle({"run": {"eval", "dist"}, "eval": {"dist"}}) is None


def test_the_commands_are_imported_by_no_library_folder():
    # commands/ is the top floor: the console scripts and `python -m training` stand on it, nothing else.
    graph = folder_graph()
    assert "commands" in graph and [s for s, targets in graph.items() if "commands" in targets] == []
