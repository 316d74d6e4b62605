"""Building a generator from a file (checkpoint.load_generator), the one way there is: it renders
what the run's G_ema rendered, reads checkpoints written before the config tree was nested, and
turns a file that is not a checkpoint into one user error."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from training import checkpoint
from training.errors import TrainingError
from training.geometry import pixel_centres
from training.networks.render import identity_view, pixel_grid, view
from training.run.trainer import Trainer

from .gan_helpers import TINY_G, tiny_config


@pytest.fixture
def saved(tmp_path):
    cfg = tiny_config("unused", tmp_path)
    trainer = Trainer(cfg, torch.device("cpu"))
    with torch.no_grad():  # a G_ema unlike a fresh network: loading must really take the weights
        for p in trainer.G_ema.parameters():
            p.add_(0.01)
    path = tmp_path / checkpoint.CHECKPOINT
    checkpoint.save(path, {"trainer": trainer.state_dict(), "config": cfg.to_dict(), "step": 0})
    return path, trainer, cfg


def renders(g, z):
    t, s = identity_view(z.shape[0], g.cfg.resolution, z.device)
    return g(z, t, s)


def test_load_generator_renders_like_the_saved_g_ema(saved):
    path, trainer, _ = saved
    g = checkpoint.load_generator(path)
    assert g.cfg == TINY_G and not g.training and not any(p.requires_grad for p in g.parameters())
    z = torch.randn(3, TINY_G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(renders(g, z), renders(trainer.G_ema, z))
        assert not torch.equal(renders(checkpoint.load_generator(path, "G"), z), renders(g, z))


def test_checkpoints_with_the_flat_config_of_before_still_load(saved):
    path, trainer, cfg = saved
    state = checkpoint.load(path)
    flat = {k: v for k, v in cfg.to_dict().items() if k != "loader"}
    state["config"] = {**flat, "data": cfg.data, "patch_size": cfg.patch_size, "batch": cfg.batch, "seed": 0}
    checkpoint.save(path, state)
    assert checkpoint.network_configs(checkpoint.read(path)) == (cfg.g, cfg.d)
    assert checkpoint.load_generator(path).cfg == cfg.g


def test_a_file_that_is_not_a_checkpoint_is_one_user_error(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        checkpoint.load_generator(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="is not a training checkpoint"):
        checkpoint.load_generator(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="is not a training checkpoint$"):
        checkpoint.load_generator(tmp_path / "other.pt")


def test_the_torch_pixel_grid_is_the_geometry_and_the_identity_view_is_t_equals_i():
    grid = pixel_grid(5, torch.device("cpu"), margin=2)
    centres = pixel_centres(5)
    inner = grid[2:-2, 2:-2].double().numpy()
    assert np.allclose(inner[0, :, 0], centres) and np.allclose(inner[:, 0, 1], centres)
    assert np.all(inner[..., 2] == 1)
    assert grid[0, 0, 0].item() == pytest.approx(centres[0] - 2 / 5)  # the margin continues the grid
    t, s = identity_view(2, 16, torch.device("cpu"))
    assert torch.equal(t.float(), torch.eye(3).expand(2, 3, 3)) and s.tolist() == [16.0, 16.0]
    t, s = view(1, 64.0, 16, torch.device("cpu"), cu=0.25)
    assert t[0].tolist() == [[0.25, 0.0, 0.25], [0.0, 0.25, 0.0], [0.0, 0.0, 1.0]] and s.item() == 64.0


def test_set_teacher_freezes_the_network_it_is_given(saved):
    _, trainer, _ = saved
    trainer.set_teacher(copy.deepcopy(trainer.G).train())
    assert not trainer.teacher.training and not any(p.requires_grad for p in trainer.teacher.parameters())


def test_a_checkpoint_of_the_earlier_generator_is_one_user_error(saved, tmp_path):
    """Checkpoints of the network before StyleGAN3-T (per-layer `channels`, `octaves`) or with a
    resolution no plan exists for: one line naming the reason, never a TypeError."""
    path, _, cfg = saved
    state = checkpoint.load(path)
    g = {k: v for k, v in cfg.to_dict()["g"].items() if k not in ("num_layers", "critical_layers", "channel_base")}
    state["config"]["g"] = {**g, "channels": [48, 48, 32], "octaves": 2.0, "filter_half": 2}
    checkpoint.save(tmp_path / "old.pt", state)
    with pytest.raises(TrainingError, match="not this version's"):
        checkpoint.load_generator(tmp_path / "old.pt")
    state["config"]["g"] = {**cfg.to_dict()["g"], "resolution": 24}
    checkpoint.save(tmp_path / "odd.pt", state)
    with pytest.raises(TrainingError, match="power of two"):
        checkpoint.load_generator(tmp_path / "odd.pt")


def test_weights_that_do_not_fit_their_config_are_one_user_error(saved, tmp_path):
    """anyres-generate and anyres-eval load through load_generator: a snapshot whose G_ema is
    missing, or holds other tensors than its config's network, ends in one line."""
    path, _, _ = saved
    state = checkpoint.load(path)
    g_ema = state["trainer"].pop("G_ema")
    checkpoint.save(tmp_path / "none.pt", state)
    with pytest.raises(TrainingError, match="holds no G_ema"):
        checkpoint.load_generator(tmp_path / "none.pt")
    state["trainer"]["G_ema"] = {k: v.reshape(-1)[:1] for k, v in g_ema.items()}
    checkpoint.save(tmp_path / "misshapen.pt", state)
    with pytest.raises(TrainingError, match="does not fit its own config") as caught:
        checkpoint.load_generator(tmp_path / "misshapen.pt", what="snapshot")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("snapshot ")


def test_with_state_hands_over_the_saved_config_and_step_without_the_weights(saved):
    path, _, cfg = saved
    g, state = checkpoint.load_generator(path, with_state=True)
    assert g.cfg == cfg.g and state["step"] == 0 and state["config"] == cfg.to_dict() and "trainer" not in state
