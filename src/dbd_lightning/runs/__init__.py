"""Trained runs and their checkpoints: :mod:`.run` (a run folder + one checkpoint), :mod:`.released` (a released
model as a checkpoint) and :mod:`.resolver` (the one place that turns ``ckpt=`` / ``run_dir=`` / ``best`` /
``last`` / ``zoo:<name>`` into a file); :mod:`.resume` (continuing a run), :mod:`.run_meta` (the run record in
each checkpoint), :mod:`.renames` (names moved since a run was saved), :mod:`.task_builder` (a train config's
task, started from ``model.net.init_ckpt``).

Nothing is imported here: eval, predict and export import only the modules they use (no Lightning).
:mod:`dbd_lightning.zoo` builds on this folder; nothing here imports the zoo.
"""
