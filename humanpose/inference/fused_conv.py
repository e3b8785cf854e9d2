"""The fused convolutions of LPN's inference form (:mod:`humanpose.inference.lpn_form`).

:class:`FastConv`: a convolution with its batch norm folded in, run on the CPU in fp32 as a
oneDNN convolution with the ReLU and a residual addition fused in and its weights reordered
once into oneDNN's blocked layout. :class:`FastDeconv`: LPN's grouped stride-2 transposed
convolution as four 3x3 phase convolutions (fast path) or one grouped convolution and a
pixel shuffle (ONNX export). Off the fast path both run plain ``torch.nn.functional``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humanpose.models.folding import fold_conv_bn

__all__ = ["FastConv", "FastDeconv", "fast_path", "interleave"]


def fast_path(x: torch.Tensor) -> bool:
    """oneDNN's fused convolutions: CPU, fp32, eager, no autocast."""
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export())


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (eval-mode statistics)."""
    weight = conv.weight.detach().clone()
    bias = (conv.bias.detach().clone() if conv.bias is not None
            else torch.zeros(conv.out_channels, dtype=weight.dtype, device=weight.device))
    if bn is None:
        return weight, bias
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = (bias - bn.running_mean) * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    return weight * scale.reshape(-1, 1, 1, 1), bias


class _PackedWeights:
    """oneDNN-layout copies of a weight, made on first use. Not copied with the module (a
    copy re-packs), and never part of a state dict."""

    def __init__(self):
        self.tensor: torch.Tensor | None = None

    def __deepcopy__(self, memo) -> _PackedWeights:
        return _PackedWeights()


class FastConv(nn.Module):
    """A convolution with its batch norm folded in, an optional fused residual addition
    (``other``) and an optional ReLU after it: ``relu(conv(x) + bias + other)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: list[int],
                 padding: list[int], dilation: list[int], groups: int, relu: bool):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride = list(stride)
        self.padding = list(padding)
        self.dilation = list(dilation)
        self.groups = groups
        self.relu = relu
        self._packed = _PackedWeights()

    @classmethod
    def of(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, relu: bool) -> FastConv:
        """``conv`` with ``bn`` folded in."""
        weight, bias = _fold(conv, bn)
        return cls(weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups, relu)

    def _apply(self, fn, recurse=True):  # .to()/.cuda(): the packed copy is stale
        self._packed = _PackedWeights()
        return super()._apply(fn, recurse)

    def packed(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed.tensor is None:
            self._packed.tensor = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups,
                list(x.shape))
        return self._packed.tensor

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        bias = self.bias if bias is None else bias
        if fast_path(x):
            weight = self.packed(x)
            if other is None:
                return torch.ops.mkldnn._convolution_pointwise(
                    x, weight, bias, self.padding, self.stride, self.dilation, self.groups,
                    "relu" if self.relu else "none", [], "")
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, other, weight, bias, self.padding, self.stride, self.dilation, self.groups,
                "add", None, "relu" if self.relu else None, [], None)
        y = F.conv2d(x, self.weight, bias, self.stride, self.padding, self.dilation,
                     self.groups)
        if other is not None:
            y = y + other
        return F.relu(y) if self.relu else y


# Stride-2, kernel-4, padding-1 transposed convolution as four 3x3 convolutions, one per
# output phase (row parity a, column parity b): output row 2m + a takes input rows m + r - 1
# through 3x3 tap r with the transposed kernel's tap k. parity -> {3x3 tap: 4x4 tap}.
_PHASE_TAPS = {0: {0: 3, 1: 1}, 1: {1: 2, 2: 0}}


def _phase_kernels(weight: torch.Tensor) -> list[torch.Tensor]:
    """The four ``(C_in, 1, 3, 3)`` phase kernels (phase ``2a + b``) of a ``(C_in, 1, 4, 4)``
    transposed-convolution weight."""
    kernels = []
    for a in (0, 1):
        for b in (0, 1):
            kernel = weight.new_zeros(weight.shape[0], 1, 3, 3)
            for r, kr in _PHASE_TAPS[a].items():
                for s, ks in _PHASE_TAPS[b].items():
                    kernel[:, 0, r, s] = weight[:, 0, kr, ks]
            kernels.append(kernel)
    return kernels


class FastDeconv(nn.Module):
    """A grouped transposed convolution with its batch norm folded in, then ReLU.

    LPN's deconvolutions have one output channel per group (``groups = C_out``, ``C_in /
    C_out`` inputs each, kernel 4, stride 2). oneDNN runs them slowly (a grouped
    deconvolution, worse in channels-last), so on the fast path each output phase is
    computed by depthwise 3x3 convolutions (one per input of a group, summed by a fused
    addition) and written into its interleaved place. Other shapes, and the plain path (ONNX
    export), run the folded ``ConvTranspose2d``.
    """

    def __init__(self, deconv: nn.ConvTranspose2d, bn: nn.BatchNorm2d):
        super().__init__()
        self.deconv = fold_conv_bn(deconv, bn)
        self.phases: nn.ModuleList | None = None
        groups, out_channels = deconv.groups, deconv.out_channels
        if (tuple(deconv.kernel_size), tuple(deconv.stride), tuple(deconv.padding),
                tuple(deconv.output_padding), tuple(deconv.dilation)) != (
                (4, 4), (2, 2), (1, 1), (0, 0), (1, 1)) or out_channels != groups:
            return
        self.per_group = deconv.in_channels // groups
        weight, bias = self.deconv.weight.detach(), self.deconv.bias.detach()
        zero = torch.zeros_like(bias)
        phases = []
        for kernel in _phase_kernels(weight):
            # input j of every group: channels j, j + per_group, ...
            phases.append(nn.ModuleList([
                FastConv(kernel[j::self.per_group].clone(),
                         bias if j == self.per_group - 1 else zero, [1, 1], [1, 1], [1, 1],
                         groups, relu=j == self.per_group - 1)
                for j in range(self.per_group)]))
        self.phases = nn.ModuleList(phases)
        # The same phases as one grouped convolution whose output channels are ordered as
        # pixel_shuffle (ONNX DepthToSpace) wants them: group g, phase p -> channel 4g + p.
        stacked = torch.stack(_phase_kernels(weight))  # (4, C_in, 1, 3, 3)
        stacked = stacked.reshape(4, groups, self.per_group, 3, 3).transpose(0, 1)
        self.register_buffer("shuffle_weight", stacked.reshape(4 * groups, self.per_group,
                                                                3, 3).clone())
        self.register_buffer("shuffle_bias", bias.repeat_interleave(4).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phases is not None and torch.onnx.is_in_onnx_export():
            return self.shuffled(x)
        if self.phases is None or not fast_path(x):
            return F.relu(self.deconv(x))
        return interleave(self.phase_maps(x), torch.channels_last)

    def shuffled(self, x: torch.Tensor) -> torch.Tensor:
        """The phases as one grouped 3x3 convolution and a pixel shuffle (the exported
        form: OpenVINO runs it faster than the grouped ConvTranspose)."""
        y = F.conv2d(x, self.shuffle_weight, self.shuffle_bias, 1, 1, 1,
                     self.deconv.out_channels)
        return F.relu(F.pixel_shuffle(y, 2))

    def phase_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output's four phases ``(N, C, H, W)``: phase ``2a + b`` is the output at rows
        ``2m + a`` and columns ``2n + b`` (fast path only)."""
        per = self.per_group
        parts = ([x] if per == 1 else
                 [x[:, j::per].contiguous(memory_format=torch.channels_last)
                  for j in range(per)])
        maps = []
        for convs in self.phases:
            y = None
            for part, conv in zip(parts, convs):
                y = conv(part, other=y)
            maps.append(y)
        return maps


def interleave(maps: list[torch.Tensor], memory_format: torch.memory_format) -> torch.Tensor:
    """Four phase maps ``(N, C, H, W)`` woven into one ``(N, C, 2H, 2W)`` map."""
    n, c, h, w = maps[0].shape
    out = torch.empty(n, c, 2 * h, 2 * w, dtype=maps[0].dtype, device=maps[0].device,
                      memory_format=memory_format)
    if memory_format == torch.channels_last:
        places = out.permute(0, 2, 3, 1).view(n, h, 2, w, 2, c)
        for index, y in enumerate(maps):
            a, b = divmod(index, 2)
            places[:, :, a, :, b, :].copy_(y.permute(0, 2, 3, 1))
    else:
        places = out.view(n, c, h, 2, w, 2)
        for index, y in enumerate(maps):
            a, b = divmod(index, 2)
            places[:, :, :, a, :, b].copy_(y)
    return out
