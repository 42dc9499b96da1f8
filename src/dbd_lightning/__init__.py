"""dbd_lightning: defocus blur detection and estimation with Lightning + Hydra."""
__version__ = "0.1.0"
