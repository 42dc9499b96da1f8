"""Evaluation reports: comparison tables (Markdown / CSV / LaTeX), PR curves, qualitative grids,
saved prediction maps of other methods as an evaluation source."""

from .evaluate import EvalResult, evaluate_sources
from .plots import plot_pr_curves, qualitative_grid
from .saved_maps import SavedMaps, read_map
from .tables import csv_table, latex_table, markdown_table

__all__ = [
    "EvalResult",
    "SavedMaps",
    "csv_table",
    "evaluate_sources",
    "latex_table",
    "markdown_table",
    "plot_pr_curves",
    "qualitative_grid",
    "read_map",
]
