from .torch_model import DFFNet

__all__ = ["DFFNet"]
