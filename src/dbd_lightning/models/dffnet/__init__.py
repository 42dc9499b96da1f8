"""DFFNet (Jin et al. 2023, stage 1 of D-DFFNet): the network; the paper's recipe is ``models/ddffnet``."""

from ..paper import Paper, lazy_exports

PAPER = Paper(
    name="dffnet",
    title="DFFNet (Jin et al. 2023, D-DFFNet stage 1)",
    bench={
        "dffnet_infer_resnest101e": ("dbd_lightning.bench.dffnet:bench_dffnet_infer",
                                     {"encoder": "resnest101e", "repeats": 10}, {"repeats": 3}),
        "dffnet_infer_resnet18": ("dbd_lightning.bench.dffnet:bench_dffnet_infer",
                                  {"encoder": "resnet18", "repeats": 10}, {"repeats": 3}),
        "dffnet_train_resnest101e": ("dbd_lightning.bench.dffnet:bench_dffnet_train",
                                     {"encoder": "resnest101e", "repeats": 3}, {"repeats": 1}),
        "dffnet_train_resnet18": ("dbd_lightning.bench.dffnet:bench_dffnet_train",
                                  {"encoder": "resnet18", "repeats": 3}, {"repeats": 1}),
    },
    small_models=("dffnet_small",),
    networks={"dbd_lightning.models.dffnet:DFFNet": ({"encoder": "resnet18"}, "stride_multiple")},
)

__getattr__ = lazy_exports(__name__, {"DFFNet": ".torch_model"})
__all__ = ["DFFNet", "PAPER"]
