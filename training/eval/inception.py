"""The FID Inception-v3: TensorFlow's 2015-12-05 ImageNet graph, as FID has always used it.

Its blocks are Inception-v3's with three quirks of that graph, which published FIDs depend on:
the average pools beside the A, C and first E blocks leave the zero padding out of their means,
the last E block pools with a max instead, and the classifier has 1008 outputs. The attribute
names give the state-dict keys of pytorch-fid's port of the weights
(pt_inception-2015-12-05-6726825d.pth), so that file loads as it is published. Architecture
only: the weights come from a file, through training/weightfile.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIDE = 299  # the graph's input side
DIM = 2048  # the pool features


class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics (TF's epsilon): the file's weight, bias, mean and variance."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class Conv(nn.Module):
    """Convolution without bias, batch norm, ReLU: every layer of the graph."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")  # before a file fills it: keeps a scale
        self.bn = FrozenBatchNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def row(cin: int, cout: int) -> Conv:  # a 1 x 7 factor of a 7 x 7 convolution
    return Conv(cin, cout, (1, 7), padding=(0, 3))


def column(cin: int, cout: int) -> Conv:  # its 7 x 1 factor
    return Conv(cin, cout, (7, 1), padding=(3, 0))


def side_pool(x: torch.Tensor) -> torch.Tensor:
    # TF averages over the window's pixels inside the image only.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):  # 35 x 35: 1x1, 5x5, double 3x3 and pool branches
    def __init__(self, cin: int, pool_channels: int):
        super().__init__()
        self.branch1x1 = Conv(cin, 64, 1)
        self.branch5x5_1 = Conv(cin, 48, 1)
        self.branch5x5_2 = Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = Conv(cin, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, padding=1)
        self.branch_pool = Conv(cin, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x),
                          self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(side_pool(x))], 1)


class ReductionB(nn.Module):  # 35 -> 17
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = Conv(cin, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):  # 17 x 17: 7x7 convolutions factored into 1x7 and 7x1
    def __init__(self, cin: int, mid: int):
        super().__init__()
        self.branch1x1 = Conv(cin, 192, 1)
        self.branch7x7_1 = Conv(cin, mid, 1)
        self.branch7x7_2 = row(mid, mid)
        self.branch7x7_3 = column(mid, 192)
        self.branch7x7dbl_1 = Conv(cin, mid, 1)
        self.branch7x7dbl_2 = column(mid, mid)
        self.branch7x7dbl_3 = row(mid, mid)
        self.branch7x7dbl_4 = column(mid, mid)
        self.branch7x7dbl_5 = row(mid, 192)
        self.branch_pool = Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(side_pool(x))], 1)


class ReductionD(nn.Module):  # 17 -> 8
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = Conv(cin, 192, 1)
        self.branch3x3_2 = Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = Conv(cin, 192, 1)
        self.branch7x7x3_2 = row(192, 192)
        self.branch7x7x3_3 = column(192, 192)
        self.branch7x7x3_4 = Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tall = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), tall, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):  # 8 x 8: 3x3 convolutions split into parallel 1x3 and 3x1 halves
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # the graph's last block pools with a max (FID keeps that)
        self.branch1x1 = Conv(cin, 320, 1)
        self.branch3x3_1 = Conv(cin, 384, 1)
        self.branch3x3_2a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = Conv(cin, 448, 1)
        self.branch3x3dbl_2 = Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else side_pool(x)
        return torch.cat([self.branch1x1(x),
                          self.branch3x3_2a(single), self.branch3x3_2b(single),
                          self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
                          self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Images in [-1, 1] at 299 x 299 -> the 2048-d global average pool features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = Conv(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(DIM, 1008)  # the classifier is part of the file; features stop before it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))
