"""R-DFFNet (D-DFFNet App. C): DFFNet with depth heads, one-stage response distillation."""

from ..paper import Paper, lazy_exports

PAPER = Paper(
    name="rdffnet",
    title="R-DFFNet (Jin et al. 2023, App. C)",
    presets={"rdffnet": "rdffnet"},
    small_models=("rdffnet",),
    networks={"dbd_lightning.models.rdffnet:RDFFNet": ({"encoder": "resnet18"}, "stride_multiple")},
)

__getattr__ = lazy_exports(__name__, {"RDFFNet": ".torch_model"})
__all__ = ["RDFFNet", "PAPER"]
