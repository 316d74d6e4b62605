"""The rendering tests hold on other CPU kernels too, not only on the machine that wrote them:
PyTorch picks its vectorised kernels by CPU (ATEN_CPU_CAPABILITY), and a different kernel may sum
in another order. These rerun the rendering tests in a fresh interpreter forced to the plain
`default` kernels and to `avx2`, so a test that compares floats bit for bit where the code makes
no such promise fails here, on any machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The tests that compare renders: tiles against whole images, splices, panoramas, the synthesis grid.
RENDERING = ["tests/training/test_panorama.py", "tests/training/test_generate.py", "tests/training/test_synthesis.py"]


@pytest.mark.slow
@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_the_rendering_tests_pass_on_other_cpu_kernels(capability, tmp_path):
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, check=True)
    # avx2 is taken only where the CPU has it; `default` is taken everywhere.
    assert probe.stdout.strip().lower() in {capability, "default"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                             "--basetemp", str(tmp_path / "tests"), *RENDERING],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
