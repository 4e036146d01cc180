"""One plotting theme and one figure-saving function for every notebook."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

# Ours vs the paper's numbers are drawn the same way in every figure.
OURS_STYLE = {"marker": "o", "linestyle": "-"}
PAPER_STYLE = {"marker": "*", "linestyle": "none", "markersize": 12, "color": "black"}
FIGURE_FORMATS = ("png", "svg")


def set_theme() -> None:
    """Seaborn 'whitegrid' with a colourblind palette and sizes readable in the gallery."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                      "axes.titleweight": "bold", "svg.fonttype": "none"})


def save_figure(fig: plt.Figure, stem: str | Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` (folders created); returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, format=fmt)
        paths.append(path)
    return paths
