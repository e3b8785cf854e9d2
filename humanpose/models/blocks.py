"""Building blocks shared by the model families.

Attribute names (``conv1``, ``bn1``, ``downsample``, ``att.conv_mask`` ...) are those of the
official implementations, because they become the state-dict keys that their checkpoints use.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BN_MOMENTUM = 0.1


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                     groups=groups, bias=False)


class GCBlock(nn.Module):
    """Global-context attention (GCNet), the 'att' pooling + 'channel_add' fusion variant.

    A softmax over a 1x1-conv mask pools the whole feature map into one context vector,
    which a small bottleneck turns into a per-channel bias added everywhere.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add_conv[-1].weight)
        nn.init.zeros_(self.channel_add_conv[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        weights = self.conv_mask(x).flatten(2).softmax(dim=2)  # N, 1, HW
        context = torch.bmm(x.flatten(2), weights.transpose(1, 2))  # N, C, 1
        return x + self.channel_add_conv(context.view(n, c, 1, 1))


class SELayer(nn.Module):
    """Squeeze-and-excitation: channels re-weighted by a gate computed from their means."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 16)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        gate = self.fc(self.avg_pool(x).view(n, c)).view(n, c, 1, 1)
        return x * gate


def make_attention(kind: str, channels: int) -> nn.Module | None:
    """The LPN attention module after a block: 'GC', 'SE' or none ('' / 'NONE')."""
    kind = (kind or "").upper()
    if kind == "GC":
        return GCBlock(channels, max(channels // 16, 16))
    if kind == "SE":
        return SELayer(channels)
    if kind in ("", "NONE"):
        return None
    raise ValueError(f"MODEL.EXTRA.ATTENTION must be 'GC', 'SE' or '' (none), got {kind!r}")


class BasicBlock(nn.Module):
    """ResNet basic block; with grouped convs and attention it is also LPN-18/34's block.

    ``channels_per_group`` 0 gives dense convs; otherwise each conv has
    ``input channels // channels_per_group`` groups (2: LPN "half", 1: "depthwise").
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, channels_per_group: int = 0,
                 attention: str = ""):
        super().__init__()
        cpg = channels_per_group
        self.conv1 = conv3x3(inplanes, planes, stride, groups=inplanes // cpg if cpg else 1)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, groups=planes // cpg if cpg else 1)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.att = make_attention(attention, planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.att is not None:
            out = self.att(out)
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 → 3x3 → 1x1, 4x expansion)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class LightweightBottleneck(nn.Module):
    """LPN's bottleneck: 1x1, depthwise 3x3, 1x1 (no expansion), then attention."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, attention: str = "GC"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, stride, groups=planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.att = make_attention(attention, planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.att is not None:
            out = self.att(out)
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


def downsample_for(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    """The 1x1 projection on the residual path when shape changes (``downsample.0/1``)."""
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM),
    )


def deconv_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 transposed conv exactly double the size."""
    table = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
    if kernel not in table:
        raise ValueError(f"MODEL.EXTRA.NUM_DECONV_KERNELS entries must be 2, 3 or 4, got {kernel}")
    return table[kernel]


def make_deconv_head(inplanes: int, filters: list[int], kernels: list[int], with_bias: bool,
                     grouped: bool) -> nn.Sequential:
    """The upsampling head of SimpleBaseline (``grouped=False``) and LPN (``grouped=True``).

    SimpleBaseline: [deconv, BN, ReLU] per layer. LPN: a deconv with groups = gcd(in, out)
    followed by BN, ReLU, 1x1 conv, BN, ReLU — a cheap deconv plus channel mixing.
    """
    if len(filters) != len(kernels):
        raise ValueError(
            f"MODEL.EXTRA.NUM_DECONV_FILTERS ({filters}) and NUM_DECONV_KERNELS ({kernels}) "
            "must have NUM_DECONV_LAYERS entries each")
    layers: list[nn.Module] = []
    for planes, kernel in zip(filters, kernels):
        padding, output_padding = deconv_padding(kernel)
        groups = math.gcd(inplanes, planes) if grouped else 1
        layers += [
            nn.ConvTranspose2d(inplanes, planes, kernel_size=kernel, stride=2, padding=padding,
                               output_padding=output_padding, groups=groups, bias=with_bias),
            nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        if grouped:
            layers += [
                nn.Conv2d(planes, planes, kernel_size=1, bias=False),
                nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
        inplanes = planes
    return nn.Sequential(*layers)


def final_conv(in_channels: int, num_joints: int, kernel: int) -> nn.Conv2d:
    """The 1x1 (or 3x3) conv that turns features into one heatmap per joint."""
    if kernel not in (1, 3):
        raise ValueError(f"MODEL.EXTRA.FINAL_CONV_KERNEL must be 1 or 3, got {kernel}")
    return nn.Conv2d(in_channels, num_joints, kernel_size=kernel, padding=kernel // 2)


def init_seed_style(model: nn.Module, zero_conv_bias: bool) -> None:
    """The seed's from-scratch initialisation: N(0, 0.001) convs, BN weight 1 and bias 0.

    The HRNet code zeroes conv biases; the ResNet/LPN code leaves them at PyTorch's default.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None and (zero_conv_bias or isinstance(m, nn.ConvTranspose2d)):
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
