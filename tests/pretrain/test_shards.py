"""Tests of patch shards: ``hsizoo shard-scenes`` (hsizoo.pretrain.shards) and pretraining from
them (hsizoo.pretrain.shard_data, ``pretrain(shards=...)``, ``hsizoo pretrain --shards``).

Small GeoTIFFs of two sensors (one with a nodata block) are cut window by window; the shards are
checked against the files and against the in-memory path, then a tiny ``s2former_test`` is
pretrained from them on one process and on two gloo ranks, with a resume.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest_io import write_geotiff

pt = importlib.import_module("hsizoo.pretrain")
from hsizoo.pretrain.shard_data import SHARD_READS, ShardData  # noqa: E402
from hsizoo.pretrain.shards import INDEX, read_shard_index, shard_scenes  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = dict(model="s2former_test", batch_size=4, lr=3e-3, seed=3)
CUT = dict(patch_size=5, patches_per_shard=60, window_size=7)
NODATA = -9999.0
HOLE = (slice(2, 6), slice(3, 9))  # the nodata block of scene a


def _write(path: Path, sensor: str, shape: tuple[int, int], seed: int,
           hole: bool = False) -> Path:
    import hsizoo

    sim = hsizoo.simulate_scene(shape, sensor=sensor, seed=seed)
    cube = sim.cube.astype(np.float32).copy()
    if hole:
        cube[HOLE] = NODATA
    tags = [dict(wavelength=f"{w:.3f}", wavelength_units="nm") for w in sim.wavelengths]
    return write_geotiff(path, cube, band_tags=tags, nodata=NODATA)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("scenes")
    return [_write(d / "a.tif", "enmap", (16, 18), 1, hole=True),
            _write(d / "b.tif", "rosis", (13, 15), 2),
            _write(d / "c.tif", "enmap", (12, 15), 3)]


@pytest.fixture(scope="module")
def cut(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "out"
    shard_scenes(files, out, **CUT)
    return out


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


# --------------------------------------------------------------------------- cutting
def test_index_shapes_and_nodata_centres(files: list[Path], cut: Path) -> None:
    from hsizoo.io import read_scene
    from hsizoo.io.atomic import file_sha256

    index = read_shard_index(cut)
    assert index["format"] == "hsizoo-patch-shards" and index["version"] == 1
    assert {k: index[k] for k in CUT} == CUT and index["max_patches_per_scene"] is None
    assert [Path(s["source"]["path"]).name for s in index["scenes"]] == ["a.tif", "b.tif", "c.tif"]
    n_shards = 0
    for s, f in zip(index["scenes"], files):
        scene = read_scene(f)
        np.testing.assert_allclose(s["wavelengths"], scene.wavelengths, atol=1e-3)
        assert s["num_bands"] == scene.cube.shape[2] and s["patches"] == s["valid_pixels"]
        assert s["valid_pixels"] == int(scene.valid.sum())  # one patch per valid pixel
        mine = [e for e in index["shards"] if e["scene"] == s["key"]]
        assert [e["file"] for e in mine] == s["shards"]
        assert [e["patches"] for e in mine][:-1] == [60] * (len(mine) - 1)
        assert sum(e["patches"] for e in mine) == s["patches"]
        n_shards += len(mine)
        seen = set()
        for e in mine:
            x = np.load(cut / e["file"], mmap_mode="r")
            assert isinstance(x, np.memmap) and x.dtype == np.float32
            assert list(x.shape) == e["shape"] == [e["patches"], 5, 5, s["num_bands"]]
            assert file_sha256(cut / e["file"]) == e["sha256"]
            cen = np.load(cut / e["centres"])
            assert cen.shape == (e["patches"], 2)
            # Every centre is a valid pixel, and the patch centre holds its raw spectrum.
            assert scene.valid[cen[:, 0], cen[:, 1]].all()
            np.testing.assert_array_equal(x[:, 2, 2], scene.cube[cen[:, 0], cen[:, 1]])
            seen |= set(map(tuple, cen))
        assert len(seen) == s["patches"]
    assert len(index["shards"]) == n_shards
    # Scene a: no centre in the nodata block, whose pixels are NaN in the patches around it.
    a = index["shards"][0]
    cen = np.load(cut / a["centres"])
    r, c = cen[:, 0], cen[:, 1]
    assert not ((r >= 2) & (r < 6) & (c >= 3) & (c < 9)).any()
    x = np.load(cut / a["file"])
    near = np.flatnonzero((r == 6) & (c == 5))[0]  # just below the hole: its top rows are NaN
    assert np.isnan(x[near, :2, 1:4]).all() and np.isfinite(x[near, 2:]).all()
    assert not list(cut.glob(".*partial*"))


def test_shard_patches_match_the_in_memory_path(files: list[Path], cut: Path) -> None:
    from hsizoo.data.patches import gather_patches
    from hsizoo.io import read_scene

    enc = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder
    data = ShardData(cut, enc)
    index = read_shard_index(cut)
    for si, (s, f) in enumerate(zip(index["scenes"], files)):
        mem = pt.PretrainData([read_scene(f)], enc)
        for e in (e for e in index["shards"] if e["scene"] == s["key"]):
            cen = np.load(cut / e["centres"])
            full, valid = data._canonical(si, np.load(cut / e["file"]))
            ref = gather_patches(mem.cubes[0], cen[:, 0], cen[:, 1], 5)
            ref_valid = gather_patches(mem.valids[0], cen[:, 0], cen[:, 1], 5)[:, 0]
            torch.testing.assert_close(full, ref, rtol=1e-5, atol=1e-5)
            assert torch.equal(valid, ref_valid)


def test_max_patches_per_scene_is_a_seeded_choice(files: list[Path], tmp_path: Path) -> None:
    def centres(out: Path) -> list[tuple[int, int]]:
        index = read_shard_index(out)
        return [tuple(x) for e in index["shards"] for x in np.load(out / e["centres"])]

    opts = dict(patch_size=5, patches_per_shard=16, max_patches_per_scene=40)
    one = shard_scenes(files[:2], tmp_path / "one", seed=1, **opts)
    assert [s["patches"] for s in one["scenes"]] == [40, 40]
    assert [e["patches"] for e in one["shards"]] == [16, 16, 8, 16, 16, 8]
    same = shard_scenes(files[:2], tmp_path / "same", seed=1, **opts)
    assert centres(tmp_path / "one") == centres(tmp_path / "same")
    assert [e["sha256"] for e in one["shards"]] == [e["sha256"] for e in same["shards"]]
    shard_scenes(files[:2], tmp_path / "other", seed=2, **opts)
    assert centres(tmp_path / "one") != centres(tmp_path / "other")


def test_rerun_rewrites_nothing_and_recuts_a_damaged_shard(files: list[Path],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = shard_scenes(files, out, **CUT)
    assert len(first["written"]) == 3 and not first["skipped"]
    before = _stamps(out)
    again = shard_scenes(files, out, **CUT)
    assert again["skipped"] == first["written"] and not again["written"]
    assert _stamps(out) == before  # not one file rewritten, the index included
    # A damaged shard of scene b: only b is cut again, to the same bytes.
    b_shard = out / first["shards"][[e["scene"] for e in first["shards"]].index(
        first["scenes"][1]["key"])]["file"]
    good = b_shard.read_bytes()
    with open(b_shard, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02\x03")
    fixed = shard_scenes(files, out, **CUT)
    assert fixed["written"] == [first["scenes"][1]["key"]]
    assert b_shard.read_bytes() == good
    after = _stamps(out)
    untouched = [n for n in before if first["scenes"][1]["key"] not in n and n != INDEX]
    assert all(after[n] == before[n] for n in untouched)
    # Other options into the same folder are refused, naming the difference.
    with pytest.raises(ValueError, match=r"patch_size=5 \(asked 7\)"):
        shard_scenes(files, out, **{**CUT, "patch_size": 7})
    # A scene added later is appended; the earlier ones stay.
    extra = _write(tmp_path / "d.tif", "enmap", (9, 9), 4)
    grown = shard_scenes([extra], out, **CUT)
    assert len(grown["scenes"]) == 4 and grown["skipped"] == [] and len(grown["written"]) == 1


def test_envi_and_geotiff_of_one_cube_give_the_same_shards(tmp_path: Path) -> None:
    import hsizoo
    from conftest_io import write_envi

    sim = hsizoo.simulate_scene((10, 11), sensor="rosis", seed=5)
    cube = sim.cube.astype(np.float32).copy()
    cube[4:6, 0:3] = NODATA
    tags = [dict(wavelength=f"{w:.3f}", wavelength_units="nm") for w in sim.wavelengths]
    tif = write_geotiff(tmp_path / "s.tif", cube, band_tags=tags, nodata=NODATA)
    hdr, _ = write_envi(tmp_path / "s", cube, sim.wavelengths, nodata=NODATA)
    a = shard_scenes([tif], tmp_path / "tif", **CUT)
    b = shard_scenes([hdr], tmp_path / "envi", **CUT)
    assert [e["sha256"] for e in a["shards"]] == [e["sha256"] for e in b["shards"]]
    assert a["scenes"][0]["patches"] == 110 - 6
    np.testing.assert_allclose(a["scenes"][0]["wavelengths"], b["scenes"][0]["wavelengths"],
                               atol=1e-3)


def test_cli_shard_scenes(files: list[Path], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from hsizoo.cli import main

    out = tmp_path / "cli"
    rc = main(["shard-scenes", str(files[1]), "--out", str(out), "--patch-size", "5",
               "--patches-per-shard", "50", "--max-patches-per-scene", "120", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == dict(out=str(out), scenes=1, shards=3, patches=120, written=1, skipped=0)
    assert main(["shard-scenes", str(files[1]), "--out", str(tmp_path / "x"), "--patch-size",
                 "4", "--patches-per-shard", "50"]) == 2
    assert "odd" in capsys.readouterr().err
    assert main(["shard-scenes", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "x"),
                 "--patch-size", "5", "--patches-per-shard", "50"]) == 2


# --------------------------------------------------------------------------- sampling
def test_sampling_is_counter_based_and_each_rank_opens_only_its_shards(cut: Path) -> None:
    enc = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder
    files = [e["file"] for e in read_shard_index(cut)["shards"]]
    ranks = [ShardData(cut, enc, rank=r, world_size=2) for r in (0, 1)]
    for r, data in enumerate(ranks):
        assert data.owned == files[r::2]
        a = data.sample(7, 0, 6, 0.7, 0.4, rank=r, world_size=2)
        b = data.sample(7, 0, 6, 0.7, 0.4, rank=r, world_size=2)
        c = data.sample(8, 0, 6, 0.7, 0.4, rank=r, world_size=2)
        assert sum(x.xc.shape[0] for x in a) == 6
        for x, y in zip(a, b):
            assert torch.equal(x.xc, y.xc) and torch.equal(x.spatial_mask, y.spatial_mask)
        assert not torch.equal(torch.cat([x.xc.sum((1, 2, 3)) for x in a]),
                               torch.cat([x.xc.sum((1, 2, 3)) for x in c]))
        assert data.opened and data.opened <= set(data.owned)
        # Two sensors: one SubBatch per covered-grid pattern, each with its own masks.
        for x in a:
            assert (x.spatial_mask.sum(1) == round(0.7 * 25)).all()
            assert (x.spectral_mask.sum(1) >= 1).all()
            assert not x.spectral_mask[:, ~enc.group_presence(x.present)].any()
    assert not ranks[0].opened & ranks[1].opened
    with pytest.raises(ValueError, match=r"shard\(s\) for 99 processes.*patches-per-shard"):
        ShardData(cut, enc, rank=0, world_size=99)
    with pytest.raises(ValueError, match="its own ShardData"):
        ranks[0].sample(0, 0, 4, 0.7, 0.4, rank=1, world_size=2)


def test_views_need_room_in_the_stored_patch(files: list[Path], cut: Path,
                                             tmp_path: Path) -> None:
    enc = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder
    with pytest.raises(ValueError, match="--patch-size 9"):
        ShardData(cut, enc).sample(0, 0, 4, 0.7, 0.4, view_offset=2)
    wide = tmp_path / "wide"
    shard_scenes(files[:1], wide, patch_size=9, patches_per_shard=500, window_size=7)
    data = ShardData(wide, enc)
    plain = data.sample(2, 0, 6, 0.7, 0.4)[0]
    same = data.sample(2, 0, 6, 0.7, 0.4, view_offset=0)[0]
    moved = data.sample(2, 0, 6, 0.7, 0.4, view_offset=2)[0]
    assert torch.equal(plain.xc, same.xc) and same.views.shape == (2, 6, *plain.xc.shape[1:])
    # The shift is drawn after every other draw: the patches stay, the second views move.
    assert torch.equal(moved.xc, plain.xc) and not torch.equal(moved.views[1], same.views[1])
    torch.testing.assert_close(moved.views[0], same.views[0])
    # The 9 x 9 patches cropped to 5 x 5 are the 5 x 5 patches of the same centres.
    small = ShardData(cut, enc)
    idx = read_shard_index(wide)["shards"][0]
    ref = read_shard_index(cut)["shards"][0]
    full9, _ = data._canonical(0, np.load(wide / idx["file"]))
    full5, _ = small._canonical(0, np.load(cut / ref["file"]))
    assert np.array_equal(np.load(wide / idx["centres"])[:60], np.load(cut / ref["centres"]))
    torch.testing.assert_close(full9[:60, :, 2:7, 2:7], full5[:60])


# --------------------------------------------------------------------------- pretraining
def test_pretrain_from_shards_resumes_exactly(cut: Path, tmp_path: Path, files: list[Path]) -> None:
    ref = pt.pretrain(None, tmp_path / "ref", shards=cut, steps=6, progress=False, **RECIPE)
    part = pt.pretrain(None, tmp_path / "part", shards=cut / INDEX, steps=6, until_step=3,
                       progress=False, **RECIPE)
    assert part.step == 3 and part.config.shards == str(cut.resolve())
    done = pt.pretrain(None, tmp_path / "part", resume=True, progress=False)
    assert done.step == 6
    losses = [r["loss"] for r in pt.read_log(tmp_path / "part")]
    assert losses == [r["loss"] for r in pt.read_log(tmp_path / "ref")]
    for k, v in ref.encoder.state_dict().items():
        assert torch.equal(v, done.encoder.state_dict()[k]), k
    reads = json.loads((tmp_path / "part" / SHARD_READS).read_text())
    assert reads["world_size"] == 1 and set(reads["ranks"][0]["opened"]) <= \
        set(reads["ranks"][0]["owned"])
    manifest = json.loads((tmp_path / "part" / "checkpoint.json").read_text())
    assert manifest["config"]["shards"] == str(cut.resolve()) and manifest["shards_index_sha256"]
    # Scenes and shards together are refused; so is a resume on a changed index.
    with pytest.raises(ValueError, match="not both"):
        pt.pretrain([str(files[0])], tmp_path / "both", shards=cut, steps=2, progress=False,
                    **RECIPE)
    grown = tmp_path / "grown"
    shard_scenes(files[:2], grown, **CUT)
    pt.pretrain(None, tmp_path / "g", shards=grown, steps=4, until_step=1, progress=False,
                **RECIPE)
    shard_scenes(files[2:], grown, **CUT)
    with pytest.raises(ValueError, match="shard index .* changed"):
        pt.pretrain(None, tmp_path / "g", resume=True, progress=False)


_DRIVER = '''
import json, os, sys
import torch.distributed as dist
from safetensors.torch import save_file

dist.init_process_group("gloo")  # held here, so the three runs share one launch
from hsizoo.pretrain import pretrain

out, shards = sys.argv[1], sys.argv[2]
recipe = dict(model="s2former_test", batch_size=3, lr=3e-3, seed=3, steps=5, progress=False)
pretrain(None, os.path.join(out, "ref"), shards=shards, **recipe)
pretrain(None, os.path.join(out, "part"), shards=shards, until_step=2, **recipe)
rank = int(os.environ["RANK"])
if rank == 0:
    os.rename(os.path.join(out, "part", "shard_reads.json"), os.path.join(out, "reads-1.json"))
dist.barrier()
res = pretrain(None, os.path.join(out, "part"), resume=True, progress=False)
save_file({k: v.contiguous() for k, v in res.encoder.state_dict().items()},
          os.path.join(out, f"rank{rank}.safetensors"))
dist.destroy_process_group()
'''


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", *args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _check_reads(path: Path, cut: Path) -> None:
    files = [e["file"] for e in read_shard_index(cut)["shards"]]
    reads = json.loads(path.read_text())
    assert reads["world_size"] == 2 and [r["rank"] for r in reads["ranks"]] == [0, 1]
    for r in reads["ranks"]:
        assert r["owned"] == files[r["rank"]::2]
        assert r["opened"] and set(r["opened"]) <= set(r["owned"])


def test_two_gloo_ranks_read_their_own_shards_and_resume_exactly(cut: Path,
                                                                 tmp_path: Path) -> None:
    from safetensors.torch import load_file

    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    _torchrun(str(driver), str(tmp_path), str(cut))
    for reads in (tmp_path / "reads-1.json", tmp_path / "part" / SHARD_READS):
        _check_reads(reads, cut)
    ref, part = pt.read_log(tmp_path / "ref"), pt.read_log(tmp_path / "part")
    assert [r["step"] for r in part] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in part] == [r["loss"] for r in ref]
    assert part[-1]["samples"] == 5 * 2 * 3
    w0, w1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    _, tensors = pt.load_checkpoint(tmp_path / "ref")
    for k, v in w0.items():
        assert torch.equal(v, w1[k]), k
        assert torch.equal(v, tensors[f"model.encoder.{k}"]), k
    # A resume on another number of processes is refused (it would draw other patches).
    with pytest.raises(ValueError, match="2 process"):
        pt.pretrain(None, tmp_path / "part", resume=True, progress=False)


@pytest.mark.slow
def test_cli_torchrun_shards_until_step_then_resume(cut: Path, tmp_path: Path) -> None:
    common = ["-m", "hsizoo", "pretrain", "--shards", str(cut), "--model", "s2former_test",
              "--steps", "5", "--batch-size", "3", "--seed", "3", "--no-progress"]
    _torchrun(*common, "--run-dir", str(tmp_path / "ref"))
    _torchrun(*common, "--run-dir", str(tmp_path / "part"), "--until-step", "2")
    _check_reads(tmp_path / "part" / SHARD_READS, cut)
    _torchrun(*common, "--run-dir", str(tmp_path / "part"), "--resume")
    _check_reads(tmp_path / "part" / SHARD_READS, cut)
    ref, part = pt.read_log(tmp_path / "ref"), pt.read_log(tmp_path / "part")
    assert [r["loss"] for r in part] == [r["loss"] for r in ref]
    a, b = pt.load_checkpoint(tmp_path / "ref")[1], pt.load_checkpoint(tmp_path / "part")[1]
    for k in a:
        if k.startswith("model."):
            assert torch.equal(a[k], b[k]), k
