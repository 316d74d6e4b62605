"""LPIPS as a spatial distance map, for the teacher loss: built here, filled from a plain state dict.

LPIPS (Zhang et al. 2018) compares two images through an ImageNet trunk (AlexNet or VGG16): at
five depths each feature vector is scaled to unit length, the squared difference of the two is
weighed per channel by a learned 1x1 head, and each depth's map is resized to the input and
summed. The weights come from one file holding trunk and heads under the key names of the `lpips`
package's `LPIPS(...).state_dict()`; `--lpips` in docs/training.md shows how to write it once on a
machine with that package. Nothing in the file runs: a TorchScript or torch.export file is refused
(training/weightfile.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from plumbing.escape import clip

from .. import weightfile
from ..errors import TrainingError

LPIPS_FILE = ("a plain state dict of lpips.LPIPS(net='alex' or 'vgg'): see --lpips in docs/training.md "
              "for the one-line recipe")

# Each trunk as torchvision's `features`, whose layer indices the key names carry: (out channels,
# kernel, stride, padding) is a convolution followed by a ReLU, an int k a k x k max-pool of
# stride 2. LPIPS taps the ReLU before each cut.
TRUNKS = {
    "alex": ([(64, 11, 4, 2), 3, (192, 5, 1, 2), 3, (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)],
             (2, 5, 8, 10, 12)),
    "vgg": ([(64, 3, 1, 1), (64, 3, 1, 1), 2, (128, 3, 1, 1), (128, 3, 1, 1), 2,
             (256, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), 2, (512, 3, 1, 1), (512, 3, 1, 1), (512, 3, 1, 1), 2,
             (512, 3, 1, 1), (512, 3, 1, 1), (512, 3, 1, 1)],
            (4, 9, 16, 23, 30)),
}
# The fixed input normalisation of LPIPS v0.1 (its ScalingLayer): part of every state dict.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def trunk_layers(name: str) -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for spec in TRUNKS[name][0]:
        if isinstance(spec, int):
            layers.append(nn.MaxPool2d(spec, 2))
        else:
            out, kernel, stride, padding = spec
            layers += [nn.Conv2d(channels, out, kernel, stride, padding), nn.ReLU()]
            channels = out
    return layers


def smallest_side(layers: list[nn.Module]) -> int:
    """The smallest input side every layer of the trunk still has a pixel for."""
    def fits(side: int) -> bool:
        for layer in layers:
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                k, s, p = (layer.kernel_size, layer.stride, layer.padding)
                k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
                side = (side + 2 * p - k) // s + 1
                if side < 1:
                    return False
        return True
    return next(side for side in range(1, 4096) if fits(side))


class Head(nn.Module):
    """A learned weight per channel, never negative (lpips clamps them as it trains, so that a
    distance only grows with a difference): a 1x1 convolution to one map. Index 1 as in lpips,
    whose index 0 is a dropout, idle at inference."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))
        nn.init.uniform_(self.model[1].weight, 0.0, 2.0 / channels)


class LPIPS(nn.Module):
    """Two image batches in [-1, 1] (b x 3 x h x w) -> their distance map (b x 1 x h x w)."""

    def __init__(self, trunk: str):
        super().__init__()
        self.trunk = trunk
        cuts = TRUNKS[trunk][1]
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.scaling_layer.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        every = trunk_layers(trunk)
        self.min_side = smallest_side(every)
        self.net = nn.Module()
        for i, (start, stop) in enumerate(zip((0, *cuts[:-1]), cuts)):
            part = nn.Sequential()
            for index in range(start, stop):
                part.add_module(str(index), every[index])
            self.net.add_module(f"slice{i + 1}", part)
        for i, stop in enumerate(cuts):  # a head as wide as the last convolution before its cut
            channels = [m for m in every[:stop] if isinstance(m, nn.Conv2d)][-1].out_channels
            self.add_module(f"lin{i}", Head(channels))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.scaling_layer.shift) / self.scaling_layer.scale
        out = []
        for part in self.net.children():
            x = part(x)
            out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        size = a.shape[-2:]
        total = torch.zeros_like(a[:, :1])
        for i, (fa, fb) in enumerate(zip(self.taps(a), self.taps(b))):
            # Unit length per position across channels (lpips' epsilon), then the head's weighing.
            fa = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            d = getattr(self, f"lin{i}").model((fa - fb).square())
            total = total + F.interpolate(d, size=size, mode="bilinear", align_corners=False)
        return total


def load_lpips(path: Path) -> LPIPS:
    """The network the file's trunk names, filled from it; the file's `lins.K` copies of the heads
    (lpips keeps both names) must equal `linK`."""
    file = weightfile.read(Path(path), "--lpips", LPIPS_FILE)
    claimed = weightfile.claims(file)
    first = claimed.get("net.slice1.0.weight")  # the first convolution: 11 x 11 in AlexNet, 3 x 3 in VGG16
    kernel = tuple(first.shape[-2:]) if first is not None else None
    trunk = next((name for name, (layers, _) in TRUNKS.items() if kernel == (layers[0][1],) * 2), None)
    if trunk is None:
        raise file.refuse("holds no LPIPS trunk (net.slice1.0.weight of an AlexNet or a VGG16)")
    net = LPIPS(trunk)
    heads = net.state_dict()

    def head_copy(name: str, claim: torch.Tensor) -> bool:
        return name.startswith("lins.") and "lin" + name.removeprefix("lins.") in heads

    copies = weightfile.load_into(net, file, f"LPIPS on {trunk}", claimed, extra=head_copy)
    heads = net.state_dict()
    for name, value in copies.items():
        own = heads["lin" + name.removeprefix("lins.")]
        if value.shape != own.shape or not torch.equal(value.to(own.dtype), own):
            raise file.refuse(f"has {clip(name, 80)} unlike the head that it copies")
    scaling = net.scaling_layer
    if not (torch.allclose(scaling.shift.flatten(), torch.tensor(SHIFT), atol=1e-6)
            and torch.allclose(scaling.scale.flatten(), torch.tensor(SCALE), atol=1e-6)):
        raise file.refuse("has a scaling_layer other than LPIPS v0.1's")
    for i in range(len(TRUNKS[trunk][1])):
        if bool((getattr(net, f"lin{i}").model[1].weight < 0).any()):
            raise file.refuse(f"has negative weights in lin{i}: LPIPS heads are never negative")
    return net.eval().requires_grad_(False)


class LocalLPIPS(nn.Module):
    """The teacher loss's perceptual term, from a local weight file (no download, ever).

    The teacher loss compares a patch's window only, so the distance map is averaged over the
    window: one distance per sample would average over the whole frame, outside included.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.net = load_lpips(self.path)

    def distance_map(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if min(a.shape[-2:]) < self.net.min_side:
            raise TrainingError(f"--lpips {self.path}: LPIPS on {self.net.trunk} needs images of at least "
                                f"{self.net.min_side} px, the teacher compares {tuple(a.shape[-2:])}")
        return self.net(a, b).float()

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Masking both inputs makes the outside identical, so the border-padded outside of a
        # resampled patch cannot leak into the window's distances through the receptive field.
        d = self.distance_map(a * mask, b * mask)
        # Per sample, then over samples, as masked_l1: micro-batches and ranks average exactly.
        per_sample = (d * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp(min=1e-8)
        return per_sample.mean()
