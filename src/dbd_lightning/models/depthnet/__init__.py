from .torch_model import DepthNet

__all__ = ["DepthNet"]
