"""Will one photo fit in memory in predict? Decided from its header, before its pixels are decoded.

predict's memory grows with the photo's pixel count: the decoded uint8 RGB, the float32 focus map
and the tile blending buffers, the PNG encodings (measured: see ``predict.yaml``'s
``memory.bytes_per_pixel`` and the README). A photo whose estimate exceeds the memory still
available (``MemAvailable``, or the cgroup's limit) is refused with :class:`ImageTooLargeError`
naming the file, its size, the estimate and the fix; predict lists it as skipped and goes on
(``strict=true``: exit 2), instead of being killed by the kernel part-way through the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from PIL import Image

from ..utils.errors import ConfigError, UserError

GIB = 2**30


class ImageTooLargeError(UserError, MemoryError):
    """A photo that would not fit in the memory left."""


def header_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header (nothing decoded); EXIF rotation does not change the count."""
    with Image.open(path) as img:
        return img.size


def check_image_memory(path: str | Path, bytes_per_pixel: float, available: int | None) -> int:
    """The estimated bytes predict needs for ``path``; raise :class:`ImageTooLargeError` above ``available``.

    A header that cannot be read is not this check's to report: 0, and the decoder that follows names the
    file as unreadable (one message per bad file, the same with or without this check)."""
    try:
        width, height = header_size(path)
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0
    need = int(width * height * float(bytes_per_pixel))
    if available is not None and need > available:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} ({width * height / 1e6:.0f} MP) needs about {need / GIB:.1f} GiB in predict "
            f"({bytes_per_pixel:g} bytes per pixel, memory.bytes_per_pixel) but only {available / GIB:.1f} GiB is "
            "available: skipped before decoding. Predict a downscaled copy (half the side = a quarter of the memory), "
            "free memory or use a machine with more, or set memory.check=false to try anyway")
    return need


def available_bytes() -> int | None:
    """Memory this process can still take (``MemAvailable``, capped by a cgroup limit); ``None`` if unknown."""
    from omegaconf import OmegaConf

    from ..utils.memory import available_memory

    found = available_memory(OmegaConf.create({"trainer": {"accelerator": "cpu"}}))
    return None if found is None else int(found[0])


def memory_guard(settings: Mapping | None) -> Callable[[str | Path], object]:
    """The per-photo check of predict's ``memory:`` block (a no-op with ``check: false``); a bad value
    raises :class:`~dbd_lightning.utils.errors.ConfigError` naming the key."""
    settings = dict(settings or {})
    check, bpp = settings.get("check", True), settings.get("bytes_per_pixel", 16)
    if not isinstance(check, bool):
        raise ConfigError(f"memory.check={check!r} is not valid: use memory.check=true or memory.check=false")
    if isinstance(bpp, bool) or not isinstance(bpp, int | float) or bpp <= 0:
        raise ConfigError(f"memory.bytes_per_pixel={bpp!r} is not valid: it must be a number > 0 "
                          "(predict's memory per pixel of a photo, e.g. memory.bytes_per_pixel=16)")
    if not check:
        return lambda path: None
    return lambda path: check_image_memory(path, float(bpp), available_bytes())
