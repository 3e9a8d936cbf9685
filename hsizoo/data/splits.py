"""Few-shot train/test splits of a label map.

The standard few-shot protocol of hyperspectral classification papers: draw ``k`` labelled pixels
per class at random as the training shots, and test on every other labelled pixel. With patch
models this protocol leaks: a test pixel next to a training pixel sees almost the same patch.
:func:`spatially_disjoint_split` removes that leak by taking each class's shots as one compact
cluster and dropping every test pixel within a guard distance of any training pixel.

Label maps follow DESIGN.md: (H, W) integers, 0 = unlabelled, 1..K = classes. The classes of a
map are the ids that occur in it; an id with no pixel is not a class.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FewShotSplit", "few_shot_split", "spatially_disjoint_split"]


@dataclass
class FewShotSplit:
    """A few-shot split of a label map.

    Attributes:
        train: (H, W) int64 label map holding only the training shots (0 elsewhere).
        test: (H, W) int64 label map of the test pixels (0 elsewhere); disjoint from ``train``.
        shots: Requested number of training pixels per class (k).
        seed: Seed of the ``numpy.random.default_rng`` generator that drew the shots.
        per_class_train: Class id -> number of training pixels actually drawn.
        short_classes: Class id -> number of labelled pixels available, for each class that could
            not give ``shots`` training pixels and still keep ``min_test`` test pixels (or, for
            the spatially disjoint split, kept fewer than ``min_test`` test pixels outside the
            guard). Empty when every class was served in full.
        method: "random" or "spatially_disjoint".
        per_class_test: Class id -> number of test pixels.
        guard: Chebyshev guard radius in pixels (spatially disjoint split), else None.
        excluded: (H, W) bool, labelled pixels that are neither train nor test (inside the guard
            of a training pixel); all False for the random split.
    """

    train: np.ndarray
    test: np.ndarray
    shots: int
    seed: int
    per_class_train: dict[int, int]
    short_classes: dict[int, int]
    method: str
    per_class_test: dict[int, int] = field(default_factory=dict)
    guard: int | None = None
    excluded: np.ndarray | None = None

    @property
    def classes(self) -> list[int]:
        """Class ids of the label map the split was drawn from, ascending."""
        return sorted(self.per_class_train)

    @property
    def num_train(self) -> int:
        """Total number of training pixels."""
        return int(sum(self.per_class_train.values()))

    @property
    def num_test(self) -> int:
        """Total number of test pixels."""
        return int(np.count_nonzero(self.test))


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(
            f"labels must be an (H, W) label map; got an array of shape {labels.shape}. Pass one "
            "integer class id per pixel (0 = unlabelled).")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must hold integer class ids (0 = unlabelled, 1..K); got dtype {labels.dtype}."
            " Convert with labels.astype(int) if the values are whole numbers.")
    if labels.size and labels.min() < 0:
        raise ValueError(
            f"labels must be >= 0 (0 = unlabelled, 1..K = classes); found {int(labels.min())}.")
    if not np.any(labels > 0):
        raise ValueError(
            "labels contain no labelled pixel (all 0); a few-shot split needs at least one pixel "
            "of at least one class.")
    return labels


def _train_count(available: int, shots: int, min_test: int) -> int:
    """Training pixels for a class with ``available`` pixels.

    ``shots`` when that leaves ``min_test`` test pixels; otherwise all but ``min_test``, and at
    least one (a class present in the map always gets a training pixel, even if that leaves it
    without test pixels).
    """
    return min(shots, max(available - min_test, 1))


def _warn_short(short: dict[int, int], shots: int, min_test: int, why: str) -> None:
    if short:
        listing = ", ".join(f"class {c} ({n} pixels)" for c, n in sorted(short.items()))
        warnings.warn(
            f"{len(short)} class(es) cannot give {shots} training shots and keep {min_test} test "
            f"pixel(s){why}: {listing}. They got fewer shots; see FewShotSplit.short_classes.",
            UserWarning, stacklevel=3)


def few_shot_split(labels: np.ndarray, shots: int, seed: int = 0, *, min_test: int = 1
                   ) -> FewShotSplit:
    """The standard few-shot split: ``shots`` random labelled pixels per class for training.

    Pixels are drawn with ``numpy.random.default_rng(seed)``, class by class in ascending id
    order, so a seed always gives the same split of the same map. Every labelled pixel that is
    not a training shot is a test pixel.

    A class is *short* when it has fewer than ``shots + min_test`` pixels. It then gives
    ``max(available - min_test, 1)`` training pixels, is recorded in ``short_classes``
    (id -> available count), and a warning names it.

    Args:
        labels: (H, W) integer label map, 0 = unlabelled, 1..K = classes.
        shots: Training pixels per class, k >= 1.
        seed: Seed of the random generator.
        min_test: Test pixels every class must keep (>= 0).

    Returns:
        The split.

    Raises:
        ValueError: labels not a 2-D integer map, negative labels, no labelled pixel, shots < 1.
    """
    labels = _check_labels(labels)
    shots = _check_int(shots, "shots", 1)
    min_test = _check_int(min_test, "min_test", 0)
    rng = np.random.default_rng(seed)
    flat = labels.reshape(-1)
    train = np.zeros(flat.shape, dtype=np.int64)
    per_class: dict[int, int] = {}
    short: dict[int, int] = {}
    for c in np.unique(flat[flat > 0]).tolist():
        idx = np.flatnonzero(flat == c)
        k = _train_count(idx.size, shots, min_test)
        if idx.size < shots + min_test:
            short[c] = int(idx.size)
        train[rng.choice(idx, size=k, replace=False)] = c
        per_class[c] = k
    train = train.reshape(labels.shape)
    test = np.where((labels > 0) & (train == 0), labels, 0).astype(np.int64)
    _warn_short(short, shots, min_test, "")
    return FewShotSplit(
        train=train, test=test, shots=shots, seed=seed, per_class_train=per_class,
        short_classes=short, method="random", per_class_test=_counts(test, per_class),
        guard=None, excluded=np.zeros(labels.shape, dtype=bool))


def spatially_disjoint_split(labels: np.ndarray, shots: int, seed: int = 0, *, guard: int = 4,
                             block: int | None = None, min_test: int = 1, tries: int = 8
                             ) -> FewShotSplit:
    """A few-shot split in which no test pixel lies near a training pixel.

    Each class's shots are one compact cluster: the ``k`` pixels of that class nearest to an
    anchor pixel drawn at random (of ``tries`` random anchors, the one whose guard zone removes
    the fewest pixels of the class). Then every labelled pixel within Chebyshev distance
    ``guard`` of any training pixel, of any class, is excluded from the test set. With patch
    models of size P x P, ``guard = P // 2`` (the default 4 suits P = 9) keeps every test pixel
    out of every training patch; ``guard = P - 1`` makes training and test patches disjoint.

    Classes are short as in :func:`few_shot_split`, and also when fewer than ``min_test`` of
    their pixels are left outside the guard; both cases are recorded in ``short_classes`` and
    warned about.

    Args:
        labels: (H, W) integer label map, 0 = unlabelled, 1..K = classes.
        shots: Training pixels per class, k >= 1.
        seed: Seed of ``numpy.random.default_rng``.
        guard: Guard radius in pixels (Chebyshev), >= 0.
        block: Patch size P of the model, as an alternative to ``guard``; sets
            ``guard = block // 2``.
        min_test: Test pixels every class must keep (>= 0).
        tries: Random anchors tried per class (>= 1).

    Returns:
        The split; ``excluded`` marks the labelled pixels dropped by the guard.

    Raises:
        ValueError: as :func:`few_shot_split`, or a negative guard / block < 1.
    """
    from scipy.ndimage import binary_dilation

    labels = _check_labels(labels)
    shots = _check_int(shots, "shots", 1)
    min_test = _check_int(min_test, "min_test", 0)
    tries = _check_int(tries, "tries", 1)
    if block is not None:
        guard = _check_int(block, "block", 1) // 2
    guard = _check_int(guard, "guard", 0)
    rng = np.random.default_rng(seed)
    structure = np.ones((2 * guard + 1, 2 * guard + 1), dtype=bool)
    train = np.zeros(labels.shape, dtype=np.int64)
    per_class: dict[int, int] = {}
    short: dict[int, int] = {}
    for c in np.unique(labels[labels > 0]).tolist():
        rows, cols = np.nonzero(labels == c)
        n = rows.size
        k = _train_count(n, shots, min_test)
        if n < shots + min_test:
            short[c] = n
        best: tuple[int, np.ndarray] | None = None
        for anchor in rng.choice(n, size=min(tries, n), replace=False):
            # Chebyshev distance orders the cluster as a square grows around the anchor; the
            # random key breaks ties so the cluster does not favour one side.
            d = np.maximum(np.abs(rows - rows[anchor]), np.abs(cols - cols[anchor]))
            pick = np.lexsort((rng.random(n), d))[:k]
            # Pixels of this class the guard would remove: those within `guard` of the cluster.
            mask = np.zeros(labels.shape, dtype=bool)
            mask[rows[pick], cols[pick]] = True
            lost = int(np.count_nonzero(binary_dilation(mask, structure) & (labels == c)))
            if best is None or lost < best[0]:
                best = (lost, pick)
        assert best is not None
        train[rows[best[1]], cols[best[1]]] = c
        per_class[c] = k
    near = binary_dilation(train > 0, structure)
    labelled = labels > 0
    excluded = near & labelled & (train == 0)
    test = np.where(labelled & ~near, labels, 0).astype(np.int64)
    per_test = _counts(test, per_class)
    lost_short = {c: int(np.count_nonzero(labels == c)) for c, m in per_test.items()
                  if m < min_test and c not in short}
    _warn_short(short, shots, min_test, "")
    if lost_short:
        listing = ", ".join(f"class {c}" for c in sorted(lost_short))
        warnings.warn(
            f"After removing test pixels within {guard} pixels of the training shots, "
            f"{listing} kept fewer than {min_test} test pixel(s); use a smaller guard or fewer "
            "shots. See FewShotSplit.short_classes.", UserWarning, stacklevel=2)
    short.update(lost_short)
    return FewShotSplit(
        train=train, test=test, shots=shots, seed=seed, per_class_train=per_class,
        short_classes=short, method="spatially_disjoint", per_class_test=per_test, guard=guard,
        excluded=excluded)


def _counts(test: np.ndarray, classes: dict[int, int]) -> dict[int, int]:
    ids, counts = np.unique(test[test > 0], return_counts=True)
    found = dict(zip(ids.tolist(), counts.tolist()))
    return {c: int(found.get(c, 0)) for c in classes}
