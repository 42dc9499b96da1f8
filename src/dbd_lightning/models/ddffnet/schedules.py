"""beta schedules of D-DFFNet (eq. 9): pure functions of the epoch, so a resumed run restores them."""

from __future__ import annotations

from collections.abc import Callable


def beta_paper(epoch: int, beta_max: float = 3.0, switch_epoch: int = 15, last_epoch: int = 75) -> float:
    """Eq. 9: ``3`` for ``epoch <= 15``, then ``3 * (epoch - 15) / lastepoch``."""
    if epoch <= switch_epoch:
        return float(beta_max)
    return float(beta_max) * (epoch - switch_epoch) / float(last_epoch)


def beta_authors_code(epoch: int, beta_max: float = 3.0, switch_epoch: int = 15, last_epoch: int = 75) -> float:
    """The released code: ``3`` before epoch 15, then ``3 * (epoch - 15) / (75 - 15)``
    (drops to 0 at epoch 15 and ramps back to ~3 at the last epoch)."""
    if epoch < switch_epoch:
        return float(beta_max)
    return float(beta_max) * (epoch - switch_epoch) / float(last_epoch - switch_epoch)


def beta_constant(epoch: int, beta_max: float = 3.0, switch_epoch: int = 15, last_epoch: int = 75) -> float:
    """A constant ``beta_max`` (ablations)."""
    return float(beta_max)


SCHEDULES: dict[str, Callable[..., float]] = {
    "paper": beta_paper,
    "authors_code": beta_authors_code,
    "constant": beta_constant,
}


def beta_at(schedule: str, epoch: int, beta_max: float = 3.0, switch_epoch: int = 15, last_epoch: int = 75) -> float:
    """beta for ``epoch`` (Lightning's 0-based ``current_epoch``) under a named schedule."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[schedule](epoch, beta_max=beta_max, switch_epoch=switch_epoch, last_epoch=last_epoch)
