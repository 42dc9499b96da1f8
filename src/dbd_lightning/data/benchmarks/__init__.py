"""Real DBD benchmarks (CUHK, DUT, CTCUG, EBD, Lytro) in their published layouts.

See ``src/dbd_lightning/data/README.md`` for the canonical layout under
``data.root``, each dataset's GT polarity and published counts.
"""

from .base import BenchmarkFolder, natural_key
from .cuhk import CUHK
from .folders import CTCUG, DUT, EBD
from .lytro import BlurConversion, Lytro, read_blur_map, read_conversion_table

#: canonical sub-folder of ``data.root`` per benchmark
CANONICAL_DIRS = {"cuhk": "CUHK", "dut": "DUT", "ctcug": "CTCUG", "ebd": "EBD", "lytro": "Lytro"}

__all__ = ["CANONICAL_DIRS", "CTCUG", "CUHK", "DUT", "EBD", "BenchmarkDataModule", "BenchmarkFolder",
           "BlurConversion", "Lytro", "natural_key", "read_blur_map", "read_conversion_table"]


def __getattr__(name: str):
    """``BenchmarkDataModule`` (Lightning) loads on first use: ``data.prepare`` / ``data.check`` need none of it."""
    if name == "BenchmarkDataModule":
        from .datamodule import BenchmarkDataModule

        return BenchmarkDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
