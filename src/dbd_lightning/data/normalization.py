"""Input normalisation constants shared by training transforms and inference (no heavy imports).

Inference (:mod:`dbd_lightning.inference`) needs the numbers but not albumentations, which
:mod:`.transforms` imports: a photo predicted with a released model never loads it.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
