"""``torch.compile`` switch (``compile.enabled=true``) that keeps checkpoint key names.

``torch.compile(net)`` returns an ``OptimizedModule`` wrapper whose ``state_dict``
keys gain an ``_orig_mod.`` prefix, so checkpoints of compiled and plain runs
would not load into each other. ``nn.Module.compile()`` compiles the module's
forward in place instead: same object, same parameters, same key names. The
DBD nets are compiled as ``task.net`` (every family has one), so the switch
works for every model family; teachers of the distillation callback are not
compiled (frozen, run once per batch under ``no_grad``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def compile_net(module: nn.Module, options: Mapping[str, Any] | None) -> bool:
    """Compile ``module.net`` in place when ``options["enabled"]``; returns whether it did."""
    opts = dict(options or {})
    if not opts.pop("enabled", False):
        return False
    net = getattr(module, "net", None)
    if not isinstance(net, nn.Module):
        raise ValueError(f"compile.enabled=true needs a task with a `net` module; {type(module).__name__} has none")
    net.compile(**{k: v for k, v in opts.items() if v is not None})
    return True
