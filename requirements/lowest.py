"""Print ``name==<lower bound>`` for every runtime dependency of ``pyproject.toml`` (``make test-lowest``).

The result is a pip constraints file: with it, pip installs each direct dependency at the lowest
version the project declares (what uv calls ``--resolution lowest-direct``); their own dependencies
resolve as usual. Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LOWER = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*[^;]*?>=\s*([^,;\s]+)")


def lower_bounds(pyproject: Path) -> list[str]:
    """``name==version`` for each dependency with a ``>=`` bound; one without is an error (no floor to test)."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = LOWER.match(dep)
        if not m:
            raise SystemExit(f"{pyproject}: dependency {dep!r} has no lower bound (>=); give it one")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


if __name__ == "__main__":
    print("\n".join(lower_bounds(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
