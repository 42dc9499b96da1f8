"""BTBNet family (Zhao et al., CVPR 2018): multi-stream bottom-top-bottom FCN, FNet, RRNet."""

from .torch_model import VGG16_DEPTHS, VGG16_WIDTHS, BTBNet, BTBStream, MapRefiner, TopBottom, VGGTrunk

__all__ = ["BTBNet", "BTBStream", "MapRefiner", "TopBottom", "VGGTrunk", "VGG16_DEPTHS", "VGG16_WIDTHS"]
