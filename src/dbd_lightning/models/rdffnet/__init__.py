from .torch_model import RDFFNet

__all__ = ["RDFFNet"]
