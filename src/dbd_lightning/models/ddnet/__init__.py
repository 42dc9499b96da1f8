from .blocks import SRFB, SelectiveBlock, SideAttention
from .torch_model import DDNet

__all__ = ["DDNet", "SRFB", "SelectiveBlock", "SideAttention"]
