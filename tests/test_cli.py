"""The humanpose command line."""

import json
import subprocess
import sys

from humanpose.cli import main

from .conftest import EXPERIMENTS

LPN18 = str(EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml")


def test_info_json_with_trailing_overrides(capsys):
    rc = main(["info", "--cfg", LPN18, "MODEL.IMAGE_SIZE", "[96, 128]",
               "MODEL.HEATMAP_SIZE", "[24, 32]", "--json", "--runs", "2"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"params", "gflops", "input_size", "latency_ms"}
    assert result["params"] == 473_913 and result["input_size"] == [96, 128]
    assert 0.423 / 4 * 0.99 < result["gflops"] < 0.423 / 4 * 1.01  # a quarter of the pixels
    assert result["latency_ms"] > 0


def test_info_text_and_python_m():
    out = subprocess.run([sys.executable, "-m", "humanpose", "info", "--cfg", LPN18,
                          "--runs", "1"], capture_output=True, text=True, check=True).stdout
    assert "parameters   473,913" in out and "GFLOPs       0.423" in out


def test_config_errors_exit_2_with_the_key(capsys):
    assert main(["info", "--cfg", LPN18, "MODEL.NUM_JONTS", "3"]) == 2
    assert "MODEL.NUM_JONTS" in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
