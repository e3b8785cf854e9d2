"""LPN's inference form (humanpose.inference.lpn_form) computes what the model computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import humanpose
from humanpose.inference.backends import TorchRunner
from humanpose.inference.fused_conv import FastDeconv
from humanpose.inference.lpn_form import is_lpn, lpn_inference_form

REPO = Path(__file__).resolve().parents[1]
LPN = REPO / "experiments" / "coco" / "lpn"
SMALL = ["MODEL.IMAGE_SIZE", "[48,64]", "MODEL.HEATMAP_SIZE", "[12,16]"]
VARIANTS = {
    "lpn50-gc": ("lpn50_256x192_gd256x2_gc.yaml", []),
    "lpn18-depthwise-gc": ("lpn18_256x192_gd256x2_gc.yaml", []),
    "lpn18h-half-gc": ("lpn18h_256x192_gd256x2_gc.yaml", []),
    "lpn50-se": ("lpn50_256x192_gd256x2_gc.yaml", ["MODEL.EXTRA.ATTENTION", "SE"]),
    "lpn18-se": ("lpn18_256x192_gd256x2_gc.yaml", ["MODEL.EXTRA.ATTENTION", "SE"]),
    "lpn50-none": ("lpn50_256x192_gd256x2_gc.yaml", ["MODEL.EXTRA.ATTENTION", "NONE"]),
}


def config(name: str):
    file, opts = VARIANTS[name]
    return humanpose.get_cfg(LPN / file, [*SMALL, *opts])


@torch.no_grad()
def nontrivial(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights of a plausible scale and batch-norm/LayerNorm parameters and statistics away
    from their defaults, so that every folded term changes the output."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator)
                           * m.weight[0].numel() ** -0.5)
            if m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=generator) * 0.2 - 0.1)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            m.bias.copy_(torch.rand(m.bias.shape, generator=generator) * 0.4 - 0.2)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) * 1.5
                                    + 0.5)
    return model.eval()


def inputs(cfg, batch: int) -> torch.Tensor:
    w, h = cfg.MODEL.IMAGE_SIZE
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(batch))


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("batch", [1, 2])
def test_form_equals_model(name, batch):
    cfg = config(name)
    model = nontrivial(humanpose.build_model(cfg))
    x = inputs(cfg, batch)
    form = lpn_inference_form(model)
    with torch.inference_mode():
        expected = model(x)
        assert expected.std() > 0.05  # not a flat output that any form would match
        for layout in (torch.contiguous_format, torch.channels_last):
            got = form.to(memory_format=layout)(x.contiguous(memory_format=layout))
            assert got.shape == expected.shape
            assert (got - expected).abs().max() < 1e-4, (name, layout)


@pytest.mark.parametrize("name", ["lpn50-gc", "lpn18h-half-gc", "lpn18-se"])
def test_plain_path_is_exact_in_float64(name):
    """Off oneDNN's fused path (here: float64) the form runs plain operations, which are
    the same function up to float64 rounding: the algebra of the rewrite is right."""
    cfg = config(name)
    model = nontrivial(humanpose.build_model(cfg)).double()
    x = inputs(cfg, 2).double()
    form = lpn_inference_form(model)
    with torch.inference_mode():
        assert (form(x) - model(x)).abs().max() < 1e-9


def test_deconv_phases_are_used_and_exact():
    """LPN's grouped deconvolutions (2 inputs per group, then depthwise) run as phases."""
    cfg = config("lpn50-gc")
    model = nontrivial(humanpose.build_model(cfg))
    form = lpn_inference_form(model)
    deconvs = [m for m in form.modules() if isinstance(m, FastDeconv)]
    assert len(deconvs) == 2 and all(d.phases is not None for d in deconvs)
    assert [d.per_group for d in deconvs] == [2, 1]
    x = torch.randn(1, 512, 4, 3).contiguous(memory_format=torch.channels_last)
    reference = model.deconv_layers[:3]
    with torch.inference_mode():
        assert (deconvs[0](x) - reference(x)).abs().max() < 1e-5
        # the exported form: one grouped convolution and a pixel shuffle
        for deconv, y in ((deconvs[0], x), (deconvs[1], torch.randn(2, 256, 5, 4))):
            assert (deconv.shuffled(y) - torch.relu(deconv.deconv(y))).abs().max() < 1e-5


def test_model_and_state_dict_are_untouched():
    cfg = config("lpn50-gc")
    model = nontrivial(humanpose.build_model(cfg)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lpn_inference_form(model)
    assert model.training
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_other_models_are_returned_as_they_are():
    cfg = humanpose.get_cfg(REPO / "experiments" / "coco" / "hrnet" /
                            "w18_small_v2_256x192_adam_lr1e-3.yaml")
    model = humanpose.build_model(cfg)
    assert not is_lpn(model)
    assert lpn_inference_form(model) is model
    assert is_lpn(humanpose.build_model(config("lpn18-se")))


@pytest.mark.parametrize("name", ["lpn50-gc", "lpn18h-half-gc"])
def test_torch_runner_with_form_equals_without(name):
    cfg = config(name)
    model = nontrivial(humanpose.build_model(cfg))
    x = inputs(cfg, 2)
    fast = TorchRunner(model)
    plain = TorchRunner(model, inference_form=False)
    assert any(isinstance(m, FastDeconv) for m in fast.model.modules())
    assert not any(isinstance(m, FastDeconv) for m in plain.model.modules())
    assert (fast(x) - plain(x)).abs().max() < 1e-4
    assert (fast(x[:1]) - plain(x[:1])).abs().max() < 1e-4
