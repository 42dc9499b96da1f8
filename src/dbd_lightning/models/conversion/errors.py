"""The converters' error path: bad input is one paragraph naming the file and the fix, exit 2.

:class:`ConvertError` is a :class:`~dbd_lightning.utils.errors.UserError`; the dispatcher
(``python -m dbd_lightning.convert``) runs every converter inside :func:`input_errors`, which also
turns the plain exceptions a converter raises about its *input files* (a missing ``.mat`` file, an
array of the wrong shape, a ``.mat`` without the ``weights`` variable) into that style. The traceback
is shown only with ``HYDRA_FULL_ERROR=1`` (:mod:`dbd_lightning.utils.errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ...utils.errors import UserError

#: the advice that ends a message about an unusable source file
SOURCE_FIX = ("give the authors' released weight file as SRC (python -m dbd_lightning.convert -h lists the "
              "families; each family's -h names its files)")


class ConvertError(UserError, ValueError):
    """A source file the converter cannot use, or a destination it must not overwrite."""


@contextlib.contextmanager
def input_errors(family: str) -> Iterator[None]:
    """Exceptions about input files raised inside a converter become :class:`ConvertError` (exit 2)."""
    try:
        yield
    except UserError:
        raise
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        name = getattr(exc, "filename", None) or str(exc)
        raise ConvertError(f"convert {family}: {name}: {exc.strerror or exc}; check the path, {SOURCE_FIX}") from exc
    except (ValueError, KeyError) as exc:  # the converters' messages name the file (karaali's .mat reader)
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise ConvertError(f"convert {family}: {text}; {SOURCE_FIX}") from exc
