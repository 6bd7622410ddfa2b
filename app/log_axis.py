"""A log-scale axis that labels only whole decades (1, 0.1, 10⁻³ …).

pyqtgraph labels the minor ticks (2·10⁻³, 3·10⁻³ …) of a log axis whenever the range is short,
and the labels pile on top of each other; here minor ticks keep their tick marks but get no
text. Plots using this axis should show at least one decade (see ``decade_range``).
"""

from __future__ import annotations

import math

import pyqtgraph as pg

_SUPER = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(exponent: int) -> str:
    """10**exponent as a short label: 1, 10, 0.1, 0.01, else 10ⁿ."""
    if -2 <= exponent <= 1:
        return f"{10.0 ** exponent:g}"
    return "10" + str(exponent).translate(_SUPER)


def decade_range(lo: float, hi: float, pad: float = 0.3) -> tuple[float, float]:
    """log10 view range for positive data in [lo, hi]: padded and at least one decade wide."""
    a, b = math.log10(lo) - pad, math.log10(hi) + pad
    if b - a < 1.2:
        mid = (a + b) / 2
        a, b = mid - 0.6, mid + 0.6
    return a, b


class DecadeLogAxis(pg.AxisItem):
    """Use as ``axisItems={'left': DecadeLogAxis('left')}`` with ``setLogMode(y=True)``."""

    def logTickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            e = round(float(v))
            out.append(decade_label(e) if abs(float(v) - e) < 1e-6 else "")
        return out
