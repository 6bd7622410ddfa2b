"""The narration's fixed height holds its three lines as the label draws them (rich text, with
the window's style sheet), not only as the font's line spacing counts them."""

from PySide6 import QtWidgets

from app.explorer_panel import NARRATION_LINES


def test_three_lines_of_rich_narration_fit_once_the_window_is_shown(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    w.tabs.setCurrentWidget(w.explorer)
    qtbot.waitExposed(w)
    QtWidgets.QApplication.processEvents()
    n = w.explorer.narration
    n.setText("<br>".join([f"<b>Backward, step {i}:</b> ||dl/dh<sub>{i}</sub>|| = 1.0e-03"
                           for i in range(NARRATION_LINES)]))
    assert n.heightForWidth(n.width()) <= n.height()
    assert w.shutdown()
