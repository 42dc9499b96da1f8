"""requirements/lock.txt stays in step with pyproject.toml's ranges (every extra), and test-lowest's floors are real."""

from __future__ import annotations

import importlib.util
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .helpers import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (requirements/lowest.py reads pyproject.toml with it too)

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DEPS = PYPROJECT["project"]["dependencies"]
# [app] (Gradio) is installed on demand, not locked: every Gradio release needs Pillow < 13, which the
# locked environment does not use (see the Makefile's LOCK_EXTRAS)
UNLOCKED_EXTRAS = {"app"}
EXTRAS = {k: v for k, v in PYPROJECT["project"]["optional-dependencies"].items() if k not in UNLOCKED_EXTRAS}


def lock_pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = Version(m.group(2))
    return pins


def lowest_module():
    spec = importlib.util.spec_from_file_location("lowest", REPO / "requirements" / "lowest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("group", ["dependencies", *EXTRAS])
def test_every_declared_requirement_is_locked_inside_its_range(group):
    """`make setup` installs the lock: each requirement of pyproject.toml (runtime and every extra) must be in it,
    at a version the range admits (else the lock was not regenerated with `make lock`)."""
    pins = lock_pins()
    for text in DEPS if group == "dependencies" else EXTRAS[group]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{text} ({group}) is missing from requirements/lock.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements/lock.txt pins {name}=={pins[name]} outside {text} ({group}): run make lock"


def test_the_opencv_builds_in_the_lock_are_one_release():
    """Both wheels install `cv2`; the Makefile puts the contrib one last, which is right only at the same version."""
    pins = lock_pins()
    assert pins["opencv-contrib-python-headless"] == pins["opencv-python-headless"]


def test_lowest_constraints_are_the_declared_floors():
    floors = lowest_module().lower_bounds(REPO / "pyproject.toml")
    assert len(floors) == len(DEPS)
    pins = lock_pins()
    for floor, text in zip(floors, DEPS, strict=True):
        name, version = floor.split("==")
        req = Requirement(text)
        assert canonicalize_name(name) == canonicalize_name(req.name)
        assert req.specifier.contains(version) and Version(version) <= pins[canonicalize_name(name)]


def test_a_dependency_without_a_lower_bound_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy>=1.26", "rich"]\n')
    with pytest.raises(SystemExit, match="'rich' has no lower bound"):
        lowest_module().lower_bounds(tmp_path / "pyproject.toml")
