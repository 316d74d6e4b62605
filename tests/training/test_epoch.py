"""The epoch has one owner, the PatchLoader: each pass reads the next epoch, a pass given up
mid-way moves it on too, and set_epoch makes the next pass a given epoch again. The training
loop's DataStream only asks it, so a position saved mid-pass (epoch, batches taken) replays to
the very batches a run without the stop would have drawn."""

from __future__ import annotations

import numpy as np

from tests.factories import small_dataset
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig
from training.run.loop import DataStream

STREAM = StreamConfig(size=16, patches_per_image=1)


def loader(root) -> PatchLoader:
    return PatchLoader(LoaderConfig(str(root), STREAM, batch_size=2, shuffle_buffer=4, seed=5), rank=0, world_size=1)


def keys(batches) -> list[list[str]]:
    return [list(b.key) for b in batches]


def test_each_pass_reads_the_next_epoch_and_set_epoch_goes_back(tmp_path):
    small_dataset(tmp_path / "ds", 8)
    one = loader(tmp_path / "ds")
    assert one.epoch == 0
    passes = [keys(one) for _ in range(3)]
    assert one.epoch == 3 and passes[0] != passes[1] != passes[2]  # new seeds every epoch
    it = iter(one)
    next(it)
    assert one.epoch == 3  # the pass under way
    fourth = keys(one)  # pass 3 left unfinished: this one is epoch 4
    assert one.epoch == 5
    other = loader(tmp_path / "ds")
    other.set_epoch(4)
    assert keys(other) == fourth
    one.set_epoch(1)
    assert keys(one) == passes[1] and one.epoch == 2


def test_a_data_stream_asks_the_loader_and_resumes_mid_pass_on_the_same_batches(tmp_path):
    small_dataset(tmp_path / "ds", 8)
    whole = DataStream(loader(tmp_path / "ds"))
    straight = [whole.next() for _ in range(11)]  # 4 batches an epoch: into the third
    assert whole.epoch == whole.loader.epoch == 2 and whole.taken == 3
    first = DataStream(loader(tmp_path / "ds"))
    for _ in range(6):
        first.next()
    saved = first.state_dict()
    assert saved["epoch"] == 1 and saved["taken"] == 2
    first.close()
    again = DataStream(loader(tmp_path / "ds"))
    again.load_state_dict(saved)
    rest = [again.next() for _ in range(5)]
    for a, b in zip(straight[6:], rest, strict=True):
        assert a.key == b.key and np.array_equal(a.image.numpy(), b.image.numpy())
