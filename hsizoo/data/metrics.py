"""The one metrics module: accuracy of a class map against reference labels.

Overall accuracy (OA), average (per-class) accuracy (AA), Cohen's kappa, per-class accuracy
(producer's accuracy, i.e. recall) and the confusion matrix, as hyperspectral classification papers
report them. Label maps follow DESIGN.md: 0 = unlabelled (ignored), 1..K = classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["ClassificationReport", "confusion_matrix", "evaluate"]


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, num_classes: int | None = None
                     ) -> np.ndarray:
    """Confusion matrix over the labelled pixels of ``reference``.

    Args:
        reference: Reference class ids (any shape), 0 = unlabelled (ignored).
        predicted: Predicted class ids, same shape; 0 = unclassified (counted as an error).
        num_classes: K; default the largest id in either array.

    Returns:
        (K, K) int64 matrix; entry [i, j] counts pixels of reference class i + 1 predicted as
        class j + 1. Pixels predicted 0 (unclassified) appear in no column, so that rows may sum
        to less than the class's pixel count; they still count as errors in every score.
    """
    ref = np.asarray(reference).reshape(-1)
    pred = np.asarray(predicted).reshape(-1)
    if ref.shape != pred.shape:
        raise ValueError(f"reference and predicted differ in size ({np.asarray(reference).shape} "
                         f"vs {np.asarray(predicted).shape}); pass maps of the same shape.")
    k = int(num_classes or max(int(ref.max(initial=0)), int(pred.max(initial=0))))
    keep = (ref > 0) & (pred > 0) & (pred <= k) & (ref <= k)
    idx = (ref[keep].astype(np.int64) - 1) * k + (pred[keep].astype(np.int64) - 1)
    return np.bincount(idx, minlength=k * k).reshape(k, k)


@dataclass
class ClassificationReport:
    """Accuracy of a classification against reference labels.

    Attributes:
        oa: Overall accuracy in 0..1: correct / labelled pixels.
        aa: Average accuracy in 0..1: mean of the per-class accuracies of the classes present in
            the reference.
        kappa: Cohen's kappa.
        per_class: Class id -> accuracy (producer's accuracy) in 0..1, classes present only.
        confusion: (K, K) confusion matrix (rows reference, columns prediction).
        num_pixels: Labelled pixels evaluated.
        class_names: Names of classes 1..K, when known.
    """

    oa: float
    aa: float
    kappa: float
    per_class: dict[int, float]
    confusion: np.ndarray
    num_pixels: int
    class_names: list[str] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dictionary (confusion matrix as nested lists)."""
        return {"oa": self.oa, "aa": self.aa, "kappa": self.kappa,
                "per_class": {str(k): v for k, v in self.per_class.items()},
                "confusion": self.confusion.tolist(), "num_pixels": self.num_pixels,
                "class_names": self.class_names}

    def headline(self, pixels: str = "labelled pixels") -> str:
        """One line: OA, AA, kappa and the number of pixels scored."""
        return (f"OA {100 * self.oa:.2f} %  AA {100 * self.aa:.2f} %  kappa {self.kappa:.4f}  "
                f"({self.num_pixels} {pixels})")

    def __str__(self) -> str:
        lines = [self.headline()]
        for c, acc in self.per_class.items():
            name = (self.class_names[c - 1] if self.class_names and c <= len(self.class_names)
                    else f"class {c}")
            lines.append(f"  {c:3d} {name:<32s} {100 * acc:6.2f} %")
        return "\n".join(lines)


def evaluate(reference: np.ndarray, predicted: np.ndarray, num_classes: int | None = None,
             class_names: Sequence[str] | None = None) -> ClassificationReport:
    """OA, AA, kappa, per-class accuracy and confusion matrix of a prediction.

    Args:
        reference: Reference label map, 0 = unlabelled (not evaluated), 1..K = classes.
        predicted: Predicted class map of the same shape (0 = unclassified, always wrong).
        num_classes: K; default the largest id in either map.
        class_names: Names of classes 1..K, for printing.

    Returns:
        The :class:`ClassificationReport`.

    Raises:
        ValueError: shapes differ; the reference is not class ids (NaN, fractions, negative
            values, a fill value such as 255) or holds ids above ``num_classes``; or it has no
            labelled pixel.
    """
    from hsizoo.io.labels import check_label_ids

    pred = np.asarray(predicted)
    ref = np.asarray(reference)
    if ref.shape != pred.shape:
        raise ValueError(f"Reference labels {ref.shape} and prediction {pred.shape} differ in "
                         "shape; evaluate a class map of the same scene as the labels.")
    # NaN, fractions, negative ids and fill values such as 255 are refused with advice: they
    # would count as wrongly classified pixels.
    # (any shape: maps, or vectors of pixels; checked as one row of pixels)
    ref = check_label_ids(ref.reshape(1, -1), "the reference label map").reshape(ref.shape)
    if num_classes and int(ref.max()) > int(num_classes):
        extra = ref > int(num_classes)
        ids = ", ".join(str(int(v)) for v in np.unique(ref[extra])[:5])
        raise ValueError(
            f"The reference labels hold class id(s) {ids} ({int(extra.sum())} pixels) above the "
            f"{int(num_classes)} classes of the map: those pixels could only count as errors. "
            "Set them to 0 if they mark unlabelled or nodata pixels, or renumber the reference "
            f"to the classes 1..{int(num_classes)} the model was trained on.")
    labelled = ref > 0
    n = int(labelled.sum())
    if n == 0:
        raise ValueError("The reference labels hold no labelled pixel (all 0); nothing to "
                         "evaluate against.")
    k = int(num_classes or max(int(ref.max()), int(pred.max(initial=0))))
    cm = confusion_matrix(ref, pred, k)
    correct = int(np.trace(cm))
    oa = correct / n
    ref_counts = np.bincount(ref[labelled].astype(np.int64), minlength=k + 1)[1:k + 1]
    present = np.flatnonzero(ref_counts > 0)
    per_class = {int(c) + 1: float(cm[c, c] / ref_counts[c]) for c in present}
    aa = float(np.mean(list(per_class.values())))
    # Chance agreement from the row totals (all labelled pixels, unclassified ones included) and
    # the column totals of the predictions on those pixels.
    pred_counts = np.bincount(np.where(labelled, pred, 0)[labelled].astype(np.int64).clip(0, k),
                              minlength=k + 1)[1:k + 1]
    pe = float(np.dot(ref_counts, pred_counts)) / float(n * n)
    kappa = (oa - pe) / (1.0 - pe) if pe < 1.0 else (1.0 if oa == 1.0 else 0.0)
    return ClassificationReport(oa=float(oa), aa=aa, kappa=float(kappa), per_class=per_class,
                                confusion=cm, num_pixels=n,
                                class_names=None if class_names is None else list(class_names))
