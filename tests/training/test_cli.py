"""`anyres-train preview`: the files a user looks at, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.factories import small_dataset
from training.commands.train import main


def test_preview_writes_sheet_plots_and_arrays(tmp_path, capsys):
    metas = small_dataset(tmp_path / "ds", 5, size=(120, 90))
    out = tmp_path / "preview"
    code = main(["preview", "--data", str(tmp_path / "ds"), "--stream", "patch", "--size", "32", "--n", "12",
                 "--seed", "0", "--out", str(out)])
    assert code == 0
    assert "wrote 12 patches" in capsys.readouterr().out
    arrays = np.load(out / "patches.npz")
    assert arrays["images"].shape == (12, 32, 32, 3) and arrays["images"].dtype == np.uint8
    assert arrays["transforms"].shape == (12, 3, 3) and arrays["canvas_boxes"].shape == (12, 3)
    assert arrays["native_sizes"].tolist() == [[120, 90]] * 12
    assert set(arrays["keys"].tolist()) <= {m.key for m in metas}
    assert np.all((arrays["scales"] >= 32) & (arrays["scales"] <= 90))
    assert np.allclose(arrays["transforms"][:, 0, 0], 32 / arrays["scales"], rtol=1e-6)
    for name in ("contact_sheet.png", "distribution.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300
    record = json.loads((out / "preview.json").read_text())
    assert record["config"]["stream"]["size"] == 32 and record["patches"] == 12
    # The same seed gives the same patches.
    assert main(["preview", "--data", str(tmp_path / "ds"), "--size", "32", "--n", "12", "--out", str(tmp_path / "again")]) == 0
    assert np.array_equal(np.load(tmp_path / "again" / "patches.npz")["images"], arrays["images"])


def test_preview_global_stream_through_python_dash_m(tmp_path):
    small_dataset(tmp_path / "ds", 3, size=(100, 70))
    result = subprocess.run(
        [sys.executable, "-m", "training", "preview", "--data", str(tmp_path / "ds"), "--stream", "global",
         "--size", "64", "--n", "3", "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    arrays = np.load(tmp_path / "out" / "patches.npz")
    assert np.allclose(arrays["transforms"], np.eye(3)) and np.all(arrays["scales"] == 64)


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["preview", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anyres-train: error:") and err.count("\n") == 1
    small_dataset(tmp_path / "ds", 2, size=(40, 30))
    assert main(["preview", "--data", str(tmp_path / "ds"), "--size", "64", "--out", str(tmp_path / "o")]) == 2
    assert "no usable sample" in capsys.readouterr().err
    assert main(["preview", "--data", str(tmp_path / "ds"), "--size", "64", "--s-min", "32", "--out", "x"]) == 2
    assert "below the patch size" in capsys.readouterr().err
