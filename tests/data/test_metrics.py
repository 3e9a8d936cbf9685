"""The one metrics module against hand-computed examples."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.data.metrics import confusion_matrix, evaluate


def test_hand_computed_example() -> None:
    ref = np.array([[1, 1, 2], [2, 3, 0]])
    pred = np.array([[1, 2, 2], [2, 3, 1]])  # the unlabelled pixel's prediction is ignored
    rep = evaluate(ref, pred)
    np.testing.assert_array_equal(rep.confusion, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    assert rep.num_pixels == 5
    assert rep.oa == pytest.approx(4 / 5)
    assert rep.per_class == pytest.approx({1: 0.5, 2: 1.0, 3: 1.0})
    assert rep.aa == pytest.approx((0.5 + 1 + 1) / 3)
    # chance agreement: rows (2, 2, 1) x columns (1, 3, 1) / 25 = 9 / 25
    assert rep.kappa == pytest.approx((0.8 - 9 / 25) / (1 - 9 / 25))


def test_perfect_and_unclassified() -> None:
    ref = np.array([1, 2, 2, 3])
    assert evaluate(ref, ref).oa == 1.0 and evaluate(ref, ref).kappa == pytest.approx(1.0)
    rep = evaluate(ref, np.array([1, 0, 2, 3]))  # 0 = unclassified counts as an error
    assert rep.oa == pytest.approx(0.75)
    assert rep.per_class[2] == pytest.approx(0.5)
    assert rep.confusion.sum() == 3


def test_absent_class_not_in_aa() -> None:
    ref = np.array([1, 1, 3, 3])
    rep = evaluate(ref, np.array([1, 2, 3, 3]), num_classes=3)
    assert set(rep.per_class) == {1, 3}
    assert rep.aa == pytest.approx((0.5 + 1.0) / 2)
    assert rep.confusion.shape == (3, 3)
    assert rep.confusion[0, 1] == 1


def test_report_serialises_and_prints() -> None:
    rep = evaluate(np.array([1, 2]), np.array([1, 1]), class_names=["corn", "soy"])
    d = rep.as_dict()
    assert d["confusion"] == [[1, 0], [1, 0]] and d["per_class"] == {"1": 1.0, "2": 0.0}
    assert "soy" in str(rep) and "OA 50.00 %" in str(rep)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate(np.zeros((2, 2), int), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="no labelled pixel"):
        evaluate(np.zeros((2, 2), int), np.ones((2, 2), int))
    with pytest.raises(ValueError, match="size"):
        confusion_matrix(np.ones(3, int), np.ones(4, int))
