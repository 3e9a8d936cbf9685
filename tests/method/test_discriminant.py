"""Self-training of the scene graph with a discriminant projection (hsizoo.method.discriminant)."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.method.discriminant import discriminant_directions, discriminant_projection
from hsizoo.method.transduction import TransductionConfig, propagate_from_shots


def _nuisance_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stripes of 3 classes that differ along one weak spectral direction, under a strong
    per-pixel brightness and a strong random spectral shape: the principal components follow
    the nuisance, a discriminant of the right labels follows the classes."""
    rng = np.random.default_rng(seed)
    h, w, b = 48, 48, 12
    labels = (np.arange(w)[None, :] // 4 % 3 + 1).repeat(h, 0)
    signal = rng.normal(size=(3, b))
    nuisance = rng.normal(size=(2, b))
    cube = (0.6 * signal[labels - 1]
            + 3.0 * rng.normal(size=(h, w, 1)) * nuisance[0]
            + 3.0 * rng.normal(size=(h, w, 1)) * nuisance[1]
            + 0.3 * rng.normal(size=(h, w, b))).astype(np.float32)
    train = np.zeros_like(labels)
    for k in (1, 2, 3):
        r, c = np.nonzero(labels == k)
        pick = rng.choice(r.size, 5, replace=False)
        train[r[pick], c[pick]] = k
    return cube, labels, train


def _accuracy(cfg: TransductionConfig, cube, labels, train) -> float:
    valid = np.ones(labels.shape, bool)
    _, probs = propagate_from_shots(cube, valid, train, 3, cfg)
    pred = probs.argmax(1) + 1
    test = (train == 0).ravel()
    return float((pred[test] == labels.ravel()[test]).mean())


def test_discriminant_rounds_see_through_a_strong_nuisance() -> None:
    cube, labels, train = _nuisance_scene()
    plain = TransductionConfig(feature_sigma=0.0, position_scale=0.0, discriminant_rounds=0)
    rounds = TransductionConfig(feature_sigma=0.0, position_scale=0.0, discriminant_rounds=2)
    a0, a2 = _accuracy(plain, cube, labels, train), _accuracy(rounds, cube, labels, train)
    assert a2 > a0 + 0.1, (a0, a2)


def test_discriminant_directions_find_the_class_axis() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 200)
    x = rng.normal(size=(400, 3)) * np.array([10.0, 10.0, 0.3])
    x[:, 2] += 2.0 * y  # the classes differ only along the weakest axis
    d = discriminant_directions(x, y, 2)
    assert d.shape == (3, 1)
    axis = np.abs(d[:, 0]) / np.linalg.norm(d[:, 0])
    assert axis[2] > 0.99


def test_discriminant_sees_only_the_shots_and_its_own_pseudo_labels() -> None:
    # The projection is a function of the features and of the rows it is given (the shots and
    # the propagation's own pseudo-labels): deterministic, one column per class but one.
    cube, labels, train = _nuisance_scene()
    cfg = TransductionConfig(feature_sigma=0.0, position_scale=0.0, discriminant_rounds=0)
    valid = np.ones(labels.shape, bool)
    _, probs = propagate_from_shots(cube, valid, train, 3, cfg)
    lab = train[valid]
    shots = np.flatnonzero(lab > 0)
    z = cube.reshape(-1, cube.shape[-1])
    from hsizoo.method.transduction import select_pseudo_labels

    is_shot = np.zeros(z.shape[0], bool)
    is_shot[shots] = True
    idx, cls = select_pseudo_labels(probs, is_shot, 0.5, None)
    p1 = discriminant_projection(z, np.concatenate([idx, shots]),
                                 np.concatenate([cls, lab[shots] - 1]), 3)
    p2 = discriminant_projection(z, np.concatenate([idx, shots]),
                                 np.concatenate([cls, lab[shots] - 1]), 3)
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (z.shape[0], 2)


def test_discriminant_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="discriminant"):
        TransductionConfig(discriminant_rounds=-1)
    with pytest.raises(ValueError, match="discriminant"):
        TransductionConfig(discriminant_fraction=0.0)
