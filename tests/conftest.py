from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
# The seed's original experiment files, present where the project's shared/ folder is.
SEED_EXPERIMENTS = REPO.parent / "shared" / "seed" / "experiments"


@pytest.fixture
def lpn50_cfg_path() -> Path:
    return EXPERIMENTS / "coco" / "lpn" / "lpn50_256x192_gd256x2_gc.yaml"
