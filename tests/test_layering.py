"""DESIGN.md 1: imports go one way, curation -> shards <- training, and each package keeps
its heavy dependencies out of the others. Each check imports every module of a package in a
fresh interpreter, so it stays true as the packages grow."""

import json
import subprocess
import sys

import pytest

FORBIDDEN = {
    "shards": {"torch", "ray", "curation", "training", "webdataset", "flickrapi"},
    "training": {"ray", "flickrapi", "curation"},
    "curation": {"torch", "training"},
}

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
