"""Optimizer parameter groups from config: per-name-pattern learning rates / weight decay.

``model.param_groups`` is a list of ``{match: <glob or list of globs>, <optimizer option>: value}``;
each trainable parameter goes to the first group whose pattern matches its name in
``net.named_parameters()`` (``fnmatch``, case-sensitive); the others form a last group
with the optimizer's own defaults. E.g. BTBNet (Sec. 4.1): backbone 1e-4, new layers 1e-3::

    optimizer: {_target_: torch.optim.SGD, _partial_: true, lr: 1.0e-3, momentum: 0.9}
    param_groups:
      - {match: "streams.*.trunk.*", lr: 1.0e-4}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["build_param_groups"]


def _patterns(group: Mapping[str, Any], index: int) -> list[str]:
    if "match" not in group:
        raise ValueError(f"param_groups[{index}] needs a 'match' pattern (glob on parameter names), got {dict(group)}")
    match = group["match"]
    pats = [match] if isinstance(match, str) else list(match)
    if not pats or not all(isinstance(p, str) and p for p in pats):
        raise ValueError(f"param_groups[{index}].match must be a non-empty glob or list of globs, got {match!r}")
    return pats


def build_param_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]], groups: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Split trainable parameters into optimizer groups by name pattern (first match wins).

    Raises ``ValueError`` for a group without ``match`` or one that matches no trainable
    parameter (a typo would otherwise silently train everything at the default rate).
    """
    pats = [_patterns(g, i) for i, g in enumerate(groups)]
    buckets: list[list[torch.nn.Parameter]] = [[] for _ in groups]
    rest: list[torch.nn.Parameter] = []
    for name, p in named_parameters:
        if not p.requires_grad:
            continue
        for i, ps in enumerate(pats):
            if any(fnmatch.fnmatchcase(name, pat) for pat in ps):
                buckets[i].append(p)
                break
        else:
            rest.append(p)
    out = []
    for i, (g, params) in enumerate(zip(groups, buckets, strict=True)):
        if not params:
            raise ValueError(f"param_groups[{i}] (match={pats[i]}) matches no trainable parameter of the network")
        out.append({"params": params, **{k: v for k, v in dict(g).items() if k != "match"}})
    if rest:
        out.append({"params": rest})
    return out
