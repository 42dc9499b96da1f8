"""Distillation: frozen teachers, projectors, beta schedules and the callback that owns them."""

from .callback import Distillation
from .projectors import ProjectorBank, projector
from .schedules import SCHEDULES, beta_at
from .teachers import DefocusTeacher, DepthTeacher, FrozenTeacher, NoTeacher

__all__ = ["SCHEDULES", "DefocusTeacher", "DepthTeacher", "Distillation", "FrozenTeacher", "NoTeacher", "ProjectorBank",
           "beta_at", "projector"]
