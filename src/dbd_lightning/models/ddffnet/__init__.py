"""D-DFFNet (Jin et al., 2023): depth- and defocus-distilled DFFNet, and its R-DFFNet variant.

The networks are ``models/dffnet`` (student and stage-1 model), ``models/pdnet`` (Table IV's
second student) and ``models/rdffnet`` (App. C). This folder holds the rest of the paper:
the stage-2 distillation task (:mod:`.task`) and the depth teacher's task (:mod:`.depth_task`), the
distillation callback, its frozen teachers, projectors and beta schedules, the
feature and depth losses, the offline depth teacher network and the converter of the
authors' weights. See README.md next to this file. Nothing but the declaration is imported here, so
that importing one module (e.g. the converter) stays light.
"""

from ..paper import Paper

PAPER = Paper(
    name="ddffnet",
    title="D-DFFNet (Jin et al. 2023)",
    presets={"ddffnet": "ddffnet_paper", "d-dffnet": "ddffnet_paper"},
    converters={f: "dbd_lightning.models.ddffnet.convert" for f in ("ddffnet", "dffnet", "pdnet")},
    # D-DFFNet's tables: fixed 0.5 threshold on the blur class, per-image MAE and F, pooled IoU
    metric_conventions={"ddffnet": dict(positive="blur", threshold=0.5, beta2=0.3, adaptive_factor=1.5,
                                        adaptive_cap=1.0, strict=False, adaptive_target=False, empty_score=1.0,
                                        mae_averaging="per_image", fbeta_averaging="per_image",
                                        iou_averaging="pooled")},
    networks={"dbd_lightning.models.ddffnet.depth_net:DepthNet": ({"encoder": "resnet18"}, "any")},
)
