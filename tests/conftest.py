from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
# The seed's original experiment files, present where the project's shared/ folder is.
SEED_EXPERIMENTS = REPO.parent / "shared" / "seed" / "experiments"


@pytest.fixture
def lpn50_cfg_path() -> Path:
    return EXPERIMENTS / "coco" / "lpn" / "lpn50_256x192_gd256x2_gc.yaml"


# Tests that load the native inference runtimes (onnxruntime, OpenVINO) and detector
# exports. They run in their own pytest process (see README's test command): after all of
# them have run in one long-lived process beside the training tests, that process was seen
# to crash with a segfault in native code on this machine.
BACKEND_TEST_FILES = {"test_export.py", "test_inference.py", "test_inference_cli.py",
                      "test_readme.py", "test_detection.py", "test_rtmdet.py", "test_zoo.py",
                      "test_rtmpose_backends.py", "test_test_backend.py", "test_runtime.py"}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "backends: loads onnxruntime/OpenVINO; run apart")


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.path.name in BACKEND_TEST_FILES:
            item.add_marker(pytest.mark.backends)
