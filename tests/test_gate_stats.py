"""core.gate_stats (saturation fractions, memory lengths) and the CNN+RNN's 'positions' bands
in core.timesteps."""

import numpy as np
import pytest

from core.gate_stats import KEEP_GATE, SIGMOID_GATES, gate_stats, memory_length, saturation
from core.timesteps import CNN_STACK_LAYERS, measured_factors, receptive_rows, step_bands


def test_saturation_counts_each_unit_over_images_and_steps():
    g = np.full((2, 5, 3), 0.5)
    g[0, :, 0] = 0.05          # unit 0: shut in half of the 10 pairs
    g[:, :, 1] = 0.95          # unit 1: open in all of them
    g[1, 0, 2] = 0.1           # exactly at the threshold counts as neither
    g[1, 1, 2] = 0.0
    left, right = saturation(g)
    np.testing.assert_allclose(left, [0.5, 0.0, 0.1])
    np.testing.assert_allclose(right, [0.0, 1.0, 0.0])
    with pytest.raises(ValueError):
        saturation(g[0])


def test_memory_length_is_the_mean_lifetime_of_a_geometric_decay():
    np.testing.assert_allclose(memory_length([0.0, 0.5, 0.9]), [1.0, 2.0, 10.0])
    assert np.isinf(memory_length([1.0])[0])
    # the mean lifetime: sum over s >= 0 of k^s
    k = 0.8
    assert memory_length([k])[0] == pytest.approx(sum(k ** s for s in range(2000)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_stats_of_a_real_cell(cell):
    from core import gru_layers, init, lstm_layers

    rng = np.random.default_rng(0)
    N, T, D, H = 4, 9, 5, 6
    x = rng.normal(size=(T, N, D)) * 3
    if cell == "lstm":
        p = init.lstm_params(rng, D, H, np.float64)
        _, cache = lstm_layers.lstm_forward_tm(x, None, p["W_xh"], p["W_hh"], p["b_h"])
        gates = {k: cache["gates"][:, i].transpose(1, 0, 2)
                 for i, k in enumerate(lstm_layers.BLOCKS)}
    else:
        p = init.gru_params(rng, D, H, np.float64)
        _, cache = gru_layers.gru_forward_tm(x, None, p["W_xh"], p["W_hh"], p["b_h"])
        gates = {k: cache["gates"][:, i].transpose(1, 0, 2)
                 for i, k in enumerate(gru_layers.BLOCKS)}
    st = gate_stats(cell, gates)
    assert tuple(st.left) == SIGMOID_GATES[cell] == tuple(st.right)
    for name in SIGMOID_GATES[cell]:
        assert st.left[name].shape == (H,) and st.right[name].shape == (H,)
        assert np.all(st.left[name] + st.right[name] <= 1.0)
        assert st.left[name][0] == np.mean(gates[name][:, :, 0] < 0.1)
    keep = gates[KEEP_GATE[cell]]
    np.testing.assert_allclose(st.keep_mean, keep.mean(axis=(0, 1)))
    np.testing.assert_allclose(st.memory_steps, 1 / (1 - keep.mean(axis=(0, 1))))
    assert st.samples == N * T
    d = st.to_dict()
    d["left"][SIGMOID_GATES[cell][0]][0] = 7.0    # a copy: the stats are unchanged
    assert st.left[SIGMOID_GATES[cell][0]][0] != 7.0
    with pytest.raises(ValueError):
        gate_stats("rnn", gates)
    with pytest.raises(ValueError):
        gate_stats(cell, {})


def test_position_bands_are_square_patches_in_raster_order():
    pos = step_bands("cnn-rnn", 32, sequence="positions")
    assert pos.rows.shape == pos.cols.shape == (64, 2) and pos.rows_per_step == 4
    t = 8 * 2 + 5                                  # map row 2, column 5
    assert tuple(pos.rows[t]) == (8, 11) and tuple(pos.cols[t]) == (20, 23)
    assert tuple(pos.map_rows[t]) == (2, 2) and tuple(pos.map_cols[t]) == (5, 5)
    assert tuple(pos.seen[t]) == receptive_rows(CNN_STACK_LAYERS, 2, 32) == (5, 14)
    assert tuple(pos.seen_cols[t]) == receptive_rows(CNN_STACK_LAYERS, 5, 32) == (17, 26)
    # the first step of each map row starts at the left edge, one band lower
    np.testing.assert_array_equal(pos.cols[::8, 0], 0)
    np.testing.assert_array_equal(pos.rows[::8, 0], np.arange(0, 32, 4))


def test_row_bands_keep_their_meaning_and_span_every_column():
    rows = step_bands("cnn-rnn", 32)
    pos = step_bands("cnn-rnn", 32, sequence="positions")
    np.testing.assert_array_equal(rows.rows, pos.rows[::8])
    np.testing.assert_array_equal(rows.seen, pos.seen[::8])
    np.testing.assert_array_equal(rows.cols, np.tile([0, 31], (8, 1)))
    np.testing.assert_array_equal(rows.map_cols, np.tile([0, 7], (8, 1)))
    np.testing.assert_array_equal(rows.map_rows[:, 0], np.arange(8))
    row = step_bands("row-rnn", 32)
    np.testing.assert_array_equal(row.cols, np.tile([0, 31], (32, 1)))
    with pytest.raises(ValueError):
        step_bands("row-rnn", 32, sequence="positions")
    with pytest.raises(ValueError):
        step_bands("cnn-rnn", 32, sequence="columns")


def test_measured_factors_are_the_ratio_of_consecutive_norms():
    dh = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 10.0], [0.0, 20.0]])
    m = measured_factors(dh, bptt_cut=1)
    assert np.isnan(m[0]) and np.isnan(m[1])       # t = 0; and step 1 leads to the cut
    np.testing.assert_allclose(m[2:], [0.5, 0.5])
    np.testing.assert_allclose(measured_factors(dh)[1:], [0.0, 0.5, 0.5])
