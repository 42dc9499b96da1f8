"""Config fragments that other configs include are not offered as ``group=option`` choices."""

import re
from pathlib import Path

from dbd_lightning.utils.config import config_dir

CONF = Path(config_dir())
INCLUDE = re.compile(r"^\s*-\s*(\S+)@_here_\s*$", re.M)


def test_data_group_has_only_options():
    """Hydra lists every folder under conf/data as a group of choices (``data/benchmark: base`` once)."""
    assert [p.name for p in (CONF / "data").iterdir() if p.is_dir()] == []


def test_here_includes_are_top_level_fragments():
    includes = {(p.relative_to(CONF).as_posix(), m) for p in CONF.rglob("*.yaml") for m in INCLUDE.findall(p.read_text())}
    assert ("data/cuhk_te1.yaml", "/_data_benchmark") in includes
    for path, name in includes:
        assert re.fullmatch(r"/_\w+", name), f"{path} includes {name}: use a top-level /_fragment (not a group)"
        assert (CONF / f"{name[1:]}.yaml").is_file(), f"{path} includes a missing fragment {name}"
