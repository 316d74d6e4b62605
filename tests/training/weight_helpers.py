"""Weight files for `--inception` and `--lpips`, saved from the project's own networks at their
random initialisation (the layout of the published files, without downloading them), and a
hostile one: a TorchScript "network" that writes a file when it runs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.eval.inception import FIDInceptionV3
from training.networks.lpips import LPIPS


def inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return FIDInceptionV3().state_dict()


def lpips_state(trunk: str = "alex", seed: int = 0, copies: bool = True) -> dict[str, torch.Tensor]:
    """As `lpips.LPIPS(net=trunk).state_dict()` holds it: each head also under `lins.K`."""
    torch.manual_seed(seed)
    state = LPIPS(trunk).state_dict()
    if copies:
        state.update({"lins." + k.removeprefix("lin"): v for k, v in state.items() if k.startswith("lin")})
    return state


def save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


class WritesAFile(nn.Module):
    """What a hostile "network" can do when it runs: write over a file of the user's."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.target, True, 4, dtype=torch.uint8)
        written.fill_(65)
        return x.float().mean(dim=(2, 3)) + written.float().sum() * 0


def writing_program(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "victim.txt"
    program = torch.jit.script(WritesAFile(str(target)))
    program(torch.zeros(1, 3, 4, 4))
    assert target.read_bytes() == b"AAAA"  # run, it writes: only refusing to run it protects
    target.unlink()
    path = tmp_path / "network.pt"
    program.save(str(path))
    return path, target
