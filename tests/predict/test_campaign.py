"""Maps of many scenes on many workers (hsizoo.predict.campaign): shares, parts, resume, COGs,
VRT mosaics, manifests, and torchrun with two gloo processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scenes import WL, three_class_scene

from hsizoo.predict.campaign import PARTS, Campaign, map_scenes, parse_shard, plan_units

# Three scenes of odd sizes, two in one UTM zone (side by side), one in another.
SCENES = [("a", 37, 23, "EPSG:32616", 500_000.0, 1), ("b", 19, 41, "EPSG:32616", 500_460.0, 2),
          ("c", 29, 17, "EPSG:32633", 300_000.0, 3)]
UNIT_MB = 0.01  # a few rows per unit, so that every scene is cut into several units
UNIT = dict(max_unit_mb=UNIT_MB, min_unit_rows=4)


def _write_scene(path: Path, h: int, w: int, crs: str, x0: float, seed: int) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    s = three_class_scene(h, w, seed)
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=WL.size,
                       dtype="float32", crs=crs, transform=from_origin(x0, 4.2e6, 20.0, 20.0)) as ds:
        ds.write(np.moveaxis(s.cube, 2, 0))
        ds.update_tags(ns="ENVI", wavelength="{" + ",".join(f"{v:g}" for v in WL) + "}",
                       **{"wavelength units": "Nanometers"})
    return path


@pytest.fixture(scope="module")
def campaign_inputs(tmp_path_factory) -> tuple[Path, list[Path]]:
    import hsizoo

    root = tmp_path_factory.mktemp("campaign")
    ft = hsizoo.finetune(three_class_scene(), shots=3, model="s2former_test", pretrained=False,
                         steps=5, head_steps=5, progress=False)
    ft.save_pretrained(root / "model")
    scenes = [_write_scene(root / f"{n}.tif", h, w, crs, x0, s) for n, h, w, crs, x0, s in SCENES]
    return root / "model", scenes


@pytest.fixture(scope="module")
def reference(campaign_inputs, tmp_path_factory) -> dict[str, np.ndarray]:
    """Each scene mapped alone by one process, streamed (what `hsizoo predict --out` does)."""
    import rasterio

    from hsizoo.finetune import load_finetuned

    model, scenes = campaign_inputs
    ft, out = load_finetuned(model), tmp_path_factory.mktemp("reference")
    maps = {}
    for s in scenes:
        ft.predict(str(s), out_path=out / s.name, progress=False)
        with rasterio.open(out / s.name) as ds:
            maps[s.stem] = ds.read(1)
    return maps


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith(".") or PARTS in p.parts or "partial" in p.name)


def _check_outputs(out: Path, reference: dict[str, np.ndarray]) -> None:
    import rasterio

    for name, h, w, crs, x0, _ in SCENES:
        with rasterio.open(out / f"{name}.tif") as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.shape == (h, w) and ds.crs.to_string() == crs and ds.transform.c == x0
            assert ds.nodata == 0 and ds.colormap(1)[1][:3] and json.loads(
                ds.tags()["CLASS_NAMES"]) == ["rising", "falling", "wavy"]
            np.testing.assert_array_equal(ds.read(1), reference[name])
        # the legend GDAL and QGIS read (hsizoo.io.legend), committed beside the COG
        legend = (out / f"{name}.tif.aux.xml").read_text()
        assert "<Category>falling</Category>" in legend and "GDALRasterAttributeTable" in legend
    assert not list(out.glob(".*.aux.xml")) and not list(out.glob("*partial*"))
    vrts = sorted(p.name for p in out.glob("mosaic*.vrt"))
    assert vrts == ["mosaic_epsg_32616.vrt", "mosaic_epsg_32633.vrt"]
    with rasterio.open(out / "mosaic_epsg_32616.vrt") as v:
        assert v.shape == (37, 64) and v.crs.to_string() == "EPSG:32616"
        whole = v.read(1)
    np.testing.assert_array_equal(whole[:37, :23], reference["a"])
    np.testing.assert_array_equal(whole[:19, 23:], reference["b"])
    assert _leftovers(out) == []


def _manifest_units(out: Path) -> list[tuple[str, int, int]]:
    done = []
    for m in out.glob("manifests/*/worker-*.json"):
        done += [(u["scene"], *u["rows"]) for u in json.loads(m.read_text())["units"]]
    return done


def test_units_are_fixed_by_the_scenes_and_shared_without_duplicates() -> None:
    # 0.01 MiB = 9 rows of a: five even bands of 7-8 rows tile it (not 9+9+9+9+1)
    units = plan_units([("a", 37, 23, 12), ("b", 19, 41, 12)], max_unit_mb=0.01, min_rows=1)
    a = [(u.row0, u.row1) for u in units if u.stem == "a"]
    assert a[0][0] == 0 and a[-1][1] == 37 and all(p[1] == q[0] for p, q in zip(a, a[1:]))
    assert {r1 - r0 for r0, r1 in a} <= {7, 8} and len(a) == 5 and units[-1].row1 == 19
    # never thinner than min_rows (a very wide scene), never a band past the scene
    wide = plan_units([("w", 37, 5000, 224)], max_unit_mb=1.0, min_rows=16)
    assert [(u.row0, u.row1) for u in wide] == [(0, 18), (18, 37)]
    units = plan_units([("a", 37, 23, 12), ("b", 19, 41, 12)], max_unit_mb=0.01)
    for world in (1, 2, 3, 7):
        shares = [units[r::world] for r in range(world)]
        flat = [u for s in shares for u in s]
        assert sorted(flat, key=units.index) == units and len(flat) == len(units)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="I/N|0 <= I < N"):
            parse_shard(bad)


def test_one_worker_maps_every_scene_as_cogs_with_a_vrt_per_crs(campaign_inputs, reference,
                                                                 tmp_path) -> None:
    model, scenes = campaign_inputs
    manifest = map_scenes(model, scenes, tmp_path, confidence=True, **UNIT,
                          progress=False)
    _check_outputs(tmp_path, reference)
    assert sorted(manifest["assembled"]) == ["a", "b", "c"]
    assert (tmp_path / "confidence_mosaic_epsg_32633.vrt").is_file()
    plan = plan_units([(n, h, w, WL.size) for n, h, w, *_ in SCENES], UNIT_MB, 4)
    assert sorted(_manifest_units(tmp_path)) == sorted((u.stem, u.row0, u.row1) for u in plan)


def test_shards_and_a_rerun_after_a_lost_worker_redo_only_what_is_missing(
        campaign_inputs, reference, tmp_path) -> None:
    model, scenes = campaign_inputs
    # Worker 1 of 2 runs; worker 0 dies before doing anything.
    m1 = map_scenes(model, scenes, tmp_path, shard="1/2", **UNIT, progress=False,
                    run_id="first")
    assert m1["units"] and not m1["assembled"] and not list(tmp_path.glob("*.tif"))
    first = {(u["scene"], *u["rows"]) for u in m1["units"]}
    # The rerun (any number of workers; here one) does only the other units.
    m2 = map_scenes(model, scenes, tmp_path, **UNIT, progress=False, run_id="second")
    second = {(u["scene"], *u["rows"]) for u in m2["units"]}
    assert not first & second
    plan = plan_units([(n, h, w, WL.size) for n, h, w, *_ in SCENES], UNIT_MB, 4)
    assert first | second == {(u.stem, u.row0, u.row1) for u in plan}
    _check_outputs(tmp_path, reference)
    # A lost output: only that scene is redone; finished scenes are left untouched.
    stamp = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("[ab].tif")}
    (tmp_path / "c.tif").unlink()
    m3 = map_scenes(model, scenes, tmp_path, **UNIT, progress=False, run_id="third")
    assert {u["scene"] for u in m3["units"]} == {"c"} and m3["assembled"] == ["c"]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("[ab].tif")} == stamp
    _check_outputs(tmp_path, reference)


def test_scenes_with_one_file_name_are_refused(campaign_inputs, tmp_path) -> None:
    from hsizoo.finetune import load_finetuned

    model, scenes = campaign_inputs
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / scenes[0].name
    twin.write_bytes(scenes[0].read_bytes())
    with pytest.raises(ValueError, match="distinct"):
        Campaign(load_finetuned(model), [scenes[0], twin], tmp_path / "out")


def test_torchrun_two_gloo_workers_map_the_campaign_like_one_process(
        campaign_inputs, reference, tmp_path) -> None:
    model, scenes = campaign_inputs
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "hsizoo", "predict", str(model), *map(str, scenes), "--out-dir", str(tmp_path),
           "--max-unit-mb", str(UNIT_MB), "--quiet", "--device", "cpu"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    _check_outputs(tmp_path, reference)
    manifests = sorted(tmp_path.glob("manifests/*/worker-*.json"))
    assert [m.name for m in manifests] == ["worker-0-of-2.json", "worker-1-of-2.json"]
    units = _manifest_units(tmp_path)
    assert len(units) == len(set(units)) == len(plan_units(
        [(n, h, w, WL.size) for n, h, w, *_ in SCENES], UNIT_MB))
    assert all(json.loads(m.read_text())["units"] for m in manifests)  # both worked
    # each rank assembled its share of the scenes, every scene once
    assembled = [s for m in manifests for s in json.loads(m.read_text())["assembled"]]
    assert sorted(assembled) == ["a", "b", "c"]


def test_cli_shards_and_refusals(campaign_inputs, reference, tmp_path, capsys) -> None:
    from hsizoo.cli import main

    model, scenes = campaign_inputs
    args = ["predict", str(model), *map(str, scenes), "--quiet", "--max-unit-mb", str(UNIT_MB)]
    assert main(args + ["--out", str(tmp_path / "x.tif")]) == 2
    assert "--out-dir" in capsys.readouterr().err
    assert main(args + ["--out-dir", str(tmp_path), "--shard", "2/2"]) == 2
    assert "0 <= I < N" in capsys.readouterr().err
    for shard in ("0/2", "1/2"):  # two jobs of a scheduler's array, no process group
        assert main(args + ["--out-dir", str(tmp_path), "--shard", shard]) == 0
    assert "mosaics: mosaic_epsg_32616.vrt" in capsys.readouterr().out
    _check_outputs(tmp_path, reference)


def test_maps_of_another_model_are_not_counted_as_done(campaign_inputs, tmp_path) -> None:
    import rasterio

    import hsizoo
    from hsizoo.predict.campaign import MODEL_TAG

    model, scenes = campaign_inputs
    map_scenes(model, scenes[:1], tmp_path, progress=False, **UNIT)
    with rasterio.open(tmp_path / "a.tif") as ds:
        first = ds.tags()[MODEL_TAG]
    other = hsizoo.finetune(three_class_scene(), shots=3, model="s2former_test",
                            pretrained=False, steps=5, head_steps=5, seed=7, progress=False)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(FileExistsError, match="another model"):
        map_scenes(tmp_path / "other", scenes[:1], tmp_path, progress=False, **UNIT)
    map_scenes(tmp_path / "other", scenes[:1], tmp_path, progress=False, overwrite=True, **UNIT)
    with rasterio.open(tmp_path / "a.tif") as ds:
        assert ds.tags()[MODEL_TAG] != first
    map_scenes(tmp_path / "other", scenes[:1], tmp_path, progress=False, **UNIT)  # same model: done
