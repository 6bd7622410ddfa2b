"""Connectivity: d logit_k / d input for both models and every registered cell, checked against
centred differences in float64; the row / pixel reductions and the cue-band mass."""

import numpy as np
import pytest
from gradcheck import numeric_grad, random_indices, rel_error

from core.cells import CELLS
from core.connectivity import (
    band_mass,
    connectivity,
    conv_stack_input_backward,
    cue_band_summary,
    input_gradient_images,
)
from core.conv import conv_stack_forward
from core.errors import ConfigError
from core.models import CNNRNN, RowRNN

# the gated cells are listed even where they are not registered yet: their tests then skip
CELL_NAMES = sorted(set(CELLS) | {"lstm", "gru"})


def _need(cell):
    if cell not in CELLS:
        pytest.skip(f"cell {cell!r} is not registered in core.cells.CELLS on this branch")


def _row_model(cell, activation="tanh", init="xavier"):
    return RowRNN(input_dim=96, hidden_dim=7, num_classes=5, cell=cell, activation=activation,
                  init=init, dtype=np.float64, seed=3)


def _cnn_model(cell):
    return CNNRNN(channels=(3, 4), hidden_dim=6, num_classes=5, cell=cell, dtype=np.float64,
                  seed=4)


def _logit_check(model, images, k, rng, count=40, floor=1e-8):
    """Analytic vs numeric gradient of scores[0, k] w.r.t. image 0's values (relative error
    with ``floor`` under the denominator: centred differences are noise below ~1e-11)."""
    grad, scores, _ = input_gradient_images(model, images, np.array([k]))
    x = images.copy()

    def logit():
        return model.scores(model.input_from_images(x))[0, k]

    assert np.isclose(scores[0, k], logit())
    idx = random_indices(x.shape, count, rng)
    num = numeric_grad(logit, x, h=1e-5, idx=idx)
    assert rel_error(grad, num, floor=floor) < 1e-5
    return grad


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("activation, init", [("tanh", "xavier"), ("relu", "identity")])
def test_row_rnn_logit_gradient_matches_centred_differences(cell, activation, init):
    if cell != "rnn" and activation != "tanh":
        pytest.skip("the activation option is the vanilla cell's")
    _need(cell)
    rng = np.random.default_rng(0)
    model = _row_model(cell, activation, init)
    images = 0.3 * rng.standard_normal((1, 32, 32, 3))  # tanh unsaturated: row 0 gets ~1e-3
    grad = _logit_check(model, images, k=2, rng=rng)
    # every row is checked, the first ones included: 40 random entries may miss them
    num = numeric_grad(lambda: model.scores(model.input_from_images(images))[0, 2], images,
                       idx=[(0, 0, w, c) for w in range(0, 32, 7) for c in range(3)])
    assert rel_error(grad, num) < 1e-5  # entries of ~1e-5: centred-difference noise ~1e-11


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cnn_rnn_logit_gradient_reaches_the_pixels_exactly(cell):
    _need(cell)
    rng = np.random.default_rng(1)
    model = _cnn_model(cell)
    images = 0.3 * rng.standard_normal((1, 32, 32, 3))
    _logit_check(model, images, k=4, rng=rng)


def test_conv_stack_input_backward_matches_centred_differences_over_chunks():
    """Several images in chunks of 2: each chunk's pool choices route its own gradient."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 8, 8, 3))
    w1, b1 = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((3, 3, 4, 2)), rng.standard_normal(2)
    out, cache = conv_stack_forward(x, w1, b1, w2, b2, chunk=2)
    dout = rng.standard_normal(out.shape)
    dx = conv_stack_input_backward(dout, cache)
    num = numeric_grad(lambda: np.sum(conv_stack_forward(x, w1, b1, w2, b2)[0] * dout), x,
                       idx=random_indices(x.shape, 60, rng))
    assert rel_error(dx, num) < 1e-6


def test_reductions_and_default_class():
    rng = np.random.default_rng(5)
    model = _row_model("rnn")
    images = rng.standard_normal((3, 32, 32, 3))
    c = connectivity(model, images)
    predicted = np.argmax(model.scores(model.input_from_images(images)), axis=1)
    np.testing.assert_array_equal(c["classes"], predicted)
    np.testing.assert_allclose(c["rows"], np.sqrt((c["grad"] ** 2).sum(axis=(2, 3))))
    np.testing.assert_allclose(c["pixels"], np.sqrt((c["grad"] ** 2).sum(axis=3)))
    np.testing.assert_allclose(c["steps"], c["rows"])  # row-RNN: a step is an image row
    # the images are independent: image 1's gradient alone equals its row in the batch
    alone = connectivity(model, images[1:2], c["classes"][1:2])
    np.testing.assert_allclose(alone["grad"][0], c["grad"][1], rtol=1e-10, atol=1e-14)


def test_cnn_steps_are_the_feature_map_rows():
    model = _cnn_model("rnn")
    c = connectivity(model, np.random.default_rng(6).standard_normal((2, 32, 32, 3)),
                     np.array([0, 3]))
    assert c["steps"].shape == (2, 8) and c["rows"].shape == (2, 32)
    assert c["pixels"].shape == (2, 32, 32)


def test_band_mass():
    rows = np.array([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 1.0, 0.0]])
    np.testing.assert_allclose(band_mass(rows, 1, 2), [0.75, 0.0, 1.0])


def test_bad_class_is_a_one_line_error():
    model = _row_model("rnn")
    with pytest.raises(ConfigError, match="one class in 0..4"):
        connectivity(model, np.zeros((1, 32, 32, 3)), [5])
    with pytest.raises(ConfigError, match="images"):
        connectivity(model, np.zeros((1, 32, 96)), [0])


def test_cue_band_summary_of_a_model_that_reads_only_the_cue_rows():
    """A row-RNN whose input weights see only rows 24..27 (W_hh = 0 before them would not do:
    the last rows feed in too) puts all of its connectivity on the band."""
    from core.datasets import Normalizer
    from core.probe import make_probe

    _, test = make_probe(n_train=10, n_test=20, cue_row=24, seed=0)
    model = RowRNN(hidden_dim=5, num_classes=10, dtype=np.float64, seed=0)
    norm = Normalizer().fit(test.images)

    def only_band(X):
        Z = X.copy()
        Z[:, :24] = 0
        Z[:, 28:] = 0
        return Z

    original = model.input_gradient

    def gated(X, dscores):  # the model ignores rows outside the band: so does its gradient
        back = original(only_band(X), dscores)
        back["dseq"] = only_band(back["dseq"])
        return back

    model.input_gradient = gated
    s = cue_band_summary(model, norm, test, cue_row=24, cue_height=4, max_images=20, batch=7)
    assert s["inside"] == pytest.approx(1.0) and s["outside"] == pytest.approx(0.0)
    assert s["images"] == 20 and s["uniform"] == pytest.approx(4 / 32)
    assert np.sum(s["rows"]) == pytest.approx(1.0)


def test_cnn_rnn_position_layout_reaches_the_pixels_exactly():
    """The CNN+RNN reading its map position by position (T = 64), where the model has it."""
    try:
        model = CNNRNN(channels=(3, 4), hidden_dim=5, num_classes=5, dtype=np.float64, seed=4,
                       sequence="positions")
    except TypeError:
        pytest.skip("CNNRNN has no 'sequence' option on this branch")
    rng = np.random.default_rng(7)
    images = 0.3 * rng.standard_normal((1, 32, 32, 3))
    # 64 tanh steps: the first positions get ~1e-16, below what centred differences resolve
    _logit_check(model, images, k=1, rng=rng, count=60, floor=1e-6)
    assert connectivity(model, images, [1])["steps"].shape == (1, 64)
