"""Distillation: frozen teachers, projectors, beta schedules and the callback that owns them."""

from .callback import Distillation
from .projectors import ProjectorBank, projector
from .schedules import SCHEDULES, beta_at
from .teachers import DefocusTeacher, DepthTeacher, FrozenTeacher

__all__ = ["SCHEDULES", "DefocusTeacher", "DepthTeacher", "Distillation", "FrozenTeacher", "ProjectorBank",
           "beta_at", "projector"]
