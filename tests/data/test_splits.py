"""Tests of the few-shot splits (hsizoo.data.splits)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from hsizoo.data.splits import FewShotSplit, few_shot_split, spatially_disjoint_split

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hsi"


def _labels(seed: int = 0) -> np.ndarray:
    """A 40 x 50 map: three large classes in bands, a small class 4 (6 pixels), background 0."""
    lab = np.zeros((40, 50), dtype=np.uint8)
    lab[2:14, 2:48] = 1
    lab[15:27, 2:48] = 2
    lab[28:39, 2:30] = 3
    lab[30:32, 40:43] = 4  # 6 pixels
    return lab


def _chebyshev_min_dist(a: np.ndarray, b: np.ndarray) -> int:
    pa, pb = np.argwhere(a), np.argwhere(b)
    d = np.abs(pa[:, None, :] - pb[None, :, :]).max(axis=2)
    return int(d.min())


def test_counts_and_disjointness() -> None:
    lab = _labels()
    s = few_shot_split(lab, shots=5, seed=3)
    assert isinstance(s, FewShotSplit) and s.method == "random"
    assert s.train.shape == s.test.shape == lab.shape
    for c in (1, 2, 3, 4):
        assert np.count_nonzero(s.train == c) == 5 == s.per_class_train[c]
    assert not np.any((s.train > 0) & (s.test > 0))
    # Train + test are exactly the labelled pixels, with their labels.
    both = np.where(s.train > 0, s.train, s.test)
    np.testing.assert_array_equal(both, lab)
    assert s.per_class_test[4] == 1 and s.num_test == np.count_nonzero(lab) - 20
    assert s.short_classes == {}


def test_deterministic_per_seed_and_seeds_differ() -> None:
    lab = _labels()
    a, b = few_shot_split(lab, 3, seed=7), few_shot_split(lab, 3, seed=7)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    c = few_shot_split(lab, 3, seed=8)
    assert not np.array_equal(a.train, c.train)


def test_short_class_gets_what_it_can_and_warns() -> None:
    lab = _labels()
    with pytest.warns(UserWarning, match=r"class 4 \(6 pixels\)"):
        s = few_shot_split(lab, shots=10, seed=0)
    assert s.short_classes == {4: 6}
    assert s.per_class_train[4] == 5 and s.per_class_test[4] == 1  # min_test=1 kept
    assert s.per_class_train[1] == 10
    with pytest.warns(UserWarning):
        s2 = few_shot_split(lab, shots=10, seed=0, min_test=3)
    assert s2.per_class_train[4] == 3 and s2.per_class_test[4] == 3


def test_single_pixel_class_still_trains() -> None:
    lab = _labels()
    lab[0, 0] = 9
    with pytest.warns(UserWarning, match="class 9"):
        s = few_shot_split(lab, shots=2)
    assert s.per_class_train[9] == 1 and s.per_class_test[9] == 0


def test_absent_ids_are_not_classes() -> None:
    lab = _labels()
    lab[lab == 2] = 7  # ids 1, 3, 4, 7; 2, 5, 6 absent
    s = few_shot_split(lab, shots=2)
    assert s.classes == [1, 3, 4, 7]


def test_no_warning_when_all_classes_full() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        few_shot_split(_labels(), shots=5)


@pytest.mark.parametrize(
    "labels,shots,match",
    [
        (np.zeros((3, 4, 2), dtype=int), 1, "shape"),
        (np.ones((4, 4), dtype=np.float32), 1, "integer"),
        (np.ones((4, 4), dtype=bool), 1, "integer"),
        (-np.ones((4, 4), dtype=int), 1, ">= 0"),
        (np.zeros((4, 4), dtype=int), 1, "no labelled pixel"),
        (np.ones((4, 4), dtype=int), 0, "shots"),
        (np.ones((4, 4), dtype=int), 2.5, "shots"),
    ],
)
@pytest.mark.parametrize("fn", [few_shot_split, spatially_disjoint_split])
def test_errors(fn, labels: np.ndarray, shots, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(labels, shots)


@pytest.mark.filterwarnings("ignore:After removing test pixels")
def test_spatially_disjoint_guard() -> None:
    lab = _labels()
    s = spatially_disjoint_split(lab, shots=4, seed=1, guard=3)
    assert s.method == "spatially_disjoint" and s.guard == 3
    for c in (1, 2, 3, 4):
        assert np.count_nonzero(s.train == c) == 4
    assert not np.any((s.train > 0) & (s.test > 0))
    assert _chebyshev_min_dist(s.train > 0, s.test > 0) > 3
    # The excluded pixels are exactly the labelled non-train pixels within the guard.
    assert np.all(lab[s.excluded] > 0) and s.excluded.sum() > 0
    assert np.count_nonzero(s.train) + s.num_test + s.excluded.sum() == np.count_nonzero(lab)
    assert _chebyshev_min_dist(s.train > 0, s.excluded) <= 3


@pytest.mark.filterwarnings("ignore:After removing test pixels")
def test_spatially_disjoint_block_sets_guard_and_is_deterministic() -> None:
    lab = _labels()
    a = spatially_disjoint_split(lab, shots=3, seed=5, block=9)
    b = spatially_disjoint_split(lab, shots=3, seed=5, block=9)
    assert a.guard == 4
    np.testing.assert_array_equal(a.train, b.train)
    c = spatially_disjoint_split(lab, shots=3, seed=6, block=9)
    assert not np.array_equal(a.train, c.train)
    # Shots are a compact cluster: the class-1 shots lie in a small square.
    r, q = np.nonzero(a.train == 1)
    assert np.ptp(r) <= 2 and np.ptp(q) <= 2


def test_spatially_disjoint_warns_when_guard_eats_a_class() -> None:
    lab = _labels()
    with pytest.warns(UserWarning, match="class 4"):
        s = spatially_disjoint_split(lab, shots=2, seed=0, guard=4)
    assert s.per_class_test[4] == 0 and s.short_classes == {4: 6}


@pytest.mark.integration
def test_indian_pines_protocol() -> None:
    path = DATA / "Indian_pines_gt.mat"
    if not path.exists():
        pytest.skip(f"real label map absent: {path}")
    from scipy.io import loadmat

    gt = loadmat(path)["indian_pines_gt"]
    with pytest.warns(UserWarning, match=r"class 7 \(28 pixels\), class 9 \(20 pixels\)"):
        s = few_shot_split(gt, shots=30, seed=0)
    assert s.short_classes == {7: 28, 9: 20}
    assert s.per_class_train[9] == 19 and s.per_class_train[7] == 27
    assert s.per_class_train[2] == 30
    # Grass-pasture-mowed (28 pixels in one small blob) has no pixel 5 away from 10 shots.
    with pytest.warns(UserWarning, match="class 7 kept fewer"):
        d = spatially_disjoint_split(gt, shots=10, seed=0, guard=4)
    assert d.short_classes == {7: 28}
    assert all(n == 10 for n in d.per_class_train.values())
    assert d.num_test > 0.8 * (np.count_nonzero(gt) - 160)
