"""HRNet for pose (Sun et al., 2019): parallel high-to-low resolution branches, fused repeatedly.

Built from ``MODEL.EXTRA.STAGE1..4``; W32, W48 and the W18-small v1/v2 variants differ only
in those numbers. Module names follow the official code so its checkpoints load strictly.
"""

from __future__ import annotations

import torch
from torch import nn
from yacs.config import CfgNode

from .blocks import BN_MOMENTUM, BasicBlock, Bottleneck, final_conv, init_seed_style
from .resnet import make_res_layer

BLOCKS: dict[str, type[nn.Module]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """One multi-resolution unit: residual blocks per branch, then every branch fused into
    every output resolution (upsample with 1x1 conv + nearest, downsample with strided 3x3)."""

    def __init__(self, block: type[nn.Module], num_blocks: list[int], in_channels: list[int],
                 channels: list[int], multi_scale_output: bool = True):
        super().__init__()
        branches = []
        self.out_channels = []
        for nb, cin, planes in zip(num_blocks, in_channels, channels):
            branch, width = make_res_layer(block, cin, planes, nb)
            branches.append(branch)
            self.out_channels.append(width)
        self.branches = nn.ModuleList(branches)
        self.num_branches = len(branches)
        self.fuse_layers = self._make_fuse_layers(multi_scale_output) if len(branches) > 1 else None
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self, multi_scale_output: bool) -> nn.ModuleList:
        widths = self.out_channels
        fuse_layers = []
        for i in range(len(widths) if multi_scale_output else 1):
            row: list[nn.Module] = []
            for j in range(len(widths)):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(widths[j], widths[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(widths[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps = [_conv_bn(widths[j], widths[j], 3, 2, relu=True)
                             for _ in range(i - j - 1)]
                    steps.append(_conv_bn(widths[j], widths[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        outs = []
        for row in self.fuse_layers:
            # The first sum allocates; later terms are added in place (an identity term is
            # an input that other rows still need, so it is never the one modified).
            y = row[0](xs[0]) + row[1](xs[1])
            for j in range(2, self.num_branches):
                y += row[j](xs[j])
            outs.append(self.relu(y))
        return outs


class PoseHighResolutionNet(nn.Module):
    def __init__(self, extra: CfgNode, num_joints: int):
        super().__init__()
        stem = extra.STEM_INPLANES
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

        s1 = extra.STAGE1
        self.layer1, width = make_res_layer(_block(s1, "STAGE1"), stem, s1.NUM_CHANNELS[0],
                                            s1.NUM_BLOCKS[0])
        widths = [width]
        for index in (2, 3, 4):
            stage_cfg = extra[f"STAGE{index}"]
            block = _block(stage_cfg, f"STAGE{index}")
            _check_stage(stage_cfg, f"STAGE{index}")
            channels = [c * block.expansion for c in stage_cfg.NUM_CHANNELS]
            self.add_module(f"transition{index - 1}", _make_transition(widths, channels))
            modules = []
            for m in range(stage_cfg.NUM_MODULES):
                last = index == 4 and m == stage_cfg.NUM_MODULES - 1
                module = HighResolutionModule(block, list(stage_cfg.NUM_BLOCKS), channels,
                                              list(stage_cfg.NUM_CHANNELS),
                                              multi_scale_output=not last)
                modules.append(module)
                channels = module.out_channels
            self.add_module(f"stage{index}", nn.Sequential(*modules))
            widths = channels
        self.final_layer = final_conv(widths[0], num_joints, extra.FINAL_CONV_KERNEL)
        init_seed_style(self, zero_conv_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for transition, stage in ((self.transition1, self.stage2), (self.transition2, self.stage3),
                                  (self.transition3, self.stage4)):
            ys = stage([t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(transition)])
        return self.final_layer(ys[0])


def _block(stage_cfg: CfgNode, name: str) -> type[nn.Module]:
    if stage_cfg.BLOCK not in BLOCKS:
        raise ValueError(f"MODEL.EXTRA.{name}.BLOCK must be one of {sorted(BLOCKS)}, "
                         f"got {stage_cfg.BLOCK!r}")
    return BLOCKS[stage_cfg.BLOCK]


def _check_stage(stage_cfg: CfgNode, name: str) -> None:
    n = stage_cfg.NUM_BRANCHES
    for key in ("NUM_BLOCKS", "NUM_CHANNELS"):
        if len(stage_cfg[key]) != n:
            raise ValueError(f"MODEL.EXTRA.{name}.{key} has {len(stage_cfg[key])} entries but "
                             f"NUM_BRANCHES is {n}")
    if stage_cfg.FUSE_METHOD != "SUM":
        raise ValueError(f"MODEL.EXTRA.{name}.FUSE_METHOD must be 'SUM', "
                         f"got {stage_cfg.FUSE_METHOD!r}")


def _make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt the previous stage's branches to the next: 3x3 convs where widths differ, an
    identity where they match, and strided 3x3 convs from the lowest branch for new ones."""
    layers: list[nn.Module] = []
    for i, width in enumerate(cur):
        if i < len(pre):
            layers.append(nn.Identity() if pre[i] == width
                          else _conv_bn(pre[i], width, 3, 1, relu=True))
        else:
            steps = []
            for j in range(i + 1 - len(pre)):
                out = width if j == i - len(pre) else pre[-1]
                steps.append(_conv_bn(pre[-1], out, 3, 2, relu=True))
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


def build_pose_hrnet(cfg: CfgNode) -> PoseHighResolutionNet:
    return PoseHighResolutionNet(cfg.MODEL.EXTRA, cfg.MODEL.NUM_JOINTS)
