"""Self-training on unlabeled photographs next to a supervised loss: a mean teacher with confident,
view-consistent pseudo-labels (the label-free recipe; no real mask is read).

Choices, from the semi-supervised segmentation literature, and why:

* **Mean teacher** (Tarvainen & Valpola 2017): the teacher is an exponential moving average of the
  student, ``theta_t <- m theta_t + (1 - m) theta_s`` after every optimizer step (BatchNorm buffers
  copied), starting from the student's initialisation (the released synthetic model). An EMA teacher
  is steadier than the student itself, so its errors do not feed back as fast (confirmation bias).
* **Weak / strong views** (FixMatch, Sohn et al. 2020): the teacher labels the weak view (the
  training transform: resize, flip, mild colour jitter); the student learns the label on a strong
  *photometric* view of the same pixels (kornia colour jitter + random greyscale). Geometric or
  blur-changing augmentations (blur, noise, rescaling) are not used as strong views: they change the
  very defocus cue being labelled.
* **Flip and scale consistency** of the pseudo-label: the teacher also sees the horizontal flip and a
  rescaled copy (``teacher_scales``); the label is the mean probability over the views, and a pixel is
  kept only where every view puts it on the same side of 0.5.
* **Self-adaptive confidence threshold** (FreeMatch's global threshold, Wang et al. 2023): ``tau`` is
  an EMA of the teacher's mean confidence ``max(p, 1 - p)`` on the unlabeled pixels, clamped to
  ``[threshold_min, threshold_max]``: low while the teacher is unsure, rising as it becomes confident.
  Pixels with confidence >= ``tau`` are kept.

* **Domain BatchNorm statistics** (opt-in, ``domain_bn``): the labeled (synthetic) forward passes
  run with their own set of BatchNorm running statistics (:class:`DomainBatchNormStatistics`), so the
  network's buffers, which the teacher copies, validation and the release use, hold the *unlabeled
  photos'* statistics only: AdaBN (Li et al. 2017) kept up during training, where one set of buffers
  averages the two domains. Off: the recipe as first released.

Loss: ``l_sup(labeled) + lambda_u * mean(mask * BCE(student_strong, pseudo))`` over all unlabeled
pixels (FixMatch's normalisation: the term grows with the kept fraction), final map only. The
supervised term is the configured loss on the labeled samples of the batch. The student (``net``) is
what validation, checkpoints' ``net.*`` and release use; the teacher is saved as ``teacher.*``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .detection import DetectionTask
from .domain_batchnorm import DomainBatchNormStatistics


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``t <- m t + (1 - m) s`` for parameters; buffers (BatchNorm statistics, counters) copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        t.copy_(s)


def confident_pseudo_labels(view_probs: Sequence[torch.Tensor], threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean in-focus probability over the views and the mask of kept pixels (float 0/1).

    A pixel is kept when every view is on the same side of 0.5 as the mean and the mean's confidence
    ``max(p, 1 - p)`` is at least ``threshold``. Returns ``(pseudo-label in {0, 1}, mask)``.
    """
    stack = torch.stack(list(view_probs))
    mean = stack.mean(0)
    side = mean >= 0.5
    agree = ((stack >= 0.5) == side).all(0)
    confident = torch.maximum(mean, 1.0 - mean) >= threshold
    return side.float(), (agree & confident).float()


class SelfTrainingTask(DetectionTask):
    """:class:`DetectionTask` + a mean teacher labelling the batch's unlabeled samples (module docstring).

    Args (beyond :class:`DetectionTask`):
        unlabeled_weight: ``lambda_u``.
        ema_momentum: ``m`` of the teacher update.
        threshold_init / threshold_min / threshold_max / threshold_momentum: the self-adaptive ``tau``.
        teacher_scales: extra scales the teacher sees (besides 1.0 and its flip), e.g. ``[0.8]`` (each size is
            rounded to a multiple of the encoder's output stride, 32: 0.8 at 320 px = 256 px).
        strong_jitter: (brightness, contrast, saturation, hue) of the strong view; ``strong_gray_p``.
        domain_bn: keep the labeled batches' BatchNorm statistics apart (module docstring).
    """

    def __init__(self, net: nn.Module, loss: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, scheduler_interval: str = "epoch",
                 metrics: Mapping[str, Any] | None = None, log_images: int = 4,
                 param_groups: list[Mapping[str, Any]] | None = None, unlabeled_weight: float = 1.0,
                 ema_momentum: float = 0.999, threshold_init: float = 0.9, threshold_min: float = 0.7,
                 threshold_max: float = 0.98, threshold_momentum: float = 0.999,
                 teacher_scales: Sequence[float] = (0.8,), strong_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.05),
                 strong_gray_p: float = 0.2, domain_bn: bool = False) -> None:
        super().__init__(net, loss, optimizer, scheduler, scheduler_interval, metrics, log_images, param_groups)
        if not 0.0 <= ema_momentum < 1.0:
            raise ValueError(f"model.ema_momentum must be in [0, 1), got {ema_momentum}")
        if not 0.5 <= threshold_min <= threshold_init <= threshold_max <= 1.0:
            raise ValueError("model.threshold_*: need 0.5 <= threshold_min <= threshold_init <= threshold_max <= 1, "
                             f"got {threshold_min}, {threshold_init}, {threshold_max}")
        self.unlabeled_weight, self.ema_momentum = float(unlabeled_weight), float(ema_momentum)
        self.threshold_min, self.threshold_max = float(threshold_min), float(threshold_max)
        self.threshold_momentum = float(threshold_momentum)
        self.teacher_scales = [float(s) for s in teacher_scales]
        self.stride = 32
        self.teacher = copy.deepcopy(net).requires_grad_(False)
        # saved with the checkpoint: a resumed run keeps its teacher and threshold
        self.register_buffer("threshold", torch.tensor(float(threshold_init)))
        self.register_buffer("teacher_ready", torch.tensor(0))
        self.strong = self._strong_view(strong_jitter, strong_gray_p)
        # saved as labeled_bn.*: the labeled domain's statistics (None: one set for both domains)
        self.labeled_bn = DomainBatchNormStatistics(net) if domain_bn else None

    @staticmethod
    def _strong_view(jitter: Sequence[float], gray_p: float) -> nn.Module:
        import kornia.augmentation as K

        b, c, s, h = (float(v) for v in jitter)
        return nn.Sequential(K.ColorJitter(b, c, s, h, p=1.0), K.RandomGrayscale(p=float(gray_p)))

    def on_fit_start(self) -> None:
        if int(self.teacher_ready) == 0:  # a fresh run: the teacher starts as the (initialised) student
            self.teacher.load_state_dict(self.net.state_dict())
            self.teacher_ready.fill_(1)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        ema_update(self.teacher, self.net, self.ema_momentum)

    def _strong(self, image: torch.Tensor) -> torch.Tensor:
        mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        rgb = (image * std + mean).clamp(0, 1)
        return (self.strong(rgb) - mean) / std

    @torch.no_grad()
    def teacher_views(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The teacher's in-focus probabilities on the image, its flip and each rescaled copy, at input size."""
        self.teacher.eval()
        size = image.shape[-2:]
        views = [torch.sigmoid(self.teacher(image)["logits"]),
                 torch.sigmoid(self.teacher(image.flip(-1))["logits"]).flip(-1)]
        for s in self.teacher_scales:  # sizes rounded to the encoder's output stride (32), at least one stride
            hw = [max(self.stride, round(d * s / self.stride) * self.stride) for d in size]
            scaled = F.interpolate(image, size=hw, mode="bilinear", align_corners=False)
            p = torch.sigmoid(self.teacher(scaled)["logits"])
            views.append(F.interpolate(p, size=size, mode="bilinear", align_corners=False))
        return views

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        labeled = batch.get("labeled")
        is_l = labeled.bool() if labeled is not None else torch.ones(batch["image"].shape[0], dtype=torch.bool,
                                                                   device=batch["image"].device)
        terms: dict[str, torch.Tensor] = {}
        total = batch["image"].new_zeros(())
        if is_l.any():
            sub = {k: v[is_l] for k, v in batch.items() if isinstance(v, torch.Tensor) and v.shape[:1] == is_l.shape}
            with self.labeled_bn.swapped() if self.labeled_bn is not None else contextlib.nullcontext():
                out = self.net(sub["image"])
            sup = self.loss(out, sub)
            total = total + sup["loss"]
            terms.update({f"sup_{k}" if k != "loss" else "sup": v for k, v in sup.items()})
        if (~is_l).any():
            image = batch["image"][~is_l]
            views = self.teacher_views(image)
            conf = torch.maximum(views[0], 1 - views[0]).mean()
            m = self.threshold_momentum
            self.threshold.copy_((m * self.threshold + (1 - m) * conf).clamp(self.threshold_min, self.threshold_max))
            pseudo, keep = confident_pseudo_labels(views, float(self.threshold))
            logits = self.net(self._strong(image))["logits"]
            per_pixel = F.binary_cross_entropy_with_logits(logits, pseudo, reduction="none")
            unsup = (per_pixel * keep).mean()
            total = total + self.unlabeled_weight * unsup
            terms.update({"unsup": unsup.detach(), "kept_fraction": keep.mean(), "threshold": self.threshold.clone()})
        terms["loss"] = total
        self.log_train_terms(terms, batch["image"].shape[0])
        return total
