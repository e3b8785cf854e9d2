"""LPN rewritten for inference: the same function in a form that runs faster.

:func:`lpn_inference_form` turns a built (or checkpoint-loaded) LPN into a new module tree
that computes the same heatmaps (within float rounding, ~1e-6) with fewer, fused operations.
The trained model, its state-dict layout and training are untouched; the form is made at
inference time, as batch-norm folding is.

What changes, and why it is equivalent:

* every batch norm is folded into the convolution before it (eval-mode statistics);
* on the CPU in fp32, convolutions run as oneDNN convolutions with their ReLU and the
  residual addition fused in (``mkldnn._convolution_pointwise``) and with weights reordered
  once into oneDNN's blocked layout, instead of being reordered on every call;
* GC attention is computed from the *input* of the block's last 1x1 convolution ``v = W y + b``:
  the mask logits ``m . v + c`` are ``(W^T m) . y + (m . b + c)`` and the softmax-weighted
  context ``sum_p s_p v_p`` is ``W (sum_p s_p y_p) + b`` because the weights sum to one. Both
  are two small matrix-vector products on the channels-last activation, and the per-channel
  term the attention adds everywhere becomes part of the last convolution's bias (batch 1)
  or of its fused residual input, so the attention costs no pass over the feature map;
* LayerNorm over ``[hidden, 1, 1]`` is a LayerNorm over the hidden vector, and the attention's
  1x1 convolutions on a 1x1 map are matrix-vector products.

Off the fast path (autocast, GPU, tracing/ONNX export, other dtypes) the same module runs
plain ``torch.nn.functional`` operations, so it exports to ONNX and runs anywhere. The fused
convolution and deconvolution themselves are in :mod:`humanpose.inference.fused_conv`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from humanpose.inference.fused_conv import FastConv, FastDeconv, fast_path, interleave
from humanpose.models.blocks import BasicBlock, GCBlock, LightweightBottleneck, SELayer
from humanpose.models.resnet import ResNetPoseNet

__all__ = ["ONNX_FORM_BACKENDS", "FastConv", "FastLPN", "is_lpn", "lpn_inference_form"]

# The ONNX backends for which PoseEstimator exports LPN's inference form rather than the
# model as built: OpenVINO runs it ~1.3x faster; onnxruntime runs the model as built ~15%
# faster (its own fusions). Measured by benchmarks/bench_lpn_forward.py.
ONNX_FORM_BACKENDS = ("openvino", "openvino-fp32")


class FastGC(nn.Module):
    """GC attention as the per-channel vector ``(N, C)`` it adds to ``v = W y + b``, computed
    from ``y``; ``projection`` is the folded last convolution ``(W, b)``, whose bias is then
    part of the result (so the vector is that convolution's whole bias), or None when ``y``
    is ``v`` itself.

    Folded further: the mask's bias is dropped (a softmax does not change when all its
    logits move by the same amount), and ``W``, ``b`` go into the first linear layer.
    """

    def __init__(self, gc: GCBlock, projection: tuple[torch.Tensor, torch.Tensor] | None):
        super().__init__()
        fc1, norm, _, fc2 = gc.channel_add_conv
        with torch.no_grad():
            mask = gc.conv_mask.weight.detach().flatten()  # (C,)
            fc1_weight, fc1_bias = fc1.weight.detach().flatten(1), fc1.bias.detach()
            fc2_bias = fc2.bias.detach()
            if projection is not None:
                weight, bias = projection
                weight = weight.flatten(1)  # (C_out, C_in)
                mask = weight.t() @ mask
                fc1_bias = fc1_bias + fc1_weight @ bias
                fc1_weight = fc1_weight @ weight
                fc2_bias = fc2_bias + bias
            self.register_buffer("mask", mask.clone())
            self.register_buffer("fc1_weight", fc1_weight.clone())
            self.register_buffer("fc1_bias", fc1_bias.clone())
            self.register_buffer("norm_weight", norm.weight.detach().flatten().clone())
            self.register_buffer("norm_bias", norm.bias.detach().flatten().clone())
            self.register_buffer("fc2_weight", fc2.weight.detach().flatten(1).clone())
            self.register_buffer("fc2_bias", fc2_bias.clone())
        self.eps = norm.eps
        self.hidden = fc1.out_channels  # a constant for the ONNX exporter

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n, c = y.shape[:2]
        if y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous():
            flat = y.permute(0, 2, 3, 1).reshape(n, -1, c)  # (N, HW, C), a view
            weights = torch.softmax(torch.matmul(flat, self.mask), dim=1)  # (N, HW)
            context = torch.matmul(weights.unsqueeze(1), flat).squeeze(1)  # (N, C)
        else:  # NCHW (and ONNX export): no transposition of the map
            flat = y.reshape(n, c, -1)  # (N, C, HW)
            weights = torch.softmax(torch.matmul(self.mask, flat), dim=1)  # (N, HW)
            context = torch.matmul(flat, weights.unsqueeze(2)).squeeze(2)  # (N, C)
        hidden = F.linear(context, self.fc1_weight, self.fc1_bias)
        hidden = F.relu(F.layer_norm(hidden, (self.hidden,), self.norm_weight,
                                     self.norm_bias, self.eps))
        return F.linear(hidden, self.fc2_weight, self.fc2_bias)


class FastSE(nn.Module):
    """Squeeze-and-excitation's gate ``(N, C, 1, 1)`` of ``v``."""

    def __init__(self, se: SELayer):
        super().__init__()
        self.fc = copy.deepcopy(se.fc)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n, c = v.shape[:2]
        return self.fc(v.mean(dim=(2, 3))).view(n, c, 1, 1)


def _attention(att: nn.Module | None,
               projection: tuple[torch.Tensor, torch.Tensor] | None) -> nn.Module | None:
    if att is None:
        return None
    if isinstance(att, GCBlock):
        return FastGC(att, projection)
    if isinstance(att, SELayer):
        return FastSE(att)
    raise TypeError(f"no inference form for attention {type(att).__name__}")


def _downsample(block: nn.Module) -> FastConv | None:
    if block.downsample is None:
        return None
    conv, bn = block.downsample
    return FastConv.of(conv, bn, relu=False)


class FastBlock(nn.Module):
    """An LPN residual block (bottleneck or basic) in the fused form."""

    def __init__(self, block: LightweightBottleneck | BasicBlock):
        super().__init__()
        self.downsample = _downsample(block)
        if isinstance(block, LightweightBottleneck):
            self.convs = nn.ModuleList([FastConv.of(block.conv1, block.bn1, relu=True),
                                        FastConv.of(block.conv2, block.bn2, relu=True)])
            last = FastConv.of(block.conv3, block.bn3, relu=True)
        else:
            self.convs = nn.ModuleList([FastConv.of(block.conv1, block.bn1, relu=True)])
            last = FastConv.of(block.conv2, block.bn2, relu=True)
        self.last = last
        # GC after a 1x1 convolution is computed from that convolution's input; after a
        # 3x3 one (basic blocks), from its output.
        projected = isinstance(block, LightweightBottleneck)
        self.att = _attention(block.att, (last.weight, last.bias) if projected else None)
        self.projected = projected
        self.register_buffer("no_bias", torch.zeros_like(last.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = x
        for conv in self.convs:
            y = conv(y)
        if self.att is None:
            return self.last(y, other=identity)
        if isinstance(self.att, FastSE):
            v = F.conv2d(y, self.last.weight, self.last.bias, self.last.stride,
                         self.last.padding, self.last.dilation, self.last.groups)
            return F.relu(torch.addcmul(identity, v, self.att(v)))
        if not self.projected:
            v = F.conv2d(y, self.last.weight, self.last.bias, self.last.stride,
                         self.last.padding, self.last.dilation, self.last.groups)
            term = self.att(v)
            n, c = term.shape
            return F.relu(v + (identity + term.view(n, c, 1, 1)))
        bias = self.att(y)  # (N, C): the last convolution's bias, attention included
        n, c = bias.shape
        if n == 1 and fast_path(y):
            return self.last(y, other=identity, bias=bias[0])
        return self.last(y, other=identity + bias.view(n, c, 1, 1), bias=self.no_bias)


def _head(deconv_layers: nn.Sequential) -> nn.Sequential:
    """[deconv, BN, ReLU] (+ [1x1 conv, BN, ReLU] in LPN) per layer, fused."""
    layers = list(deconv_layers)
    fused: list[nn.Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.ConvTranspose2d):
            fused.append(FastDeconv(layer, layers[i + 1]))
        elif isinstance(layer, nn.Conv2d):
            fused.append(FastConv.of(layer, layers[i + 1], relu=True))
        else:
            raise TypeError(f"unexpected layer {type(layer).__name__} in the deconv head")
        if not (isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.ReLU)):
            raise TypeError("the deconv head must be [conv, BatchNorm2d, ReLU] triples")
        i += 3
    return nn.Sequential(*fused)


class FastLPN(nn.Module):
    """:class:`~humanpose.models.resnet.ResNetPoseNet` with LPN blocks, in the fused form."""

    def __init__(self, model: ResNetPoseNet):
        super().__init__()
        self.stem = FastConv.of(model.conv1, model.bn1, relu=True)
        self.maxpool = copy.deepcopy(model.maxpool)
        self.blocks = nn.Sequential(*[FastBlock(block) for index in range(1, 5)
                                      for block in getattr(model, f"layer{index}")])
        head = _head(model.deconv_layers)
        self.final_layer = FastConv.of(model.final_layer, None, relu=False)
        # After the last deconvolution everything is pointwise (1x1 convolutions, ReLU): on
        # the fast path it runs on each output phase of that deconvolution, a quarter of
        # the map (cache-friendly), and only the heatmaps are interleaved.
        last = max(i for i, m in enumerate(head) if isinstance(m, FastDeconv))
        tail = [*head[last + 1:], self.final_layer]
        self.phased = (head[last].phases is not None
                       and all(_pointwise(m) for m in tail))
        self.head = nn.Sequential(*head[:last + 1])
        self.tail = nn.Sequential(*head[last + 1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.maxpool(self.stem(x)))
        if self.phased and fast_path(x):
            maps = self.head[-1].phase_maps(self.head[:-1](x))
            return interleave([self.final_layer(self.tail(m)) for m in maps],
                              torch.contiguous_format)
        if self.phased and torch.onnx.is_in_onnx_export():
            return self._exported_tail(self.head[:-1](x))
        return self.final_layer(self.tail(self.head(x)))

    def _exported_tail(self, x: torch.Tensor) -> torch.Tensor:
        """The per-phase tail as ONNX-friendly reshapes: the phases (channel ``4g + p`` of
        the grouped convolution) become the batch, and the heatmaps are woven at the end."""
        deconv = self.head[-1]
        c, h, w = deconv.deconv.out_channels, x.shape[2], x.shape[3]
        y = F.relu(F.conv2d(x, deconv.shuffle_weight, deconv.shuffle_bias, 1, 1, 1, c))
        y = y.reshape(-1, c, 4, h, w).transpose(1, 2).reshape(-1, c, h, w)  # (4N, C, h, w)
        out = self.final_layer(self.tail(y))
        k = out.shape[1]
        out = out.reshape(-1, 2, 2, k, h, w).permute(0, 3, 4, 1, 5, 2)
        return out.reshape(-1, k, 2 * h, 2 * w)


def _pointwise(layer: nn.Module) -> bool:
    return (isinstance(layer, FastConv) and tuple(layer.weight.shape[2:]) == (1, 1)
            and layer.stride == [1, 1] and layer.padding == [0, 0] and layer.groups == 1)


def is_lpn(model: nn.Module) -> bool:
    """Whether :func:`lpn_inference_form` rewrites ``model``."""
    if not isinstance(model, ResNetPoseNet):
        return False
    blocks = [b for i in range(1, 5) for b in getattr(model, f"layer{i}")]
    return all(isinstance(b, (LightweightBottleneck, BasicBlock)) for b in blocks) and any(
        b.att is not None or isinstance(b, LightweightBottleneck)
        or b.conv1.groups > 1 for b in blocks)


@torch.no_grad()
def lpn_inference_form(model: nn.Module) -> nn.Module:
    """The fused inference form of an LPN (a new module in eval mode, on the model's device);
    any other model is returned as it is.

    The result computes the same outputs as ``model.eval()`` (to float rounding). It holds
    derived tensors only: load checkpoints into the original model, then rewrite it.
    """
    if not is_lpn(model):
        return model
    was_training = model.training
    model.eval()
    try:
        return FastLPN(model).eval()
    finally:
        model.train(was_training)
