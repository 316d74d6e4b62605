"""`--inception` and `--lpips` files are plain state dicts filling the project's own networks
(training/weightfile.py): a program (TorchScript, torch.export) is refused without running, and
every bad state dict (a missing or foreign name, a wrong shape or type, an object that is not a
tensor, a class in the pickle, an oversized or special file, storages larger than the file) is
one line. What loads computes:
2048 Inception features per image, and an LPIPS map that is zero only where the images agree."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from training import weightfile
from training.errors import TrainingError
from training.eval import features
from training.eval.features import FIDInception
from training.networks.lpips import LocalLPIPS

from .weight_helpers import inception_state, lpips_state, save, writing_program

pytestmark = pytest.mark.usefixtures("one_thread")

LOADERS = {"inception": FIDInception, "lpips": LocalLPIPS}


@pytest.fixture(scope="module")
def states():
    return {"inception": inception_state(), "lpips": lpips_state()}


def refused(loader, path: Path) -> str:
    with pytest.raises(TrainingError) as err:
        loader(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_a_torchscript_file_that_writes_is_refused_and_writes_nothing(tmp_path, kind):
    path, target = writing_program(tmp_path)
    message = refused(LOADERS[kind], path)
    assert "TorchScript or torch.export program, which anyres never runs" in message
    assert "give" in message and "state dict" in message  # and says what to give instead
    assert not target.exists()


def test_a_torch_export_program_is_refused(tmp_path):
    class Distance(nn.Module):
        def forward(self, a, b):
            return (a - b).square().mean(1, keepdim=True)

    path = tmp_path / "lpips.pt2"
    example = (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    torch.export.save(torch.export.export(Distance(), example), path)
    assert "TorchScript or torch.export program" in refused(LocalLPIPS, path)


class Marker:
    """An object whose unpickling would create a file (weights_only must refuse the class)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def bad_states(state: dict, tmp_path: Path) -> dict[str, tuple[object, str]]:
    """case -> (what torch.save writes, part of the message)."""
    first = next(iter(state))
    touched = tmp_path / "touched"
    return {
        "missing tensor": ({k: v for k, v in state.items() if k != first}, "lacks 1 of the"),
        "foreign tensor": ({**state, "extra.weight": torch.zeros(3)}, "does not (first: extra.weight)"),
        "wrong shape": ({**state, first: torch.zeros(7, 7)}, f"has {first} of shape (7, 7) where"),
        "integer tensor": ({**state, first: state[first].long()}, "not a float tensor"),
        "not finite": ({**state, first: torch.full_like(state[first], float("nan"))}, "not finite"),
        "not a tensor": ({**state, first: [1.0, 2.0]}, "not a state dict"),
        "not a dict": ([state[first]], "not a state dict"),
        "a class in the pickle": ({**state, first: Marker(touched)}, "cannot be loaded as plain tensors"),
    }


CASES = ["missing tensor", "foreign tensor", "wrong shape", "integer tensor", "not finite", "not a tensor",
         "not a dict", "a class in the pickle"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_a_bad_state_dict_is_one_line(tmp_path, states, kind, case):
    content, expected = bad_states(states[kind], tmp_path)[case]
    path = save(content, tmp_path / "weights.pth")
    assert expected in refused(LOADERS[kind], path)
    assert not (tmp_path / "touched").exists()


def test_bad_files_are_one_line(tmp_path, states, monkeypatch):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    assert "is not a state dict saved by torch.save" in refused(FIDInception, garbage)
    assert "does not exist" in refused(FIDInception, tmp_path / "absent.pth")
    assert "is not a regular file" in refused(FIDInception, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is not a regular file" in refused(LocalLPIPS, fifo)  # refused, not waited on
    # Compressed members: torch.save never writes them, and they could inflate past the bound.
    good = save(states["lpips"], tmp_path / "good.pth")
    squeezed = tmp_path / "squeezed.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(squeezed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert "compressed members" in refused(LocalLPIPS, squeezed)
    monkeypatch.setattr(weightfile, "MAX_BYTES", good.stat().st_size - 1)
    assert "more than a weight file may have" in refused(LocalLPIPS, good)


def test_a_file_claiming_more_tensor_bytes_than_it_holds_is_refused_before_allocating(tmp_path):
    honest = io.BytesIO()
    torch.save({"w": torch.zeros(5)}, honest)
    path = tmp_path / "claims.pth"
    with zipfile.ZipFile(honest) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):  # the storage's element count: 5 -> 2^30 floats
                assert data.count(b"K\x05t") == 1
                data = data.replace(b"K\x05t", b"J" + (2**30).to_bytes(4, "little") + b"t")
            dst.writestr(info.filename, data)
    assert f"claims {4 * 2**30} bytes of tensors in a file of {path.stat().st_size}" in refused(LocalLPIPS, path)


# -- what loads computes ------------------------------------------------------------------------

@pytest.mark.slow  # more than a few seconds
def test_the_inception_state_dict_gives_2048_features_and_a_name_with_its_hash(tmp_path, states, monkeypatch):
    # pytorch-fid's file may hold batch norm's step counters; it may be in the legacy format.
    counters = {k.replace("running_mean", "num_batches_tracked"): torch.tensor(0)
                for k in states["inception"] if k.endswith("running_mean")}
    path = tmp_path / "pt_inception.pth"
    torch.save({**states["inception"], **counters}, path, _use_new_zipfile_serialization=False)
    net = FIDInception(path)
    torch.manual_seed(1)
    images = torch.randint(0, 256, (3, 3, 40, 56), dtype=torch.uint8)
    got = net(images)
    assert got.shape == (3, 2048) and bool(torch.isfinite(got).all())
    assert (got[0] - got[1]).abs().max() > 1e-4  # other images, other features
    digest = weightfile.read(path, "--inception", "").sha256
    assert net.name == f"fid-inception-v3:unpublished:{digest}" and net.comparable is False
    # Only the published file's bytes are named as such, and comparable with published numbers.
    monkeypatch.setattr(features, "PUBLISHED_SHA256", digest)
    published = FIDInception(path)
    assert published.name == f"fid-inception-v3:pytorch-fid-2015-12-05:{digest}" and published.comparable
    assert torch.allclose(published(images), got, atol=1e-5)


def test_the_lpips_map_is_zero_for_the_same_images_and_positive_otherwise(tmp_path, states):
    lpips = LocalLPIPS(save(states["lpips"], tmp_path / "lpips-alex.pth"))
    assert not any(p.requires_grad for p in lpips.parameters())
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 32, 40) * 2 - 1, torch.rand(2, 3, 32, 40) * 2 - 1
    same, other = lpips.distance_map(a, a), lpips.distance_map(a, b)
    assert same.shape == other.shape == (2, 1, 32, 40)
    assert same.abs().max() == 0
    assert other.min() >= 0 and bool((other.mean(dim=(1, 2, 3)) > 1e-3).all())
    with pytest.raises(TrainingError, match="needs images of at least 31 px") as err:
        lpips.distance_map(a[..., :16, :16], b[..., :16, :16])
    assert "\n" not in str(err.value)


def test_the_vgg_trunk_loads_from_its_own_state_dict(tmp_path):
    lpips = LocalLPIPS(save(lpips_state("vgg", copies=False), tmp_path / "lpips-vgg.pth"))
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert lpips.net.trunk == "vgg" and lpips.distance_map(a, b).shape == (1, 1, 16, 16)


def test_lpips_heads_are_checked(tmp_path, states):
    state = states["lpips"]
    negative = {**state, "lin2.model.1.weight": -state["lin2.model.1.weight"]}
    negative["lins.2.model.1.weight"] = negative["lin2.model.1.weight"]
    assert "negative weights in lin2" in refused(LocalLPIPS, save(negative, tmp_path / "negative.pth"))
    unlike = {**state, "lins.1.model.1.weight": state["lin1.model.1.weight"] * 2}
    assert "unlike the head that it copies" in refused(LocalLPIPS, save(unlike, tmp_path / "unlike.pth"))
    shifted = {**state, "scaling_layer.scale": torch.ones(1, 3, 1, 1)}
    assert "scaling_layer" in refused(LocalLPIPS, save(shifted, tmp_path / "shifted.pth"))
    first = {k: v for k, v in state.items() if k != "net.slice1.0.weight"}
    assert "holds no LPIPS trunk" in refused(LocalLPIPS, save(first, tmp_path / "trunkless.pth"))


def test_claims_are_read_without_loading_the_data(tmp_path, states):
    """The first pass sees names, shapes and dtypes and allocates no tensor memory."""
    path = save(states["inception"], tmp_path / "inception.pth")
    claimed = weightfile.claims(weightfile.read(path, "--inception", ""))
    assert claimed.keys() == states["inception"].keys()
    assert all(type(t).__name__ == "FakeTensor" for t in claimed.values())
    assert all(claimed[k].shape == v.shape and claimed[k].dtype == v.dtype for k, v in states["inception"].items())
