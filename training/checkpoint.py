"""Checkpoints: plain state_dicts and plain Python values, written atomically.

Everything a run needs to continue as if never stopped: networks, EMA, optimisers, the step,
every rank's RNG states (torch, numpy, python and the latent generator), each data stream's
position, and the resolved config. Loading uses weights_only=True: a checkpoint is data, never
code. RNG states are stored as tensors and lists so that the safe loader accepts them.

Network snapshots (`network-snapshot-KIMG.pt`, StyleGAN's naming) are the other kind of file: G,
G_ema, D and the config only, written every few ticks and kept, while checkpoint.pt is replaced.
`read` accepts both and hands a snapshot over in a checkpoint's shape, so a teacher or a
generator loads from either; only --resume needs the whole state.

`load_generator` is the one way to build a network from a file (anyres-generate, anyres-eval,
bench): a hostile file ends in one TrainingError line. A run that needs the whole state reads it
with `read` and builds its generators with `build_generator` (validate.py has checked it).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch

from plumbing.atomic import atomic_write

from .errors import TrainingError
from .networks.discriminator import DiscriminatorConfig
from .networks.generator import Generator, GeneratorConfig

CHECKPOINT = "checkpoint.pt"
NETWORKS = ("G", "G_ema", "D")
RESUMABLE = ("trainer", "config", "step", "rng", "streams")  # what --resume reads


def snapshot_name(images: int) -> str:
    """network-snapshot-000123.pt after 123 kimg. A snapshot that falls between whole kimg (short
    ticks, a run's last step) names the exact kimg, 000000.080, so that no snapshot replaces another."""
    whole, rest = divmod(images, 1000)
    return f"network-snapshot-{whole:06d}.pt" if rest == 0 else f"network-snapshot-{whole:06d}.{rest:03d}.pt"


def snapshot_state(state: dict) -> dict:
    """A network snapshot of a full checkpoint state: the networks, the config and the step."""
    return {**{k: state["trainer"][k] for k in NETWORKS}, "config": state["config"], "step": state["step"]}


def rng_state(latents: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "latents": latents.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict, latents: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    latents.set_state(state["latents"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())  # a kill mid-write leaves the previous checkpoint intact


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def read(path: Path, what: str = "checkpoint", resumable: bool = False) -> dict:
    """A training checkpoint's state, or a network snapshot's in the same shape ({"trainer": {G,
    G_ema, D}, "config", "step"}), or a TrainingError saying why `path` is neither. `resumable`:
    only a full checkpoint will do."""
    if not path.is_file():
        raise TrainingError(f"{what} {path} does not exist")
    try:
        state = load(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise TrainingError(f"{what} {path} is not a training checkpoint: {type(exc).__name__}") from None
    if isinstance(state, dict) and "trainer" not in state and all(k in state for k in NETWORKS):
        if resumable:
            raise TrainingError(f"{what} {path} is a network snapshot, which holds no optimiser or loader "
                                "state: resume from the run's checkpoint.pt")
        state = {"trainer": {k: state[k] for k in NETWORKS}, "config": state.get("config"), "step": state.get("step")}
    if not (isinstance(state, dict) and isinstance(state.get("trainer"), dict) and _has_configs(state.get("config"))):
        raise TrainingError(f"{what} {path} is not a training checkpoint")
    if resumable and not all(k in state for k in RESUMABLE):
        raise TrainingError(f"{what} {path} is not a full training checkpoint (it lacks "
                            f"{', '.join(k for k in RESUMABLE if k not in state)})")
    return state


def _has_configs(config) -> bool:
    # network_configs reads these; anything else is a file of some other program.
    return isinstance(config, dict) and isinstance(config.get("g"), dict) and isinstance(config.get("d"), dict)


def network_configs(state: dict) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The architectures a checkpoint was written with, from its saved config's g and d."""
    saved = state["config"]
    try:
        return GeneratorConfig(**saved["g"]), DiscriminatorConfig(**saved["d"])
    except (KeyError, TypeError, ValueError) as exc:  # another version's fields, or garbage
        raise TrainingError(f"the checkpoint's networks are not this version's ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); it was written by an older or newer anyres") from None


def build_generator(cfg: GeneratorConfig, weights: dict) -> Generator:
    """A frozen generator of architecture `cfg` holding `weights`, on the CPU."""
    g = Generator(cfg)
    g.load_state_dict(weights)
    return g.eval().requires_grad_(False)


@overload
def load_generator(path: Path | str, which: str = ..., what: str = ...,
                   with_state: Literal[False] = ...) -> Generator: ...
@overload
def load_generator(path: Path | str, which: str = ..., what: str = ...,
                   *, with_state: Literal[True]) -> tuple[Generator, dict]: ...


def load_generator(path: Path | str, which: str = "G_ema", what: str = "checkpoint", with_state: bool = False):
    """The generator `which` (G_ema, or G) of the checkpoint or snapshot at `path`, frozen, on the
    CPU; `what` names the file in errors. `with_state`: also the file's state, less the weights
    (its saved "config" and "step"), for commands that report what they loaded."""
    state = read(Path(path), what)
    weights = state["trainer"].get(which)
    if not isinstance(weights, dict):
        raise TrainingError(f"{what} {path} holds no {which}")
    try:
        g = build_generator(network_configs(state)[0], weights)
    except (RuntimeError, TypeError, AttributeError) as exc:  # missing or misshapen tensors: a hostile file
        raise TrainingError(f"{what} {path}: its {which} does not fit its own config "
                            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    return (g, {k: v for k, v in state.items() if k != "trainer"}) if with_state else g
