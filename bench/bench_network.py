"""Size and work of the generator per preset: parameters, and FLOPs of one forward pass at R.

    .venv/bin/python bench/bench_network.py [--presets tiny sg3t-256]

FLOPs are counted by torch.utils.flop_counter while the synthesis network really runs (its
convolutions and matmuls, the resampling filters included in the dense-matrix form that the CPU
uses), once on StyleGAN3's grids and once on exact grids; beside them, the same network counted
by the layer formula with polyphase filters (synthesis_plan.synthesis_flops, the form a GPU
runs) and StyleGAN3-T's published synthesis parameter count. It also runs on a checkout of
the earlier network (PYTHONPATH=that checkout), which has one kind of grid and no plan.
"""

from __future__ import annotations

import argparse
import inspect

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.networks.generator import Generator
from training.networks.render import identity_view
from training.run.config import PRESETS


def forward_flops(g: Generator, grid: str | None) -> float:
    cfg = g.cfg
    ws = torch.zeros(1, cfg.num_ws, cfg.w_dim)
    t, s = identity_view(1, cfg.resolution, torch.device("cpu"))
    kwargs = {"grid": grid} if grid else {}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        g.synthesis(ws, t, s, cfg.resolution, **kwargs)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "sg3t-256"])
    args = parser.parse_args()
    has_grids = "grid" in inspect.signature(Generator.synthesis).parameters
    print("| preset | parameters (all) | synthesis by StyleGAN3-T's formula | grid | GFLOP/image counted | "
          "GFLOP/image, polyphase formula |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.presets:
        cfg = PRESETS[name].g
        g = Generator(cfg).eval()
        params = sum(p.numel() for p in g.parameters())
        if not has_grids:
            print(f"| {name} | {params / 1e6:.2f} M | - | output rate + margin | {forward_flops(g, None) / 1e9:.2f} | - |")
            continue
        from training.networks.synthesis_plan import synthesis_flops, synthesis_params

        published = synthesis_params(g.plan, cfg.w_dim)
        for grid in ("stylegan3", "exact"):
            print(f"| {name} | {params / 1e6:.2f} M | {published / 1e6:.2f} M | {grid} | "
                  f"{forward_flops(g, grid) / 1e9:.2f} | {synthesis_flops(g.plan, cfg.resolution, grid) / 1e9:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
