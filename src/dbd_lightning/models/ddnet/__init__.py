"""DD (Cun & Pun, ECCV 2020): DDNet (SRFB decoder, SAB, side depth maps) and its converter and bench."""

from ..paper import Paper, lazy_exports

PAPER = Paper(
    name="ddnet",
    title="DD (Cun & Pun, ECCV 2020)",
    presets={"dd": "ddnet_paper", "ddnet": "ddnet_paper"},
    converters={"dd": "dbd_lightning.models.ddnet.convert"},
    bench={
        # forward at the authors' 320 px, encoder vs SRFB decoder, FLOPs, params
        "ddnet_infer_resnext101": ("dbd_lightning.models.ddnet.bench:bench_ddnet_infer",
                                   {"encoder": "resnext101_32x4d", "repeats": 5}, {"repeats": 1, "size": 128}),
        "ddnet_infer_resnet18": ("dbd_lightning.models.ddnet.bench:bench_ddnet_infer",
                                 {"encoder": "resnet18", "repeats": 5}, {"repeats": 1, "size": 128}),
    },
    # DD's notebook (metrics=ddnet): adaptive threshold 1.5 x mean on the in-focus class, pooled F
    metric_conventions={"dd": dict(positive="focus", threshold="adaptive", beta2=0.3, adaptive_factor=1.5,
                                   adaptive_cap=None, strict=True, adaptive_target=True, empty_score=1.0,
                                   mae_averaging="per_image", fbeta_averaging="pooled", iou_averaging="pooled")},
    small_models=("ddnet_small",),
    networks={"dbd_lightning.models.ddnet:DDNet": ({"encoder": "resnet18"}, "any")},
)

__getattr__ = lazy_exports(__name__, {"DDNet": ".torch_model", "SRFB": ".blocks", "SelectiveBlock": ".blocks",
                                      "SideAttention": ".blocks"})
__all__ = ["DDNet", "PAPER", "SRFB", "SelectiveBlock", "SideAttention"]
