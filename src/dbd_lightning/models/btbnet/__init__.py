"""BTBNet family (Zhao et al., CVPR 2018): multi-stream bottom-top-bottom FCN, FNet, RRNet."""

from ..paper import Paper, lazy_exports

PAPER = Paper(
    name="btbnet",
    title="BTBNet (Zhao et al., CVPR 2018)",
    presets={"btbnet": "btbnet_paper"},
    bench={
        # full model (3S + FNet + RRNet x3, paper widths), one SGD step at 320 px, batch 1
        "btbnet_train_320": ("dbd_lightning.models.btbnet.bench:bench_btbnet_step", {"size": 320}, {"size": 64}),
    },
    # BTBNet's tables: adaptive threshold 1.5 x mean on the blur class, per-image averages
    metric_conventions={"btbnet": dict(positive="blur", threshold="adaptive", beta2=0.3, adaptive_factor=1.5,
                                       adaptive_cap=None, strict=False, adaptive_target=False, empty_score=1.0,
                                       mae_averaging="per_image", fbeta_averaging="per_image",
                                       iou_averaging="per_image")},
    small_models=("btbnet_small",),
    networks={"dbd_lightning.models.btbnet:BTBNet": ({"widths": (8,) * 5, "ffic_channels": (8, 8, 8, 1)}, "any")},
)

_NAMES = ["VGG16_DEPTHS", "VGG16_WIDTHS", "BTBNet", "BTBStream", "MapRefiner", "TopBottom", "VGGTrunk"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(_NAMES, ".torch_model"))
__all__ = ["PAPER", *_NAMES]
