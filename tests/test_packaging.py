"""The torch floor stated in pyproject.toml is the one the package checks, and CI installs
exactly as the README says."""

import re

import pytest
import torch

import humanpose
from humanpose.compat import check_torch

from .conftest import REPO


def test_pyproject_floor_is_min_torch():
    text = (REPO / "pyproject.toml").read_text()
    pins = re.findall(r'"torch([<>=!~]=?)([\d.]+)"', text)
    assert pins == [(">=", ".".join(map(str, humanpose.MIN_TORCH)))]


def test_a_torch_below_the_floor_is_refused_by_name():
    major, minor = humanpose.MIN_TORCH
    below = f"{major}.{minor - 1}.1+cpu"
    with pytest.raises(ImportError, match=re.escape(f"torch>={major}.{minor}, found torch "
                                                    f"{below}")):
        check_torch(below)
    check_torch(f"{major}.{minor}.0a0+git1234")  # a pre-release of the floor is the floor
    check_torch(torch.__version__)


def test_ci_runs_the_readme_set_up_command_with_the_exact_pins():
    readme = (REPO / "README.md").read_text()
    setup = re.search(r"^(pip install .*?)\s+# set-up", readme, re.M)
    assert setup is not None
    assert setup[1] in (REPO / ".ci" / "run").read_text().splitlines()[5]
    constraints = (REPO / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", constraints, re.M)
    assert "-c constraints.txt" in setup[1]
