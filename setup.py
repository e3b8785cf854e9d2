"""Package layout only; everything else is in pyproject.toml.

The experiment files stay at the repository root (``experiments/``, where the seed keeps them
and where ``tools/`` and the tests find them) and ship inside the package as
``humanpose/experiments/``: the mapping below copies them into the wheel.
``humanpose.shipped`` looks in the package first, then beside it, so an installed wheel, an
editable install and a plain checkout all find them by name.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["humanpose", "humanpose.*"]), "humanpose.experiments"],
    package_dir={"humanpose.experiments": "experiments"},
    package_data={"humanpose": ["configs/*.yaml"],  # the demo's built-in configs
                  "humanpose.experiments": ["**/*.yaml"]},
)
