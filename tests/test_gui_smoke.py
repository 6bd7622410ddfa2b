"""GUI smoke test: probe task, train a tiny row-RNN, explorer data equals the model's trace."""

import numpy as np
import pytest

pytest.importorskip("PySide6")


def test_train_step_explorer_and_close(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNSCOPE_DATA", raising=False)
    from app.main_window import MainWindow
    from app.trace_job import ModelCache

    w = MainWindow()
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.splits is not None, timeout=20000)
    assert w.splits.name == "probe"
    w.model_panel.hidden_spin.setValue(16)
    w.model_panel.epochs_spin.setValue(1)
    w.start_training()
    qtbot.waitUntil(lambda: w.training_panel.steps.n >= 5, timeout=20000)
    qtbot.waitUntil(lambda: not w.is_training(), timeout=30000)
    snap = w.snapshot
    qtbot.waitUntil(lambda: w.explorer.trace is not None
                    and w.explorer.trace["step"] == snap["step"], timeout=20000)
    split, idx = w.explorer.current_choice()
    imageset = getattr(w.splits, split)
    model, norm = ModelCache().model(snap)
    x = model.input_from_images(norm.apply(np.asarray(imageset.images[idx:idx + 1])))
    ref = model.trace(x, np.asarray(imageset.labels[idx:idx + 1]))
    T = ref.hidden.shape[1]
    for t in range(1, T + 1):
        w.explorer.set_frame(t)
        img = w.explorer.heatmap.image_item.image
        np.testing.assert_allclose(img[:, :t], ref.hidden[0, :t].T, rtol=1e-5, atol=1e-6)
        assert np.isnan(img[:, t:]).all()
        _, y = w.explorer.step_probs.curves[0].getOriginalDataset()
        np.testing.assert_allclose(y, ref.step_probs[0, :t, 0], rtol=1e-5, atol=1e-6)
    w.explorer.set_frame(2 * T)
    _, g = w.explorer.grad_norm.curve.getOriginalDataset()
    np.testing.assert_allclose(g, np.linalg.norm(ref.dh[0], axis=1), rtol=1e-4)
    png, csv = w.explorer.grad_frame.export_to(tmp_path / "grad.png")
    assert png.stat().st_size > 0 and csv.read_text().startswith("series,x,y,value")
    w.start_training()
    qtbot.waitUntil(lambda: w.training_panel.steps.n >= 2, timeout=20000)
    assert w.shutdown()
