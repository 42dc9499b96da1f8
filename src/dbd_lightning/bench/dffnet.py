"""DFFNet bench cases: inference (backbone vs decoder, FLOPs, channels-last decoder) and one training step."""

from __future__ import annotations

import torch

from ..utils.timer import measure


def bench_dffnet_infer(encoder: str, size: int = 320, repeats: int = 10) -> dict:
    """Forward time of DFFNet vs its timm backbone alone (batch 1, inference mode)."""

    from torch.utils.flop_counter import FlopCounterMode

    from ..models.dffnet import DFFNet

    net = DFFNet(encoder).eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        feats = net.encoder(x)

        def decoder(model=net):
            r4, r3, r2, r1 = model.rfb_levels(feats)
            return model.decoder(r1, r2, r3, r4)

        full = measure(lambda: net(x), repeats, warmup=2).median
        backbone = measure(lambda: net.encoder(x), repeats, warmup=2).median
        dec = measure(decoder, repeats, warmup=2).median
        # the same weights with model.net.channels_last_decoder=true
        net_cl = DFFNet(encoder, channels_last_decoder=True).eval()
        net_cl.load_state_dict(net.state_dict())
        dec_cl = measure(lambda: decoder(net_cl), repeats, warmup=2).median
        cl_diff = float((net_cl(x)["logits"] - net(x)["logits"]).abs().max())
        with FlopCounterMode(display=False) as backbone_flops:
            net.encoder(x)
        with FlopCounterMode(display=False) as decoder_flops:
            decoder()
    params = sum(p.numel() for p in net.parameters())
    dec_params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("encoder."))
    return {
        "encoder": encoder, "size": size, "batch": 1,
        "ms_per_image": full * 1e3, "images_per_s": 1 / full,
        "backbone_ms": backbone * 1e3, "decoder_ms": dec * 1e3,
        "decoder_over_backbone": dec / backbone,
        "decoder_channels_last_ms": dec_cl * 1e3, "decoder_channels_last_over_backbone": dec_cl / backbone,
        "channels_last_max_abs_diff": cl_diff,
        "backbone_gflops": backbone_flops.get_total_flops() / 1e9,
        "decoder_gflops": decoder_flops.get_total_flops() / 1e9,
        "decoder_over_backbone_flops": decoder_flops.get_total_flops() / backbone_flops.get_total_flops(),
        "params_total_M": params / 1e6, "params_decoder_M": dec_params / 1e6,
    }


def bench_dffnet_train(encoder: str, size: int = 320, batch: int = 6, repeats: int = 3) -> dict:
    """One Adam step of DFFNet with the paper loss (BCE + 0.5 DOF-edge Dice, final + sides)."""
    from ..losses.detection import DeepSupervisionLoss
    from ..losses.dof_edge import DOFEdgeDiceLoss
    from ..models.dffnet import DFFNet

    net = DFFNet(encoder).train()
    loss_fn = DeepSupervisionLoss(DOFEdgeDiceLoss(), edge_weight=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    batch_data = {"image": torch.randn(batch, 3, size, size), "mask": (torch.rand(batch, 1, size, size) > 0.5).float()}

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(batch_data["image"]), batch_data)["loss"].backward()
        opt.step()

    t = measure(step, repeats, warmup=1).median
    return {"encoder": encoder, "size": size, "batch": batch, "ms_per_step": t * 1e3,
            "ms_per_image": t * 1e3 / batch, "images_per_s": batch / t}
