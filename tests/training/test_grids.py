"""Sample grids that explain themselves (issue 14): rows are the seeds anyres-generate renders,
columns say their scale and window, and a 360° run's grid shows whole turns."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from training.generate.outputs import mapped
from training.networks.generator import Generator
from training.networks.render import identity_view, to_uint8
from training.run.grids import GAP, enlarged, labelled, panorama_grid, sample_grid

from .gan_helpers import TINY_G


def ink(region: np.ndarray) -> int:
    return int((region.min(axis=2) < 128).sum())


def test_a_grid_cell_is_the_image_anyres_generate_renders_for_that_seed():
    torch.manual_seed(0)
    g = Generator(TINY_G).eval()
    grid = sample_grid(g, patch_size=16, seeds=(5, 7))
    with torch.no_grad():
        ws = mapped(g, 7, 1.0)
        expected = enlarged(to_uint8(g.synthesis(ws, *identity_view(1, 16, "cpu"), 16, grid="exact"))[0], 128)
    # Find seed 7's global cell: second row, first column, below the label band.
    h = expected.shape[0]
    found = [(y, x) for y in range(grid.shape[0] - h + 1) for x in range(grid.shape[1] - h + 1)
             if np.array_equal(grid[y:y + h, x:x + h], expected)]
    assert len(found) == 1 and found[0][0] > h  # in the second row


def test_labels_sit_in_their_bands_and_the_cells_stay_clear():
    green = np.array([10, 200, 30], np.uint8)  # no label's grey anti-aliasing is this colour
    cells = [[np.tile(green, (40, 40, 1)), np.full((40, 60, 3), 100, np.uint8)]]
    sheet = labelled(cells, ["seed 0"], ["global, S = R = 32", "S = 4R, window 0.25"])
    top = sheet.shape[0] - 40 - GAP  # the one row of cells starts here
    assert ink(sheet[:top]) > 0  # column labels
    row = sheet[top:top + 40]
    first = int(np.argmax((row == green).all(axis=2).any(axis=0)))  # where the first cell starts
    assert first > 0 and ink(row[:, :first]) > 0  # the row label, left of it
    assert (row[:, first:first + 40] == green).all()  # the cell itself is untouched by any label
    assert sheet.shape[1] >= first + 40 + 60  # a short cell is widened to its label, never cut


def test_a_360_run_grid_is_one_labelled_turn_per_seed():
    torch.manual_seed(0)
    g = Generator(dataclasses.replace(TINY_G, fov=90.0)).eval()
    grid = panorama_grid(g, seeds=(0, 1))
    assert grid.shape[1] > 3.5 * (grid.shape[0] / 2)  # each row a strip four frames wide
