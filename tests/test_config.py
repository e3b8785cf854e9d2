"""The config: seed files load, overrides work, mistakes are named."""

import pytest

import humanpose
from humanpose import ConfigError

from .conftest import EXPERIMENTS


def test_defaults_and_overrides(lpn50_cfg_path):
    cfg = humanpose.get_cfg(lpn50_cfg_path, ["TRAIN.LR", "0.01", "TEST.FLIP_TEST", "False",
                                             "MODEL.IMAGE_SIZE", "[96, 128]",
                                             "MODEL.HEATMAP_SIZE", "[24, 32]",
                                             "DATASET.PROB_HALF_BODY", "-1.0",
                                             "TEST.MODEL_FILE", "w.pth"])
    assert cfg.MODEL.NAME == "lpn" and cfg.MODEL.EXTRA.NUM_LAYERS == 50
    assert cfg.TRAIN.LR == 0.01 and cfg.TEST.FLIP_TEST is False
    assert list(cfg.MODEL.IMAGE_SIZE) == [96, 128] and cfg.DATASET.PROB_HALF_BODY == -1.0
    assert cfg.TEST.MODEL_FILE == "w.pth"
    assert cfg.LOSS.USE_OHKM is False  # default kept
    assert cfg.is_frozen()


def test_yaml_style_booleans_on_the_command_line(lpn50_cfg_path):
    cfg = humanpose.get_cfg(lpn50_cfg_path, ["TEST.SOFT_ARGMAX", "false"])
    assert cfg.TEST.SOFT_ARGMAX is False


def test_data_dir_is_joined_like_the_seed(lpn50_cfg_path):
    cfg = humanpose.get_cfg(lpn50_cfg_path, ["DATA_DIR", "/d", "TEST.MODEL_FILE", "m.pth"])
    assert cfg.DATASET.ROOT == "/d/data/coco/" and cfg.TEST.MODEL_FILE == "/d/m.pth"


@pytest.mark.parametrize("opts,pattern", [
    (["MODEL.EXTRA.NUM_LAYER", "18"],
     r"command line: unknown config key 'MODEL.EXTRA.NUM_LAYER' "
     r"\(did you mean 'MODEL.EXTRA.NUM_LAYERS'"),
    (["TRAIN.LR", "fast"], "TRAIN.LR expects float"),
    (["MODEL.NUM_JOINTS", "1.5"], "MODEL.NUM_JOINTS expects int"),
    (["MODEL.EXTRA", "1"], "group of keys"),
    (["TRAIN.LR"], "KEY VALUE pairs"),
])
def test_bad_overrides_name_the_key(lpn50_cfg_path, opts, pattern):
    with pytest.raises(ConfigError, match=pattern):
        humanpose.get_cfg(lpn50_cfg_path, opts)


def test_misspelt_key_in_a_file_names_file_and_key(tmp_path):
    text = (EXPERIMENTS / "coco/lpn/lpn50_256x192_gd256x2_gc.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("ATTENTION: 'GC'", "ATENTION: 'GC'"))
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'MODEL.EXTRA.ATENTION'"):
        humanpose.get_cfg(bad)
    bad.write_text(text.replace("SIGMA: 2", "SIGMA: [2]"))
    with pytest.raises(ConfigError, match=r"bad.yaml: MODEL.SIGMA expects int"):
        humanpose.get_cfg(bad)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found: .*missing.yaml"):
        humanpose.get_cfg(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("MODEL: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        humanpose.get_cfg(tmp_path / "broken.yaml")
