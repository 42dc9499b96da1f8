"""D-DFFNet (Jin et al., 2023): depth- and defocus-distilled DFFNet, and its R-DFFNet variant.

The networks are ``models/dffnet`` (student and stage-1 model), ``models/pdnet`` (Table IV's
second student) and ``models/rdffnet`` (App. C). This folder holds the rest of the paper:
the stage-2 distillation task (:mod:`.task`) and the depth teacher's task (:mod:`.depth_task`), the
distillation callback, its frozen teachers, projectors and beta schedules, the
feature and depth losses, the offline depth teacher network and the converter of the
authors' weights. See README.md next to this file. Nothing is imported here, so that
importing one module (e.g. the converter) stays light.
"""
