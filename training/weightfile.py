"""Weight files a user hands over (`--inception`, `--lpips`): plain state dicts, never programs.

A TorchScript or torch.export file is a program, and a program can read and write files when it
runs (`torch.from_file(..., shared=True)`). So every network is built by anyres's own code, and a
file only fills its tensors, after these checks (SECURITY.md):

- a regular file of at most MAX_BYTES, read once into memory: what is checked is what is loaded;
- torch.save's format (a zip archive, or the legacy pickle stream), unpickled with
  `weights_only=True`, which builds tensors and plain containers and refuses every other class;
  an archive holding code is refused by name first, saying what to give instead;
- a first pass with fake tensors reads names, shapes and dtypes and allocates no tensor memory:
  the names and shapes must be exactly the network's, and the storages the file claims must fit
  in its bytes, before the second pass allocates anything;
- float tensors, every value finite.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from plumbing.escape import clip

from .errors import TrainingError

MAX_BYTES = 256 * 2**20  # the FID Inception is 96 MB, LPIPS on VGG16 59 MB (float32)
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Members that make an archive a program: TorchScript's code/ and constants.pkl, torch.export's
# archive_format and models/.
PROGRAM_PARTS = ("code", "constants.pkl", "archive_format", "models")


@dataclass(frozen=True)
class WeightFile:
    flag: str  # the option that named it, for messages: "--inception"
    path: Path
    data: bytes
    sha256: str
    instead: str  # what to give instead of a wrong file, for messages

    def error(self, problem: str) -> TrainingError:
        return TrainingError(f"{self.flag} {self.path} {problem}")

    def refuse(self, problem: str) -> TrainingError:
        return self.error(f"{problem}: give {self.instead}")


def read(path: Path, flag: str, instead: str) -> WeightFile:
    """The file's bytes, bounded, with programs refused."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO named by mistake is refused below instead of waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise TrainingError(f"{flag} {path} does not exist (weights are never downloaded)") from None
    except OSError as exc:
        raise TrainingError(f"{flag} {path} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TrainingError(f"{flag} {path} is not a regular file")
        if info.st_size > MAX_BYTES:
            raise TrainingError(f"{flag} {path} has {info.st_size} bytes, more than a weight file may have "
                                f"({MAX_BYTES})")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    file = WeightFile(flag, path, data, hashlib.sha256(data).hexdigest(), instead)
    if len(data) > MAX_BYTES:  # it grew while read
        raise file.error(f"has more than {MAX_BYTES} bytes")
    if zipfile.is_zipfile(io.BytesIO(data)):
        _check_archive(file)
    elif not data.startswith(b"\x80"):  # the legacy format opens with a pickled magic number
        raise file.refuse("is not a state dict saved by torch.save")
    return file


def _check_archive(file: WeightFile) -> None:
    try:
        members = zipfile.ZipFile(io.BytesIO(file.data)).infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise file.refuse(f"is a damaged archive ({exc})") from None
    for m in members:
        parts = m.filename.split("/")
        if any(p in PROGRAM_PARTS or p.endswith(".py") for p in parts[1:]):
            raise file.refuse("is a TorchScript or torch.export program, which anyres never runs")
    if not any(m.filename.split("/")[1:] == ["data.pkl"] for m in members):
        raise file.refuse("is an archive without a state dict (no data.pkl)")
    # torch.save stores members uncompressed: then no member can hold more bytes than the file.
    if any(m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size for m in members):
        raise file.refuse("has compressed members, which torch.save never writes")


def _reason(exc: Exception) -> str:
    """The line of a torch.load error that says what was wrong, without its advice to load the file
    unrestricted."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = next((line.split(":", 1)[1] for line in lines if line.startswith("WeightsUnpickler error:")),
                lines[0] if lines else "")
    said = said.split(". ")[0].strip()
    return f"{type(exc).__name__}: {said[:160]}" if said else type(exc).__name__


def _unpickle(file: WeightFile, fake: bool) -> dict:
    # Fake tensors carry shape, dtype and storage size, with no memory behind them.
    from torch._subclasses.fake_tensor import FakeTensorMode

    try:
        with FakeTensorMode() if fake else contextlib.nullcontext():
            state = torch.load(io.BytesIO(file.data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any refusal of the restricted unpickler is the same user error
        raise file.refuse(f"cannot be loaded as plain tensors ({_reason(exc)})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise file.refuse("is not a state dict (a dict of names to tensors)")
    return state


def claims(file: WeightFile) -> dict[str, torch.Tensor]:
    """Every tensor as the file claims it (name, shape, dtype), as fake tensors that hold no data."""
    claimed = _unpickle(file, fake=True)
    storages = {}
    for name, t in claimed.items():
        if t.layout != torch.strided or t.is_quantized or t.is_nested:
            raise file.refuse(f"has {clip(name, 80)}, which is not a plain dense tensor")
        s = t.untyped_storage()
        storages[s._cdata] = s.nbytes()
    if sum(storages.values()) > len(file.data):
        raise file.refuse(f"claims {sum(storages.values())} bytes of tensors in a file of {len(file.data)}")
    return claimed


def load_into(module: nn.Module, file: WeightFile, network: str, claimed: dict[str, torch.Tensor] | None = None,
              extra: Callable[[str, torch.Tensor], bool] = lambda name, t: False) -> dict[str, torch.Tensor]:
    """Fill `module`'s parameters and buffers from the file: every name, exactly its shape, float and
    finite, all checked on the claims before the data is loaded. `extra(name, claim)` admits a
    tensor the module does not hold (returned, for the caller to check). `network` names what the
    file should hold, for messages."""
    claimed = claims(file) if claimed is None else claimed
    wanted = module.state_dict()
    missing = [k for k in wanted if k not in claimed]
    if missing:
        raise file.refuse(f"lacks {len(missing)} of the {len(wanted)} tensors of {network} "
                          f"(first: {clip(missing[0], 80)}), so it is not its state dict")
    unknown = [k for k in claimed if k not in wanted and not extra(k, claimed[k])]
    if unknown:
        raise file.refuse(f"has {len(unknown)} tensors that {network} does not (first: {clip(unknown[0], 80)})")
    for k, want in wanted.items():
        if claimed[k].shape != want.shape:
            raise file.refuse(f"has {clip(k, 80)} of shape {tuple(claimed[k].shape)} where {network} needs "
                              f"{tuple(want.shape)}")
        if claimed[k].dtype not in FLOATS:
            raise file.refuse(f"has {clip(k, 80)} of type {claimed[k].dtype}, not a float tensor")
    state = _unpickle(file, fake=False)
    values = {k: state[k].to(v.dtype) for k, v in wanted.items()}
    for k, t in values.items():
        if not bool(torch.isfinite(t).all()):
            raise file.refuse(f"has values in {clip(k, 80)} that are not finite numbers")
    module.load_state_dict(values, strict=True)
    return {k: v for k, v in state.items() if k not in wanted}
