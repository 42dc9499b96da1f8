from .levels import BNET_RADII
from .pipeline import KaraaliPipeline, dbd_threshold
from .torch_model import KARAALI_LEVELS, BNet, ENet, KaraaliStreams, Stream

__all__ = ["BNET_RADII", "BNet", "ENet", "KARAALI_LEVELS", "KaraaliPipeline", "KaraaliStreams", "Stream",
           "dbd_threshold"]
