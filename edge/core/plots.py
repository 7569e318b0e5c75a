"""gedge's charts: matplotlib on its Agg backend (no display, no GUI toolkit), one style for the training curve
and the evaluation report, and a figure as PNG bytes.

matplotlib is optional (the ``report`` extra): :func:`pyplot` loads it through :func:`gedge.core.optional.require`,
so a missing install is one line with the ``pip install`` to run. :func:`can_plot` says whether it is here.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any

from gedge.core.optional import available, require

# Colour-blind-safe (Okabe-Ito): normal images are blue, defective ones vermillion; lines of several series cycle.
NORMAL = "#0072B2"
DEFECTIVE = "#D55E00"
THRESHOLD = "#000000"
SERIES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#999999")
STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e4e4",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def can_plot() -> bool:
    """Whether matplotlib is installed here."""
    return available("matplotlib")


def pyplot(purpose: str = "charts") -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend with gedge's style; ConfigError with the install line if missing."""
    matplotlib = require("matplotlib", purpose)
    matplotlib.use("Agg", force=True)
    plt = require("matplotlib.pyplot", purpose)
    plt.rcParams.update({**STYLE, "axes.prop_cycle": matplotlib.cycler(color=list(SERIES))})
    return plt


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open figure otherwise)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    require("matplotlib.pyplot").close(figure)
    return buffer.getvalue()
