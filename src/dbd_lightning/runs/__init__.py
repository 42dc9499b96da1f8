"""Trained runs and their checkpoints: :mod:`.run` (a run folder + one checkpoint) and :mod:`.resolver`
(the one place that turns ``ckpt=`` / ``run_dir=`` / ``best`` / ``last`` into a file).

Nothing is imported here on purpose: :mod:`dbd_lightning.zoo.registry` builds on :mod:`.run` while
:mod:`.resolver` uses the zoo, and an import in this ``__init__`` would close that loop.
"""
