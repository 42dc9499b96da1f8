"""What every paper's weight converter shares (``models/<paper>/convert.py``, run by ``python -m
dbd_lightning.convert``): reading an authors' weight file safely (:mod:`.authors_state`), writing a
converted checkpoint atomically and never over a file a converter did not write (:mod:`.output`), and the
converters' error path (:mod:`.errors`). Kept with the papers, below the ``convert`` command, so that a paper's
converter imports no command. Nothing is imported here: :mod:`dbd_lightning.models.registry` imports every
package under ``models/`` when it reads the papers, and that stays free of torch.
"""
