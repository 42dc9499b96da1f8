"""Split lists: the shipped CUHK TE-1 (BTBNet) list and user-supplied lists."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

CUHK_TE1_RESOURCE = "cuhk_te1_btbnet_split.txt"


def _entries(text: str) -> list[tuple[str, str]]:
    """``(alias, name)`` per non-empty line: ``k.bmp--out_of_focusNNNN.jpg`` or a bare name.

    Both are lower-cased file stems (matching is case-insensitive: the
    release mixes ``.jpg`` and ``.JPG``); ``alias`` is the part before ``--``
    (BTBNet's renamed copy) or the name itself.
    """
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        alias, _, name = line.rpartition("--")
        name = Path(name.strip()).stem.lower()
        out.append((Path(alias.strip()).stem.lower() if alias else name, name))
    return out


@lru_cache(maxsize=1)
def cuhk_te1_entries() -> tuple[tuple[str, str], ...]:
    """The 100 CUHK TE-1 images of BTBNet as ``(btbnet_stem, original_stem)``, e.g. ``("1", "out_of_focus0037")``."""
    text = resources.files("dbd_lightning").joinpath("resources", CUHK_TE1_RESOURCE).read_text()
    return tuple(_entries(text))


def read_split_file(path: str | Path) -> list[str]:
    """Original (lower-case) stems listed in a user split file; raises ``FileNotFoundError`` naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"split list file not found: {path}")
    return [name for _, name in _entries(path.read_text())]
