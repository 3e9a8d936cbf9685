"""Class layouts of simulated scenes: generated label maps and the real ones of benchmark scenes.

One job: provide the (H, W) integer label map (0 = unlabelled) a simulated scene is built on.
:func:`make_layout` generates one (irregular Voronoi regions, or rectangular agricultural fields
separated by unlabelled tracks); :func:`load_layout` reads the real ground truth of a benchmark
scene listed in :data:`LAYOUTS` (Indian Pines, Pavia University, Salinas, KSC) from
:func:`data_dir`; ``_as_layout`` turns the ``layout`` argument of
:func:`hsizoo.data.simulate.simulate_scene` (a name, a shape or a label map) into a checked map.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["LAYOUTS", "data_dir", "load_layout", "make_layout"]


#: Real label maps known to :func:`load_layout`: file name, array key and class names.
LAYOUTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "indian_pines": ("Indian_pines_gt.mat", "indian_pines_gt", (
        "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
        "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
        "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives",
        "Stone-Steel-Towers")),
    "pavia_university": ("pavia_university_gt.npz", "gt", (
        "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
        "Self-Blocking Bricks", "Shadows")),
    "salinas": ("salinas_gt.npz", "gt", (
        "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow",
        "Fallow_smooth", "Stubble", "Celery", "Grapes_untrained", "Soil_vinyard_develop",
        "Corn_senesced_green_weeds", "Lettuce_romaine_4wk", "Lettuce_romaine_5wk",
        "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained",
        "Vinyard_vertical_trellis")),
    "ksc": ("ksc_gt.npz", "gt", (
        "Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock",
        "Slash pine", "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh",
        "Spartina marsh", "Cattail marsh", "Salt marsh", "Mud flats", "Water")),
}


def data_dir() -> Path:
    """Folder of the benchmark data: ``$HSIZOO_DATA_DIR``, else ``../shared/data/hsi`` next to
    the source checkout."""
    env = os.environ.get("HSIZOO_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hsi"  # hsizoo/data/


def load_layout(name: str) -> np.ndarray:
    """The real ground-truth label map of a benchmark scene, as a layout for simulation.

    Args:
        name: One of ``LAYOUTS`` ("indian_pines", "pavia_university", "salinas", "ksc"),
            case-insensitive.

    Returns:
        (H, W) int64 label map, 0 = unlabelled.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the file is not in :func:`data_dir`.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in LAYOUTS:
        raise ValueError(f"Unknown layout {name!r}; known layouts: {', '.join(LAYOUTS)}. Or pass "
                         "an (H, W) label map, or an (H, W) shape to generate one.")
    fname, var, _ = LAYOUTS[key]
    path = data_dir() / fname
    if not path.exists():
        raise FileNotFoundError(
            f"Layout {key!r} needs {path}, which does not exist. Put the file there or point "
            "HSIZOO_DATA_DIR at the folder that holds it.")
    if path.suffix == ".mat":
        from scipy.io import loadmat

        mat = loadmat(path)
        if var not in mat:
            raise KeyError(f"{path} has no variable {var!r}; it has "
                           f"{[k for k in mat if not k.startswith('__')]}.")
        gt = mat[var]
    else:
        with np.load(path) as z:
            gt = z[var]
    return np.asarray(gt).astype(np.int64)


def make_layout(shape: tuple[int, int] = (145, 145), num_classes: int = 8, seed: int = 0,
                kind: str = "voronoi", *, background: float = 0.15,
                fields_per_class: int = 1, class_skew: float = 0.0) -> np.ndarray:
    """Generate a class layout.

    Args:
        shape: (H, W) in pixels.
        num_classes: Number of classes K; every class 1..K occurs.
        seed: Seed of ``numpy.random.default_rng``.
        kind: "voronoi" (irregular regions around random sites) or "fields" (rectangular
            fields in strips, separated by unlabelled tracks, like an agricultural scene).
        background: Fraction of regions left unlabelled (0).
        fields_per_class: For "fields": at least this many fields per class on average (more,
            smaller fields; several fields of one crop, as on Indian Pines).
        class_skew: Unequal class areas. 0 (default): every region beyond the first of each
            class takes a class uniformly at random. s > 0: it takes the class ranked r (in a
            random order of the classes) with probability proportional to r ** -s, so a few
            classes cover most of the scene and the rest one region each, as the classes of
            real scenes do (s = 1.5 with 8 classes: the largest class about half the regions).

    Returns:
        (H, W) int64 label map, 0 = unlabelled, 1..K classes.

    Raises:
        ValueError: bad shape, class count or kind, or a shape too small for K classes.
    """
    h, w = _check_shape(shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}.")
    if not 0.0 <= background < 1.0:
        raise ValueError(f"background must be a fraction in [0, 1); got {background}.")
    if isinstance(fields_per_class, bool) or not isinstance(fields_per_class, (int, np.integer)) \
            or fields_per_class < 1:
        raise ValueError(f"fields_per_class must be a positive integer; got {fields_per_class!r}.")
    if not (np.isfinite(class_skew) and class_skew >= 0):
        raise ValueError(f"class_skew must be a finite number >= 0; got {class_skew}.")
    rng = np.random.default_rng(seed)
    if kind == "voronoi":
        return _voronoi_layout(h, w, int(num_classes), rng, background, float(class_skew))
    if kind == "fields":
        return _fields_layout(h, w, int(num_classes), rng, background, int(fields_per_class),
                              float(class_skew))
    raise ValueError(f"Unknown layout kind {kind!r}; use 'voronoi' or 'fields'.")


def _check_shape(shape: object) -> tuple[int, int]:
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in shape) or min(shape) < 1):
        raise ValueError(f"A layout shape is (H, W), two positive integers; got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _region_classes(n: int, k: int, rng: np.random.Generator, background: float,
                    skew: float = 0.0) -> np.ndarray:
    # The first k regions get every class once, so all classes occur; the rest are random
    # (uniform, or with probabilities falling as a power of a random class rank).
    unlabelled = rng.random(n - k) < background
    if skew > 0:
        p = np.arange(1, k + 1, dtype=float) ** -skew
        drawn = rng.permutation(np.arange(1, k + 1))[rng.choice(k, n - k, p=p / p.sum())]
    else:
        drawn = rng.integers(1, k + 1, n - k)
    extra = np.where(unlabelled, 0, drawn)
    if background > 0 and extra.size and not np.any(extra == 0):
        extra[0] = 0  # some unlabelled background, as the docstring promises
    return rng.permutation(np.concatenate([rng.permutation(np.arange(1, k + 1)), extra]))


def _voronoi_layout(h: int, w: int, k: int, rng: np.random.Generator,
                    background: float, skew: float = 0.0) -> np.ndarray:
    from scipy.spatial import cKDTree

    n = max(2 * k + 2, (h * w) // 600)
    if h * w < 4 * n:
        raise ValueError(f"A {h} x {w} layout is too small for {k} classes; use a larger shape.")
    sites = rng.random((n, 2)) * (h, w)
    rr, cc = np.mgrid[0:h, 0:w]
    _, nearest = cKDTree(sites).query(np.stack([rr.ravel() + 0.5, cc.ravel() + 0.5], axis=1))
    return _region_classes(n, k, rng, background, skew)[nearest].reshape(h, w).astype(np.int64)


def _cuts(length: int, lo: int, hi: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    spans, start = [], 0
    while start < length:
        size = int(rng.integers(lo, hi + 1))
        if length - (start + size) < lo:  # no sliver at the end
            size = length - start
        spans.append((start, start + size))
        start += size
    return spans


def _fields_layout(h: int, w: int, k: int, rng: np.random.Generator,
                   background: float, per_class: int = 1, skew: float = 0.0) -> np.ndarray:
    for scale in (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12):
        lo_r, lo_c = max(3, int(h * scale / 6)), max(3, int(w * scale / 6))
        strips = _cuts(h, lo_r, max(lo_r, int(h * scale / 3)), rng)
        fields = [(r, c) for r in strips for c in _cuts(w, lo_c, max(lo_c, int(w * scale / 3)),
                                                        rng)]
        if len(fields) >= k * per_class + 1:
            break
    else:
        raise ValueError(f"A {h} x {w} layout is too small for {k * per_class} rectangular "
                         "fields; use a larger shape, fewer fields or kind='voronoi'.")
    out = np.zeros((h, w), dtype=np.int64)
    classes = _region_classes(len(fields), k, rng, background, skew)
    for ((r0, r1), (c0, c1)), cls in zip(fields, classes):
        # Unlabelled tracks (1-2 pixels) between fields, as between real fields.
        tr, tc = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        out[r0:max(r0 + 1, r1 - tr), c0:max(c0 + 1, c1 - tc)] = cls
    return out


def _as_layout(layout: object, seed: int, num_classes: int) -> tuple[np.ndarray, str | None]:
    """The label map and, for a named layout, its normalised name, of a ``layout`` argument.

    Args:
        layout: A name for :func:`load_layout`, an (H, W) shape tuple for :func:`make_layout`,
            or an (H, W) integer label map (0 = unlabelled).
        seed: Seed of a generated layout.
        num_classes: Classes of a generated layout.

    Returns:
        (H, W) int64 label map, and the layout's normalised name (None unless named).

    Raises:
        ValueError: a bad shape or label map, or an unknown name.
        FileNotFoundError: a named layout whose file is absent.
    """
    if isinstance(layout, str):
        return load_layout(layout), layout.strip().lower().replace("-", "_").replace(" ", "_")
    if isinstance(layout, tuple):
        return make_layout(_check_shape(layout), num_classes=num_classes, seed=seed), None
    arr = np.asarray(layout)
    if arr.ndim != 2:
        raise ValueError(f"layout must be an (H, W) label map, a layout name or an (H, W) shape "
                         f"tuple; got an array of shape {arr.shape}.")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"A layout label map must hold integer class ids (0 = unlabelled); got "
                         f"dtype {arr.dtype}.")
    if arr.size == 0 or arr.min() < 0:
        raise ValueError("A layout label map must be non-empty with ids >= 0 (0 = unlabelled).")
    if not np.any(arr > 0):
        raise ValueError("The layout has no labelled pixel (all 0); give at least one class.")
    return arr.astype(np.int64), None
