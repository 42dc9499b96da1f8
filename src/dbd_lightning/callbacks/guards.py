"""Training guards: stop on a non-finite loss before it reaches the weights.

Lightning 2.x has no loss guard (``Trainer(terminate_on_nan)`` was removed;
``EarlyStopping(check_finite=True)`` only looks at the monitored validation
metric, after the damage is done), hence this small callback.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from ..utils.errors import UserError


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss (or a gradient) became NaN/Inf; training was stopped.

    A user error (``error: ...``, exit 2, no traceback): the fixes are settings or data the user chooses.
    """


class NonFiniteGuard(L.Callback):
    """Stop training with a clear message when the loss (or a gradient) is NaN/Inf.

    The message (:meth:`advice`) gives the resume command only when a checkpoint exists to resume from.

    The loss is checked in ``on_before_backward``: a bad batch raises before
    ``backward`` and the optimizer step, so the weights (and every checkpoint
    written so far, ``last.ckpt`` included) stay as they were. The forward pass
    of the bad batch has already updated BatchNorm running statistics, so the
    buffers are copied at each batch start (small: BN statistics and counters)
    and put back before raising: the module is left exactly as before the batch. Raising bypasses
    the end-of-epoch checkpointing, so no checkpoint of the bad state is written.
    With ``check_grads`` the gradients are also checked before each optimizer
    step (skipped under ``16-mixed``, whose loss scaler skips Inf steps on purpose).
    Under DDP the decision is reduced over ranks, so every rank stops together
    instead of one rank leaving the others waiting in an all-reduce.

    Args:
        check_grads: also stop on a non-finite gradient norm.
    """

    def __init__(self, check_grads: bool = True) -> None:
        super().__init__()
        self.check_grads = check_grads
        self._buffers: dict[str, torch.Tensor] = {}

    def _any_rank(self, trainer: L.Trainer, bad: bool) -> bool:
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(bad, all=False))
        return bad

    @staticmethod
    def _last_good(trainer: L.Trainer) -> list[str]:
        """The checkpoints written so far (``last`` first), all from before the bad step."""
        paths = []
        for cb in trainer.checkpoint_callbacks:
            for p in (getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", "")):
                if p and Path(p).is_file():
                    paths.append(str(p))
        return list(dict.fromkeys(paths))

    @classmethod
    def advice(cls, trainer: L.Trainer) -> str:
        """How to go on: continue from the last good checkpoint when there is one, else start again
        (a resume keeps the model config, so a lower learning rate needs a new run)."""
        from ..runs.resume import resume_command

        good = cls._last_good(trainer)
        if not good:
            return ("No checkpoint was written yet (the first epoch had not ended), so there is nothing to resume: "
                    "start the run again with a lower model.optimizer.lr, trainer.gradient_clip_val=1.0 or "
                    "trainer.precision=32-true, or check the data of this batch.")
        run_dir = Path(str(trainer.default_root_dir))
        ckpt = "last" if Path(good[0]).resolve() == (run_dir / "checkpoints" / "last.ckpt").resolve() else good[0]
        return (f"Last good checkpoint(s): {', '.join(good)}. Continue from it with a fix that a resume may change, "
                f"e.g. `{resume_command(run_dir, ckpt)} trainer.gradient_clip_val=1.0` (or "
                "trainer.precision=32-true), or check the data of this batch; a lower model.optimizer.lr needs a "
                "new run.")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._buffers = {k: b.detach().clone() for k, b in pl_module.named_buffers()}

    def _restore_buffers(self, pl_module: L.LightningModule | None) -> None:
        if pl_module is None or not self._buffers:
            return
        with torch.no_grad():
            for name, buf in pl_module.named_buffers():
                if name in self._buffers:
                    buf.copy_(self._buffers[name])

    def _stop(self, trainer: L.Trainer, what: str, pl_module: L.LightningModule | None = None) -> None:
        self._restore_buffers(pl_module)
        raise NonFiniteLossError(
            f"{what} at epoch {trainer.current_epoch}, global step {trainer.global_step}; training stopped "
            f"before this step changed the weights. {self.advice(trainer)}")

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self._any_rank(trainer, bad):
            value = float(loss.detach().float().reshape(-1)[0]) if bad else "finite here, not on another rank"
            self._stop(trainer, f"non-finite training loss ({value})", pl_module)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        if not self.check_grads or str(trainer.precision).startswith("16"):
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad = bool(grads) and not bool(torch.isfinite(torch.nn.utils.get_total_norm(grads, norm_type="inf")))
        if self._any_rank(trainer, bad):
            self._stop(trainer, "non-finite gradient (loss was finite)", pl_module)
