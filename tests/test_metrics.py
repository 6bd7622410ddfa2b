"""core.metrics against hand-computed cases."""

import numpy as np
import pytest

from core import metrics


def test_accuracy_hand_case():
    assert metrics.accuracy([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.5)
    assert np.isnan(metrics.accuracy([], []))
    with pytest.raises(ValueError):
        metrics.accuracy([0, 1], [0])


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=3)
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    np.testing.assert_allclose(metrics.per_class_accuracy(cm), [0.5, 1.0, 2 / 3])


def test_per_class_accuracy_empty_class_is_nan():
    cm = metrics.confusion_matrix([0, 0, 1], [0, 1, 0], num_classes=3)
    pca = metrics.per_class_accuracy(cm)
    assert pca[0] == 0.5 and pca[1] == 0.0 and np.isnan(pca[2])


def test_cross_entropy_hand_case():
    probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert metrics.cross_entropy(probs, [0, 1]) == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2
    )


def _four_examples():
    # confidences 0.9 (right), 0.92 (wrong), 0.55 (right), 0.7 (wrong); all true class 0
    probs = np.array([[0.9, 0.1], [0.08, 0.92], [0.55, 0.45], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 0])
    return probs, labels


def test_ece_fifteen_bins_hand_computed():
    probs, labels = _four_examples()
    # 15 bins of width 1/15: 0.9 and 0.92 in bin 13 (0.867, 0.933], 0.55 in bin 8, 0.7 in bin 10
    # bin 13: acc 0.5, conf 0.91 -> 2/4 * 0.41; bin 8: 1/4 * 0.45; bin 10: 1/4 * 0.7
    expected = 0.5 * 0.41 + 0.25 * 0.45 + 0.25 * 0.7
    bins = metrics.reliability_bins(probs, labels)
    assert bins["ece"] == pytest.approx(expected)
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.4925)
    assert len(bins["counts"]) == 15 and len(bins["edges"]) == 16
    assert bins["counts"][13] == 2 and bins["counts"][8] == 1 and bins["counts"][10] == 1
    assert sum(bins["counts"]) == 4
    assert bins["accuracy"][13] == pytest.approx(0.5)
    assert bins["confidence"][13] == pytest.approx(0.91)
    assert np.isnan(bins["accuracy"][0]) and np.isnan(bins["confidence"][0])


def test_ece_bin_edges_are_right_closed():
    # with 2 bins, confidence exactly 0.5 belongs to the first bin, exactly 1.0 to the last
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    bins = metrics.reliability_bins(probs, [1, 0], n_bins=2)
    assert bins["counts"] == [1, 1]
    # first: argmax 0, label 1 -> wrong at 0.5; second right at 1.0
    assert bins["ece"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.0)


def test_ece_zero_when_calibrated():
    probs = np.tile([0.7, 0.2, 0.1], (10, 1))
    labels = np.array([0] * 7 + [1] * 3)
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_summarize_keys():
    probs, labels = _four_examples()
    s = metrics.summarize(probs, labels)
    assert s["acc"] == pytest.approx(0.5)
    assert s["n"] == 4
    assert s["ece"] == pytest.approx(0.4925)
    assert s["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.08, 0.55, 0.3])))
