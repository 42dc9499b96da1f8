"""PDNet (D-DFFNet Table IV's second student): the network."""

from ..paper import Paper, lazy_exports

PAPER = Paper(
    name="pdnet",
    title="PDNet (Jin et al. 2023, Table IV)",
    small_models=("pdnet_small",),
    networks={"dbd_lightning.models.pdnet:PDNet": ({"encoder": "resnet18"}, "stride_multiple")},
)

__getattr__ = lazy_exports(__name__, {"PDNet": ".torch_model"})
__all__ = ["PDNet", "PAPER"]
