"""Tests of the representation benchmark (hsizoo.method.probe, hsizoo.bench.probe_run): the
read-outs measure what they claim, backbones load from every kind of spec, results are stored,
kept and tabled with the paired comparison against random initialisation."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsizoo.bench.backbones import load_backbone
from hsizoo.method.probe import PROBES, embed_scene, probe_features, probe_model
from hsizoo.bench.probe_run import load_probe_results, probe_table, run_probe_benchmark

pt = importlib.import_module("hsizoo.pretrain")
SPEC = "simulated:enmap:24x24:1"


@pytest.fixture(scope="module")
def scene():
    return pt.load_scene_spec(SPEC)


def _class_features(scene, noise: float, seed: int = 0) -> np.ndarray:
    """Features that are a one-hot of the pixel's class plus noise (rows in valid order)."""
    rng = np.random.default_rng(seed)
    lab = np.asarray(scene.labels)[scene.valid]
    K = int(lab.max()) + 1
    return np.eye(K, dtype=np.float32)[lab] * 3 + noise * rng.standard_normal((lab.size, K)
                                                                             ).astype(np.float32)


def test_readouts_separate_separable_features_and_not_noise(scene) -> None:
    good = probe_features(_class_features(scene, 0.3), scene, 5, 0)
    assert set(good.oa) == set(PROBES)
    for name in ("linear", "knn", "lp"):
        assert good.oa[name] > 95, (name, good.oa)
    # Smoothing over a 24 x 24 map blurs the class borders, but keeps most pixels.
    assert good.oa["linear_smooth"] > 75
    K = int(np.asarray(scene.labels).max())
    noise = np.random.default_rng(1).standard_normal((int(scene.valid.sum()), 16)
                                                     ).astype(np.float32)
    bad = probe_features(noise, scene, 5, 0, probes=("linear", "knn"))
    assert set(bad.oa) == {"linear", "knn"}
    assert bad.oa["linear"] < 100 / K + 25 and bad.oa["knn"] < 100 / K + 25
    assert good.num_train == 5 * K and good.num_test + good.num_train == int(
        (np.asarray(scene.labels)[scene.valid] > 0).sum())


def test_probe_features_checks_its_input(scene) -> None:
    with pytest.raises(ValueError, match="feature rows"):
        probe_features(np.zeros((3, 4), np.float32), scene, 5, 0)
    with pytest.raises(ValueError, match="Unknown probe"):
        probe_features(_class_features(scene, 0.1), scene, 5, 0, probes=("svm",))


def test_backbones_load_from_arch_tag_folder_and_run(tmp_path: Path, scene) -> None:
    a, desc = load_backbone("s2former_test", seed=1)
    b, _ = load_backbone("s2former_test", seed=1)
    c, _ = load_backbone("s2former_test", seed=2)
    assert "random init" in desc and a.num_classes == 0 and not a.training
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # A pretraining run folder (while it trains) and its export give the same encoder.
    res = pt.pretrain([scene], tmp_path / "run", steps=3, progress=False, model="s2former_test",
                      batch_size=8)
    run, desc = load_backbone(str(tmp_path / "run"))
    assert "step 3" in desc
    exported = pt.export_pretrained(tmp_path / "run", tmp_path / "export", tag="t")
    folder, _ = load_backbone(str(exported))
    want = res.encoder.state_dict()
    for m in (run, folder):
        got = m.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
    with pytest.raises(ValueError, match="Unknown model"):
        load_backbone("resnet_nonexistent")
    with pytest.raises(ValueError, match="no pretrained weights"):
        load_backbone("s2former_test.nonexistent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a model folder"):
        load_backbone(str(tmp_path / "empty"))


def test_embed_scene_matches_the_model_forward(scene) -> None:
    from hsizoo.data.patches import gather_patches, prepare_cube
    from hsizoo.spectral.grid import band_stats

    model, _ = load_backbone("s2former_test", seed=0)
    feats = embed_scene(model, scene)
    valid = np.asarray(scene.valid)
    assert feats.shape == (int(valid.sum()), model.num_features)
    rows, cols = np.nonzero(valid)
    padded = prepare_cube(band_stats(scene.cube, valid).apply(scene.cube), valid,
                          model.patch_size)
    pick = np.array([0, 17, rows.size - 1])
    with torch.no_grad():
        ref = model(gather_patches(padded, rows[pick], cols[pick], model.patch_size),
                    scene.wavelengths)
    np.testing.assert_allclose(feats[pick], ref.numpy(), rtol=1e-4, atol=1e-4)
    curve = probe_model(model, scene, shots=(1, 5), seeds=(0, 1))
    assert set(curve) == {1, 5} and all(0 <= v <= 100 for v in curve.values())


def test_benchmark_stores_keeps_and_tables_paired_results(tmp_path: Path, scene,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    out = tmp_path / "probe"
    lines: list[str] = []
    files = run_probe_benchmark(["s2former_test"], [SPEC], shots=(5,), seeds=(0, 1),
                                out_dir=out, log=lines.append)
    rec = json.loads(files[0].read_text())
    assert rec["random_init"] and rec["seeds"] == [0, 1] and len(rec["runs"]) == 2
    assert set(rec["runs"][0]["oa"]) == set(PROBES)
    # A second call keeps the file; other seeds recompute it.
    mtime = files[0].stat().st_mtime_ns
    run_probe_benchmark(["s2former_test"], [SPEC], shots=(5,), seeds=(0, 1), out_dir=out,
                        log=lines.append)
    assert files[0].stat().st_mtime_ns == mtime and "kept" in lines[-1]
    # A "pretrained" backbone: a model folder of the same architecture.
    model, _ = load_backbone("s2former_test", seed=7)
    from hsizoo.hub.save import save_pretrained

    folder = save_pretrained(model, tmp_path / "s2former_test.other")
    run_probe_benchmark([str(folder)], [SPEC], shots=(5,), seeds=(0, 1), out_dir=out,
                        log=lines.append)
    records = load_probe_results(out)
    assert len(records) == 2
    table = probe_table(records, SPEC, 5)
    assert "(random init)" in table and "seeds better" in table
    row = [ln for ln in table.splitlines() if str(folder.name) in ln][0]
    mine = {r["seed"]: r["oa"]["linear"] for r in records if not r["random_init"]
            for r in r["runs"]}
    base = {r["seed"]: r["oa"]["linear"] for r in records if r["random_init"] for r in r["runs"]}
    diff = np.mean([mine[s] - base[s] for s in (0, 1)])
    assert f"{diff:+.1f}" in row
    from hsizoo.bench.probe_run import probe_rows

    card = probe_rows(records, str(folder))
    assert len(card) == 1 and card[0]["shots"] == 5 and card[0]["seeds"] == 2
    assert card[0]["linear gain (paired)"] == pytest.approx(diff, abs=0.051)
    assert probe_rows(records, "s2former_test") == []  # random init rows are the baseline
    # Weights retrained into the same folder: the stored result is not theirs, so it is
    # recomputed, and card rows count only results of the sha256 they are given.
    from hsizoo.io.atomic import file_sha256

    old_sha = file_sha256(folder / "model.safetensors")
    assert probe_rows(records, str(folder), old_sha) == card
    assert probe_rows(records, str(folder), "0" * 64) == []
    retrained, _ = load_backbone("s2former_test", seed=8)
    save_pretrained(retrained, folder, overwrite=True)
    run_probe_benchmark([str(folder)], [SPEC], shots=(5,), seeds=(0, 1), out_dir=out,
                        log=lines.append)
    assert "kept" not in lines[-1]
    new = [r for r in load_probe_results(out) if not r["random_init"]]
    assert len(new) == 1 and new[0]["weights_sha256"] == file_sha256(folder / "model.safetensors")
    assert new[0]["weights_sha256"] != old_sha
    import dataclasses

    unlabelled = dataclasses.replace(scene, labels=None)
    monkeypatch.setattr(pt, "load_scene_spec", lambda spec, root=None: unlabelled)
    with pytest.raises(ValueError, match="no labels"):
        run_probe_benchmark(["s2former_test"], ["unlabelled"], out_dir=out)


def test_pretrain_probe_curve_is_logged_resumed_plotted_and_carded(tmp_path: Path, scene
                                                                   ) -> None:
    run = tmp_path / "run"
    recipe = dict(model="s2former_test", batch_size=8, steps=4, progress=False)
    pt.pretrain([scene], run, until_step=2, probe=scene, probe_every=2, **recipe)
    assert [r["step"] for r in pt.read_probe_log(run)] == [0, 2]
    # A killed run may have probed past its checkpoint: those records are dropped on resume.
    with open(run / pt.PROBE_LOG, "a") as fh:
        fh.write(json.dumps({"step": 3, "linear_oa": 1.0, "scene": "x", "shots": 5,
                             "seeds": [0]}) + "\n")
    pt.pretrain([scene], run, resume=True, probe=scene, probe_every=2, **recipe)
    recs = pt.read_probe_log(run)
    assert [r["step"] for r in recs] == [0, 2, 4]
    assert all(0 <= r["linear_oa"] <= 100 and r["shots"] == 5 for r in recs)
    png = pt.plot_loss_curve(run)
    from PIL import Image

    w, h = Image.open(png).size
    assert w > 1.5 * h  # two panels: loss and probe curve
    folder = pt.export_pretrained(run, tmp_path / "export", tag="p")
    config = json.loads((folder / "config.json").read_text())
    assert config["probe_curve"]["steps"] == [0, 2, 4]
    assert "Probe curve while training" in (folder / "README.md").read_text()
    unlabelled = __import__("dataclasses").replace(scene, labels=None)
    with pytest.raises(ValueError, match="no labels"):
        pt.pretrain([scene], tmp_path / "run2", probe=unlabelled, **recipe)


def test_card_renders_the_probe_table_and_curve() -> None:
    from hsizoo.hub.card import render_model_card

    card = render_model_card({
        "architecture": "s2former_tiny", "tag": "x",
        "probe_curve": {"scene": "indian_pines", "shots": 5, "seeds": [100, 101, 102],
                        "steps": [0, 500], "linear_oa": [40.8, 62.0]},
        "probe": [{"scene": "indian_pines", "shots": 5, "seeds": 10, "linear": 63.1,
                   "linear, random init": 43.4, "linear gain (paired)": 19.7}]})
    assert "40.8 % at step 0, 62.0 % at step 500" in card
    assert "## Representation probe (frozen features)" in card
    assert "| indian_pines | 5 | 10 | 63.1 | 43.4 | 19.7 |" in card


def test_graph_probe_on_the_spectra_is_the_label_propagation_baseline(scene) -> None:
    """The graph probe's reference row (spectra, ``lp_pos``) is exactly the harness's
    ``label_propagation`` baseline on the same split: the probe judges checkpoints against the
    very graph a user would otherwise run."""
    from hsizoo.data.splits import few_shot_split
    from hsizoo.method.probe import GRAPH_PROBES, scene_graphs, spectra_features
    from hsizoo.method.transduction import TransductionConfig, propagate_from_shots
    from hsizoo.spectral.grid import band_stats

    spectra = spectra_features(scene)
    valid = np.asarray(scene.valid)
    assert spectra.shape == (int(valid.sum()), scene.cube.shape[-1])
    got = probe_features(spectra, scene, 5, 3, probes=GRAPH_PROBES)
    assert set(got.oa) == set(GRAPH_PROBES)
    labels = np.where(valid, np.asarray(scene.labels), 0)
    split = few_shot_split(labels, 5, 3)
    K = int(labels.max())
    std = band_stats(scene.cube, valid).apply(scene.cube)
    _, probs = propagate_from_shots(std, valid, split.train, K, TransductionConfig())
    test = split.test[valid]
    want = 100.0 * np.mean(probs.argmax(1)[test > 0] + 1 == test[test > 0])
    assert got.oa["lp_pos"] == pytest.approx(want, abs=1e-9)
    # Graphs passed in are used as given: the same scores from prebuilt graphs.
    graphs = scene_graphs(spectra, scene)
    assert set(graphs) == set(GRAPH_PROBES)
    assert probe_features(spectra, scene, 5, 3, probes=GRAPH_PROBES, graph=graphs).oa == got.oa


def test_graph_probe_rewards_features_that_carry_the_classes(scene) -> None:
    """Features that know the classes lift the joined scene graph above the spectra's own
    graph; pure noise in place of the spectra (``lp_pos``) falls below it."""
    from hsizoo.method.probe import spectra_features

    ref = probe_features(spectra_features(scene), scene, 5, 0, probes=("lp_pos",)).oa["lp_pos"]
    good = probe_features(_class_features(scene, 0.3), scene, 5, 0,
                          probes=("lp_pos", "lp_joint")).oa
    assert good["lp_pos"] > ref + 5 and good["lp_joint"] > max(ref + 10, 95), (ref, good)
    noise = np.random.default_rng(2).standard_normal((int(scene.valid.sum()), 8)
                                                     ).astype(np.float32)
    assert probe_features(noise, scene, 5, 0, probes=("lp_pos",)).oa["lp_pos"] < ref - 10
    with pytest.raises(ValueError, match="feature rows"):
        from hsizoo.method.probe import scene_graphs

        scene_graphs(noise[:5], scene, ("lp_pos",))


def test_stored_results_get_new_readouts_added_not_recomputed(tmp_path: Path, scene) -> None:
    """A file written before the graph probe keeps its scores; only the missing read-outs are
    computed and merged, and the table compares every backbone's ``lp_pos`` with the spectra's."""
    from hsizoo.method.probe import SPECTRA

    out = tmp_path / "probe"
    lines: list[str] = []
    first = run_probe_benchmark(["s2former_test"], [SPEC], shots=(5,), seeds=(0, 1),
                                out_dir=out, log=lines.append, probes=("linear",))
    before = json.loads(first[0].read_text())
    assert before["probes"] == ["linear"] and set(before["runs"][0]["oa"]) == {"linear"}
    run_probe_benchmark(["s2former_test", SPECTRA], [SPEC], shots=(5,), seeds=(0, 1),
                        out_dir=out, log=lines.append, probes=("linear", "lp_pos"))
    after = json.loads(first[0].read_text())
    assert after["probes"] == ["linear", "lp_pos"] and "lp_pos" in after["added"]
    for old, new in zip(before["runs"], after["runs"]):
        assert new["oa"]["linear"] == old["oa"]["linear"] and "lp_pos" in new["oa"]
    ref = json.loads((out / first[0].parent.name / "spectra.json").read_text())
    assert not ref["random_init"] and ref["weights_sha256"] is None
    # Everything asked for is there now: kept.
    run_probe_benchmark(["s2former_test"], [SPEC], shots=(5,), seeds=(0, 1), out_dir=out,
                        log=lines.append, probes=("linear", "lp_pos"))
    assert "kept" in lines[-1]
    table = probe_table(load_probe_results(out), SPEC, 5, probes=("linear", "lp_pos"))
    assert "lp_pos vs spectra" in table and "standardised spectra" in table
    row = [ln for ln in table.splitlines() if "(random init)" in ln][0]
    d = np.mean([a["oa"]["lp_pos"] - b["oa"]["lp_pos"]
                 for a, b in zip(after["runs"], ref["runs"])])
    assert f"{d:+.1f}" in row
    # Read-outs a record lacks show as a dash, not an error.
    assert "–" in probe_table(load_probe_results(out), SPEC, 5, probes=("knn",))
