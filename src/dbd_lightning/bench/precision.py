"""Bench case: one training step of a DBD net under each precision / compile setting.

``trainer.precision=bf16-mixed`` is autocast to bfloat16 (CPU and Ampere+ GPUs),
``16-mixed`` is float16 autocast + a loss scaler (GPUs only), ``compile.enabled=true``
is ``nn.Module.compile`` (:mod:`dbd_lightning.utils.compile`). This measures the
same things on a bare training step (forward, deep-supervision loss, backward,
Adam step), so the numbers isolate the switches from Lightning's loop. Settings
the hardware cannot run are reported as skipped, with the reason.
"""

from __future__ import annotations

import torch

from ..utils.timer import measure, once


def _setting_ok(precision: str, device: str) -> str | None:
    if precision == "16-mixed" and device != "cuda":
        return "16-mixed needs a GPU"
    if precision == "bf16-mixed" and device == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16"
    return None


def _train_step(net, loss_fn, opt, x, mask, device: str, dtype, scaler) -> float:
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = loss_fn(net(x), {"mask": mask})["loss"]
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return float(loss.detach())


def bench_train_step(encoder: str = "resnet18", size: int = 128, batch: int = 2, repeats: int = 5,
                     settings: tuple[str, ...] = ("32-true", "bf16-mixed", "16-mixed", "32-true+compile",
                                                  "bf16-mixed+compile")) -> dict:
    """ms per training step of DFFNet(``encoder``) for each ``precision[+compile]`` setting."""
    from ..losses.detection import DeepSupervisionLoss
    from ..losses.dof_edge import DOFEdgeDiceLoss
    from ..models.dffnet import DFFNet

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(batch, 3, size, size, device=device)
    mask = (torch.rand(batch, 1, size, size, device=device) > 0.5).float()
    out: dict = {"encoder": encoder, "size": size, "batch": batch, "device": device, "settings": {}}
    for setting in settings:
        precision, _, comp = setting.partition("+")
        reason = _setting_ok(precision, device)
        if reason:
            out["settings"][setting] = {"skipped": reason}
            continue
        torch.manual_seed(0)
        net = DFFNet(encoder).to(device).train()
        loss_fn = DeepSupervisionLoss(edge_loss=DOFEdgeDiceLoss())
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler(device) if precision == "16-mixed" else None
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
        t_compile = None
        if comp == "compile":
            net.compile()

        def step(net=net, loss_fn=loss_fn, opt=opt, dtype=dtype, scaler=scaler):
            return _train_step(net, loss_fn, opt, x, mask, device, dtype, scaler)

        first_loss, t_first = once(step)  # includes compilation when compiled
        if comp == "compile":
            t_compile = t_first
        out["settings"][setting] = {
            "ms_per_step": 1000 * measure(step, repeats, warmup=1).median,
            "first_step_s": t_first,
            "compile_s": t_compile,
            "first_loss": first_loss,
            "keys_unchanged": not any("_orig_mod" in k for k in net.state_dict()),
        }
    base = out["settings"].get("32-true", {}).get("ms_per_step")
    for s in out["settings"].values():
        if base and "ms_per_step" in s:
            s["speedup_vs_32"] = base / s["ms_per_step"]
    return out
