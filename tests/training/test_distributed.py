"""Under torchrun with gloo: ranks come from torch.distributed, and together they see every sample."""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.factories import small_dataset

WORKER = textwrap.dedent("""
    import json, sys
    import torch.distributed as dist
    from training.loader.pipeline import LoaderConfig, PatchLoader
    from training.loader.sampler import StreamConfig

    dist.init_process_group("gloo")
    config = LoaderConfig(sys.argv[1], StreamConfig(size=16, patches_per_image=1), batch_size=2, num_workers=2, shuffle_buffer=8)
    loader = PatchLoader(config)  # rank and world size from torch.distributed
    keys = [key for batch in loader for key in batch.key]
    with open(f"{sys.argv[2]}/rank{dist.get_rank()}.json", "w") as f:
        json.dump({"rank": dist.get_rank(), "world": dist.get_world_size(), "keys": keys, "len": len(loader)}, f)
    dist.destroy_process_group()
""")


@pytest.mark.slow  # starts two processes that join a gloo group
def test_two_gloo_ranks_with_two_workers_each_cover_the_dataset(tmp_path):
    metas = small_dataset(tmp_path / "ds", 16)  # one shard, sliced across the 4 readers
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path / "ds"), str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    assert all(len(r["keys"]) == 8 and r["len"] == 4 for r in ranks)  # the same epoch on both ranks
    assert sorted(k for r in ranks for k in r["keys"]) == sorted(m.key for m in metas)
