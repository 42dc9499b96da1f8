"""A trained run's folder and one of its checkpoints (what predict, eval, export and the zoo pass around)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..utils.errors import UserError

__all__ = ["CheckpointSpecError", "RunCheckpoint", "is_run_dir"]


class CheckpointSpecError(UserError, FileNotFoundError):
    """A ``ckpt=`` value that does not name a usable trained run / checkpoint."""


@dataclass(frozen=True)
class RunCheckpoint:
    """A trained run's folder (holding ``.hydra/config.yaml``) and one of its checkpoints."""

    run_dir: Path
    ckpt: Path

    @property
    def config_file(self) -> Path:
        return self.run_dir / ".hydra" / "config.yaml"

    def load_config(self) -> DictConfig:
        """The run's saved config, with names moved since it was written brought up to date (:mod:`.renames`)."""
        from .renames import migrate_config

        return OmegaConf.create(migrate_config(OmegaConf.to_container(OmegaConf.load(self.config_file))))

    @property
    def label(self) -> str:
        """Short default name: the run folder's name, plus the checkpoint's stem for ``last``/explicit files."""
        kind = "" if self.ckpt.stem.startswith("epoch") else f":{self.ckpt.stem}"
        return f"{self.run_dir.name}{kind}"


def is_run_dir(path: Path) -> bool:
    """A train run folder: it holds the composed config Hydra wrote (``.hydra/config.yaml``)."""
    return (path / ".hydra" / "config.yaml").is_file()
