"""Karaali, Harte & Jung: edge-based blur estimation (B-NET, E-NET, domain-transform propagation)."""

from ..paper import Paper, lazy_exports

_PIPELINE = ("Karaali et al.'s whole estimation pipeline is not trained as one network: train its networks "
             "with model=karaali_bnet, then model=karaali_enet model.bnet_ckpt=<B-NET checkpoint>; "
             "run the pipeline with python -m dbd_lightning.predict model={option} input=... output=...")
_BENCH = "dbd_lightning.models.karaali.bench:bench_pipeline"

PAPER = Paper(
    name="karaali",
    title="Karaali, Harte & Jung (edge-based blur estimation)",
    presets={"karaali_bnet": "karaali_bnet", "karaali_enet": "karaali_enet"},
    converters={"karaali": "dbd_lightning.models.karaali.convert"},
    bench={
        # full pipeline s / image at the Lytro size 360x360 (paper: 4.55 s, Python/GPU), DT filter alone
        "karaali_pipeline_360": (_BENCH, {"repeats": 3}, {"repeats": 1, "size": 96}),
        "karaali_pipeline_360_bf16": (_BENCH, {"repeats": 3, "precision": "bfloat16"},
                                      {"repeats": 1, "size": 96, "precision": "bfloat16"}),
        # wide_stride=3: the 41/27 streams at their native stride (an approximation, see the README)
        "karaali_pipeline_360_wide_stride3": (_BENCH, {"repeats": 3, "wide_stride": 3},
                                              {"repeats": 1, "size": 96, "wide_stride": 3}),
        "karaali_pipeline_360_per_cell": (_BENCH, {"repeats": 3, "wide_stride": 3, "per_cell": True},
                                          {"repeats": 1, "size": 96, "wide_stride": 3, "per_cell": True}),
        "dt_filter_360": ("dbd_lightning.models.karaali.bench:bench_dt_filter", {"repeats": 10}, {"repeats": 2}),
        # the same on one thread (robust on a shared machine: spinning OpenMP threads inflate 2-thread numbers)
        "karaali_pipeline_360_1thread": (_BENCH, {"repeats": 3, "threads": 1},
                                         {"repeats": 1, "size": 96, "threads": 1}),
        "karaali_pipeline_360_bf16_1thread": (_BENCH, {"repeats": 3, "threads": 1, "precision": "bfloat16"},
                                              {"repeats": 1, "size": 96, "threads": 1, "precision": "bfloat16"}),
        "dt_filter_360_1thread": ("dbd_lightning.models.karaali.bench:bench_dt_filter", {"repeats": 10, "threads": 1},
                                  {"repeats": 2, "threads": 1}),
    },
    predicts="blur_radius",
    pipelines={o: _PIPELINE.format(option=o) for o in ("karaali", "karaali_authors_code")},
    train_advice="the B-NET trains with model=karaali_bnet (data=karaali_bnet_patches), the E-NET with "
                 "model=karaali_enet (data=karaali_enet_patches); the pipeline runs with "
                 "python -m dbd_lightning.predict model=karaali",
    data_serves={"dbd_lightning.models.karaali.patches.KaraaliPatchDataModule": "edge_patches"},
    edge_maps="dbd_lightning.models.karaali.edge_maps",
)

_NAMES = {"BNET_RADII": ".levels", "KaraaliPipeline": ".pipeline", "dbd_threshold": ".pipeline",
          "KARAALI_LEVELS": ".torch_model", "BNet": ".torch_model", "ENet": ".torch_model",
          "KaraaliStreams": ".torch_model", "Stream": ".torch_model"}
__getattr__ = lazy_exports(__name__, _NAMES)
__all__ = ["PAPER", *_NAMES]
