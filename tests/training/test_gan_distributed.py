"""Two processes under torchrun (gloo) train as one: identical weights on both ranks, and the
same weights as a single process given the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from training.networks.generator import Generator

from .gan_helpers import SUBPROCESS_ENV, TINY_G, gan_dataset

REPO = Path(__file__).resolve().parents[2]

STEPS = textwrap.dedent("""
    import copy, os, sys
    sys.path.insert(0, sys.argv[2])
    import numpy as np, torch, torch.distributed as dist
    from tests.training.gan_helpers import tiny_config
    from training.geometry import patch_transform
    from training.run.trainer import Trainer

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    from training.networks.augment import AugmentConfig
    # Global batch 8, R1 every 4 steps. No augmentation: each rank draws its own, by design.
    cfg = tiny_config("unused", "unused", aug=AugmentConfig(kind="none"))
    trainer = Trainer(cfg, torch.device("cpu"), world)
    trainer.set_teacher(copy.deepcopy(trainer.G_ema))
    g = torch.Generator().manual_seed(5)
    per = cfg.batch // world
    mine = slice(rank * per, (rank + 1) * per)
    for step in range(5):  # R1 at steps 0 and 4; teacher loss on odd steps
        real = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
        scale = 16 + 32 * torch.rand(8, generator=g)
        centre = (torch.rand(8, 2, generator=g) - 0.5) * (1 - 16 / scale[:, None])
        t = torch.from_numpy(np.stack([patch_transform(float(s), float(c[0]), float(c[1]), 16)
                                       for s, c in zip(scale, centre)]))
        z_d, z_g = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
        trainer.step(real[mine], t[mine], scale[mine], z_d[mine], z_g[mine], step % 2 == 1, cfg.batch)
    state = {k: v for k, v in trainer.state_dict().items() if k in ("G", "G_ema", "D")}
    torch.save(state, os.path.join(sys.argv[1], f"world{world}-rank{rank}.pt"))
    if world > 1:
        dist.destroy_process_group()
""")

RUN = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[3])
    import torch.distributed as dist
    from tests.training.gan_helpers import tiny_config
    from training.run.loop import train
    record = train(tiny_config(sys.argv[1], sys.argv[2], kimg=0.08))  # snapshots check the ranks agree
    print("RECORD", json.dumps(record))
""")


def torchrun(script: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           str(script), *args], capture_output=True, text=True, timeout=280, cwd=REPO,
                          env=SUBPROCESS_ENV)


def flat(state: dict) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net, sd in state.items() for k, v in sd.items()}


@pytest.mark.slow
def test_two_gloo_ranks_keep_identical_weights_and_match_one_process(tmp_path):
    script = tmp_path / "steps.py"
    script.write_text(STEPS)
    result = torchrun(script, str(tmp_path), str(REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, str(script), str(tmp_path), str(REPO)], capture_output=True, text=True,
                            timeout=120, cwd=REPO, env=SUBPROCESS_ENV)
    assert single.returncode == 0, single.stderr[-3000:]
    r0, r1, one = (flat(torch.load(tmp_path / name)) for name in ("world2-rank0.pt", "world2-rank1.pt", "world1-rank0.pt"))
    torch.manual_seed(0)  # the trainer's seed: the weights every rank started from
    initial = flat({"G": Generator(TINY_G).state_dict()})
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key  # all-reduced gradients: bit-identical updates
        # Same global batch: the same update up to float summation order (tolerance stated here).
        assert torch.allclose(r0[key], one[key], rtol=1e-4, atol=1e-5), (key, (r0[key] - one[key]).abs().max())
    moved = [k for k in initial if k.startswith("G.") and "weight" in k and not torch.equal(r0[k], initial[k])]
    assert moved  # the steps did train


@pytest.mark.slow
def test_train_loop_under_torchrun_writes_one_run_and_agrees_across_ranks(tmp_path):
    data = gan_dataset(tmp_path / "ds", n=16)
    script = tmp_path / "run.py"
    script.write_text(RUN)
    result = torchrun(script, str(data), str(tmp_path / "run"), str(REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    stats = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stats] == [5, 10]  # one line per tick, written once (rank 0)
    assert stats[-1]["kimg"] == pytest.approx(0.08)
    # Loader counters summed over both ranks: 10 steps x 8 images, each global view one decode.
    assert stats[-1]["loader"]["global/patches"] >= 80
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert len(torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["rng"]) == 2
