from .torch_model import PDNet

__all__ = ["PDNet"]
