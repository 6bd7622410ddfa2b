"""The clip record of one gradient: its global norm against the threshold, and per parameter
the norm before/after clipping and what clipping did to it.

Norm clipping rescales the whole gradient when its global norm exceeds the threshold: every
parameter is multiplied by the same factor threshold / norm, no element is set to anything
else, so the last column shows that factor ("x0.19"). Value clipping cuts each element to
[-threshold, threshold], so only some elements change and the direction can turn (cosine < 1);
there the last column is the share of elements that were cut.

In the explorer the record is of one image's gradient (its own loss), which is typically much
larger than the batch-mean gradient that training clips: the scope note under the table says so.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.plot_export import write_csv
from app.plot_style import BAD, GOOD, reserve_wrapped_height


def _g(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.3e}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4) else f"{v:.4g}"


class ClipView(QtWidgets.QWidget):
    """``set_record(clip_dict)`` with ``ClipRecord.to_dict()`` (or None to clear)."""

    COLUMNS = ["parameter", "‖g‖ before", "‖g‖ after", "% clipped"]
    HEADERS = ["param", "before", "after"]   # short: the columns fit a narrow window
    LAST_COLUMN = {"norm": "scaled", "value": "% clipped", "none": "change"}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("clipView")
        self.record: dict | None = None
        self.summary = QtWidgets.QLabel("No gradient yet: pick an image and train or load a model.")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("clipSummary")
        self.bar = QtWidgets.QProgressBar()
        self.bar.setObjectName("clipBar")
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setMaximumHeight(16)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
        hh = self.table.horizontalHeader()
        # every column as wide as its widest cell; spare room goes to the parameter names
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        hh.setStretchLastSection(True)
        hh.setMinimumSectionSize(30)
        hh.setToolTip("‖g‖ before / after: the parameter's gradient norm before and after "
                      "clipping")
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setMinimumHeight(4 * (self.fontMetrics().height() + 6))
        self.scope = QtWidgets.QLabel("")
        self.scope.setObjectName("clipScopeNote")
        self.scope.setWordWrap(True)
        self.scope.setVisible(False)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self.bar)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.scope)

    def set_scope(self, text: str):
        """A note on whose gradient this is (empty hides it)."""
        self.scope.setText(text)
        self.scope.setVisible(bool(text))
        self._reserve()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._reserve()

    def _reserve(self):
        for label in (self.summary, self.scope):
            reserve_wrapped_height(label, self.width())

    @staticmethod
    def scale_factor(rec: dict) -> float:
        """What norm clipping multiplied every parameter's gradient by (1 when it did not fire)."""
        before, after = rec.get("norm_before"), rec.get("norm_after")
        try:
            before, after = float(before), float(after)
        except (TypeError, ValueError):
            return 1.0
        return after / before if before > 0 and rec.get("fired") else 1.0

    def set_record(self, rec: dict | None):
        self.record = rec
        if not rec:
            self.summary.setText("No gradient yet.")
            self.table.setRowCount(0)
            self.bar.setVisible(False)
            return
        mode = rec.get("mode", "none")
        thr = rec.get("threshold")
        before, after = rec.get("norm_before"), rec.get("norm_after")
        fired = bool(rec.get("fired"))
        if mode == "none":
            text = (f"Clipping is off. Global gradient norm {_g(before)} "
                    "(it is applied as it is).")
        elif mode == "norm":
            factor = self.scale_factor(rec)
            verdict = (f"<b style='color:{BAD}'>scaled x{factor:.2g}</b> (every parameter, "
                       f"to norm {_g(after)}; no element zeroed)"
                       if fired else f"<b style='color:{GOOD}'>not clipped</b>")
            text = f"Global norm {_g(before)} vs threshold {_g(thr)} → {verdict}."
        else:
            verdict = (f"<b style='color:{BAD}'>CLIPPED</b> (direction cosine "
                       f"{_g(rec.get('cosine'))})" if fired
                       else f"<b style='color:{GOOD}'>no element clipped</b>")
            text = (f"Each element cut to ±{_g(thr)}; global norm {_g(before)} → {_g(after)}: "
                    f"{verdict}.")
        self.summary.setText(text)
        self._reserve()
        if mode == "norm" and thr:
            frac = min(1.0, float(before) / (2 * float(thr)))
            self.bar.setValue(int(frac * 1000))
            self.bar.setFormat(f"norm {_g(before)} (threshold {_g(thr)} = half bar)")
        else:
            self.bar.setValue(0)
            self.bar.setFormat("")
        self.bar.setVisible(mode == "norm")
        color = BAD if fired else GOOD
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {color}; }}")
        per = rec.get("per_param", {}) or {}
        columns = self.COLUMNS[:-1] + [self.LAST_COLUMN.get(mode, self.COLUMNS[-1])]
        self.table.setHorizontalHeaderLabels(self.HEADERS + columns[-1:])
        self.table.setRowCount(len(per))
        for i, (name, d) in enumerate(per.items()):
            frac = float(d.get("fraction_clipped", 0.0) or 0.0)
            if mode == "norm":
                last = f"x{self.scale_factor(rec):.2g}" if fired else "x1"
            elif mode == "value":
                last = f"{frac:.1%}"
            else:
                last = "none"
            cells = [name, _g(d.get("norm_before")), _g(d.get("norm_after")), last]
            for j, c in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(c)
                if j:
                    item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
                if fired and (frac > 0 or mode == "norm"):
                    item.setForeground(QtGui.QColor(BAD))
                item.setToolTip(f"{name}: {columns[j]} = {c}")
                self.table.setItem(i, j, item)

    def export_rows(self):
        """CSV rows for plot_export: (parameter or 'global', quantity, '', value)."""
        rec = self.record or {}
        for key in ("mode", "threshold", "norm_before", "norm_after", "fired", "cosine"):
            if key in rec:
                yield ["global", key, "", f"{rec[key]}"]
        if rec.get("mode") == "norm":
            yield ["global", "scale_factor", "", f"{self.scale_factor(rec)}"]
        for name, d in (rec.get("per_param") or {}).items():
            yield [name, "norm_before", "", f"{d.get('norm_before')}"]
            yield [name, "norm_after", "", f"{d.get('norm_after')}"]
            yield [name, "fraction_clipped", "", f"{d.get('fraction_clipped')}"]

    def export_csv(self, path):
        return write_csv(self.export_rows(), path)
