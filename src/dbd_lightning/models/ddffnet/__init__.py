"""D-DFFNet (Jin et al. 2023): its stage-2 distillation task and the depth teacher's task.

The networks are DFFNet (:mod:`..dffnet`) and the depth net (:mod:`..depthnet`); see README.md.
The tasks are imported from their modules (:mod:`.task`, :mod:`.depth_task`), not here, so that
importing the package does not import Lightning.
"""
