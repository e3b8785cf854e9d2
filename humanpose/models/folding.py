"""Batch norms folded into the convolutions before them: the same outputs, one pass less
over every activation map (the inference backends and LPN's inference form use it)."""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn

__all__ = ["fold_batchnorm", "fold_conv_bn"]


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> nn.Module:
    """``conv`` followed by ``bn`` (eval mode) as one convolution. Grouped transposed
    convolutions (LPN's deconvolutions) keep output channels in the weight's second axis,
    group by group, which PyTorch's own ``fuse_conv_bn_eval`` does not handle."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    bias = (bias - bn.running_mean) * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    w = conv.weight
    if isinstance(conv, nn.ConvTranspose2d):
        g = conv.groups
        grouped = w.reshape(g, w.shape[0] // g, w.shape[1], *w.shape[2:])
        w = (grouped * scale.reshape(g, 1, -1, 1, 1)).reshape(w.shape)
    else:
        w = w * scale.reshape(-1, 1, 1, 1)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(w.contiguous(), requires_grad=False)
    fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BatchNorm that directly follows a
    convolution folded into that convolution's weights and bias.

    Folding removes one full pass over each activation map per block, which is a large part
    of a small network's CPU time. The model is traced with ``torch.fx``; a model that cannot
    be traced is returned as an eval-mode copy, unfolded.
    """
    from torch.fx import symbolic_trace

    model = copy.deepcopy(model).eval()
    try:
        graph_module = symbolic_trace(model)
    except Exception:  # dynamic control flow: keep the eager model
        return model
    modules = dict(graph_module.named_modules())
    # A convolution called at several places (RTMDet's head shares one conv between levels,
    # each with its own BatchNorm) keeps its weights: folding one BN into it would change
    # every other call, and folding each BN in turn would compound them.
    calls = Counter(node.target for node in graph_module.graph.nodes
                    if node.op == "call_module")
    for node in list(graph_module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        if not (isinstance(source, torch.fx.Node) and source.op == "call_module"
                and len(source.users) == 1 and calls[source.target] == 1):
            continue
        conv = modules[source.target]
        if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
            continue
        fused = fold_conv_bn(conv, modules[node.target])
        parent, _, name = source.target.rpartition(".")
        setattr(graph_module.get_submodule(parent) if parent else graph_module, name, fused)
        modules[source.target] = fused
        node.replace_all_uses_with(source)
        graph_module.graph.erase_node(node)
    graph_module.graph.lint()
    graph_module.recompile()
    graph_module.delete_all_unused_submodules()
    return graph_module
