"""The harness cannot leak test labels into a method.

A method receives the scene without its labels and the shots, nothing else (the runner hands it
a label-free copy): its predictions do not change when every test label is changed, and its
score does not depend on the order in which the test pixels are scored. Checked for the graph
baseline and for S2Former with transductive DAFT, the method that uses the whole scene.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hsizoo.bench import runner
from hsizoo.bench.methods import METHODS, BenchOptions
from hsizoo.data.metrics import evaluate
from hsizoo.data.splits import few_shot_split

SCENE = "simulated:rosis:32x32x4:0"
OPTS = BenchOptions(model="s2former_test", steps=3, finetune_kwargs={"head_steps": 2})
GRAPH, DAFT = "label_propagation", "s2former_scratch_daft"
PRIOR = "label_propagation_prior"  # estimates class proportions from the whole scene


@pytest.fixture(scope="module")
def scene():  # noqa: ANN201
    from hsizoo.pretrain import load_scene_spec

    return load_scene_spec(SCENE)


def _through_the_runner(method: str, scene, split, tmp_path):  # noqa: ANN001, ANN202
    """Run ``method`` with the runner; returns (record, what _fit was given, test predictions)."""
    seen: dict = {}
    real_fit = runner._fit

    def spy(spec, s, train, seed, opts):  # noqa: ANN001, ANN202
        predict, info = real_fit(spec, s, train, seed, opts)
        seen.update(scene=s, train=train.copy(), predict=predict)
        return predict, info

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "_fit", spy)
        rec = runner.run_one(SCENE, scene, METHODS[method], 2, 0, OPTS, tmp_path, {},
                             split=split)
    tr, tc = np.nonzero(np.where(scene.valid, split.test, 0))
    return rec, seen, seen["predict"](tr, tc)


@pytest.mark.parametrize("method", [GRAPH, DAFT, PRIOR])
def test_a_method_receives_the_shots_and_no_other_label(scene, method, tmp_path) -> None:
    split = few_shot_split(scene.labels, 2, 0)
    _, seen, _ = _through_the_runner(method, scene, split, tmp_path)
    assert seen["scene"].labels is None
    shots = seen["train"] > 0
    assert shots.sum() == split.num_train
    assert np.array_equal(seen["train"][shots], scene.labels[shots])
    assert not (shots & (split.test > 0)).any()


@pytest.mark.parametrize("method", [GRAPH, DAFT, PRIOR])
def test_predictions_do_not_move_when_every_test_label_changes(scene, method, tmp_path) -> None:
    split = few_shot_split(scene.labels, 2, 0)
    base, _, pred = _through_the_runner(method, scene, split, tmp_path / "a")
    # Every test label replaced by another class; the shots stay.
    K = int(scene.labels.max())
    test = split.test > 0
    scrambled = scene.labels.copy()
    scrambled[test] = scene.labels[test] % K + 1
    other = replace(scene, labels=scrambled)
    split2 = replace(split, test=np.where(test, scrambled, 0))
    changed, _, pred2 = _through_the_runner(method, other, split2, tmp_path / "b")
    assert np.array_equal(pred, pred2)
    # The scores differ only because the references differ (a method that read the test labels
    # would have followed them): every pixel right before is wrong now.
    assert changed["oa"] <= 1.0 - base["oa"] + 1e-9


def test_shuffled_pixel_order_scores_identically(scene) -> None:
    split = few_shot_split(scene.labels, 2, 0)
    test = np.where(scene.valid, split.test, 0)
    tr, tc = np.nonzero(test)
    predict, _ = runner._fit(METHODS[GRAPH], replace(scene, labels=None), split.train, 0, OPTS)
    pred = np.zeros_like(test)
    pred[tr, tc] = predict(tr, tc)
    perm = np.random.default_rng(0).permutation(tr.size)
    shuffled = np.zeros_like(test)
    shuffled[tr[perm], tc[perm]] = predict(tr[perm], tc[perm])
    assert np.array_equal(pred, shuffled)
    assert evaluate(test, pred).oa == evaluate(test, shuffled).oa
