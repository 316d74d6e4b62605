"""DESIGN.md 1: imports go one way, curation -> shards <- training (all three may use plumbing), and each package keeps
its heavy dependencies out of the others; curation and training never import each other.
One check imports every module of a package in a fresh interpreter; another reads every import
statement, those inside functions too, which an import at run time would miss until called.
Both walk the packages, so they stay true as the packages grow."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = {
    # The shared plumbing: every layer may import it, so it imports none of them and nothing heavy.
    "plumbing": {"shards", "curation", "training", "torch", "ray", "webdataset", "flickrapi", "cv2"},
    "shards": {"torch", "ray", "curation", "training", "webdataset", "flickrapi"},
    "training": {"ray", "flickrapi", "curation"},
    "curation": {"torch", "training"},
}
ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package):
    result = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert package in loaded
    assert not loaded & FORBIDDEN[package], f"{package} loads {sorted(loaded & FORBIDDEN[package])}"


def test_shards_alone_loads_pyarrow_and_pillow():
    # The positive side: the probe really imported the modules that use them.
    result = subprocess.run([sys.executable, "-c", PROBE, "shards"], capture_output=True, text=True, check=True)
    assert {"pyarrow", "PIL", "fsspec", "imagehash"} <= set(json.loads(result.stdout))


def imported_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, wherever the statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_statement_crosses_a_layer(package):
    found = {str(path.relative_to(ROOT)): sorted(imported_names(path) & FORBIDDEN[package])
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in found.items() if names} == {}
