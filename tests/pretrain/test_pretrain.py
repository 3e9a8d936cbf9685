"""Tests of hsizoo.pretrain: logging, checkpoints, resume (stopped and killed), signals, NaN stop,
recipe checks, FDC switch, export to a Hub-ready folder, and two-process DDP on gloo.

Everything runs on the tiny ``s2former_test`` encoder and 24 x 24 simulated scenes, so each test
takes a few seconds; the subprocess tests pay the interpreter start-up.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

# ``hsizoo.pretrain`` the attribute is the function; the module is imported by name.
pt = importlib.import_module("hsizoo.pretrain")

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = "simulated:enmap:24x24:1"
# A small, fast recipe shared by the tests (the schedule length matters for exact resumes).
RECIPE = dict(model="s2former_test", batch_size=8, lr=3e-3, seed=3)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT),
               PYTHONUNBUFFERED="1")
    return env


def _cli_args(run_dir: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hsizoo.pretrain", SPEC, "--run-dir", str(run_dir),
            "--model", RECIPE["model"], "--batch-size", str(RECIPE["batch_size"]),
            "--lr", str(RECIPE["lr"]), "--seed", str(RECIPE["seed"]), "--steps", str(steps),
            "--no-progress", *extra]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encoder_state(run_dir: Path) -> dict[str, torch.Tensor]:
    _, tensors = pt.load_checkpoint(run_dir)
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                       atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=atol, msg=lambda m: f"{k}: {m}")


def _logged_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in pt.read_log(run_dir)]


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the pretraining process exited early (rc {proc.returncode}):\n{out}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the pretraining process")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def scene():
    return pt.load_scene_spec(SPEC)


# --------------------------------------------------------------------------- a plain run
def test_run_logs_every_step_and_checkpoints(tmp_path: Path, scene) -> None:
    seen: list[int] = []
    res = pt.pretrain([scene], tmp_path / "run", steps=40, checkpoint_every=15, progress=False,
                      callback=lambda s, rec: seen.append(s), **RECIPE)
    run = tmp_path / "run"
    recs = pt.read_log(run)
    assert [r["step"] for r in recs] == list(range(1, 41)) == seen
    for r in recs:
        assert {"loss", "rec_spatial", "rec_spectral", "fdc", "lr", "samples_per_s"} <= r.keys()
        assert np.isfinite(r["loss"])
    losses = np.array([r["loss"] for r in recs])
    assert losses[-10:].mean() < 0.85 * losses[:5].mean()  # it learns something
    # The loss is what the recipe says: rec terms plus fdc_weight x FDC.
    r = recs[-1]
    assert r["loss"] == pytest.approx(r["rec_spatial"] + r["rec_spectral"] + 0.5 * r["fdc"],
                                      rel=1e-5)
    manifest = json.loads((run / "checkpoint.json").read_text())
    assert manifest["step"] == 40 and manifest["config"]["steps"] == 40
    ckpts = sorted(p.name for p in run.glob("ckpt-*.safetensors"))
    assert ckpts == [manifest["tensors"]] == ["ckpt-00000040.safetensors"]  # older ones dropped
    assert manifest["sha256"] == _sha256(run / manifest["tensors"])
    assert not list(run.glob(".*tmp*"))  # no temporary files left behind
    assert res.step == 40 and not res.interrupted
    assert res.final_loss == pytest.approx(recs[-1]["loss"])
    # The returned encoder is the checkpoint's encoder.
    enc = {f"model.encoder.{k}": v for k, v in res.encoder.state_dict().items()}
    ck = {k: v for k, v in _encoder_state(run).items() if k.startswith("model.encoder.")}
    _assert_same_state(enc, ck, atol=0)


def test_counter_based_sampling_is_reproducible_and_sharded(scene) -> None:
    enc = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder
    data = pt.PretrainData([scene], enc)
    a = data.sample(7, 0, 8, 0.7, 0.4)
    b = data.sample(7, 0, 8, 0.7, 0.4)
    c = data.sample(8, 0, 8, 0.7, 0.4)
    assert torch.equal(a[0].xc, b[0].xc) and torch.equal(a[0].spatial_mask, b[0].spatial_mask)
    assert not torch.equal(a[0].xc, c[0].xc)
    # Exactly round(0.7 * 25) masked pixel tokens per patch; at least one masked group.
    assert (a[0].spatial_mask.sum(1) == round(0.7 * 25)).all()
    assert (a[0].spectral_mask.sum(1) >= 1).all()
    # Two ranks' shares of batch 4 are the single-process batch of 8.
    r0 = data.sample(7, 0, 4, 0.7, 0.4, rank=0, world_size=2)[0]
    r1 = data.sample(7, 0, 4, 0.7, 0.4, rank=1, world_size=2)[0]
    assert torch.equal(torch.cat([r0.xc, r1.xc]), a[0].xc)
    assert torch.equal(torch.cat([r0.spectral_mask, r1.spectral_mask]), a[0].spectral_mask)


# --------------------------------------------------------------------------- resume
def test_resume_after_until_step_matches_uninterrupted_run(tmp_path: Path, scene) -> None:
    ref = pt.pretrain([scene], tmp_path / "ref", steps=24, checkpoint_every=100, progress=False,
                      **RECIPE)
    part = pt.pretrain([scene], tmp_path / "part", steps=24, until_step=10, checkpoint_every=100,
                       progress=False, **RECIPE)
    assert part.interrupted and part.step == 10
    assert json.loads((tmp_path / "part" / "checkpoint.json").read_text())["step"] == 10
    done = pt.pretrain([scene], tmp_path / "part", resume=True, progress=False)
    assert done.step == 24 and not done.interrupted
    assert _logged_steps(tmp_path / "part") == list(range(1, 25))
    _assert_same_state(_encoder_state(tmp_path / "part"), _encoder_state(tmp_path / "ref"))
    # The logged losses of the resumed half are those of the uninterrupted run.
    a = [r["loss"] for r in pt.read_log(tmp_path / "part")]
    b = [r["loss"] for r in pt.read_log(tmp_path / "ref")]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert done.final_loss == pytest.approx(ref.final_loss, rel=1e-5)


def test_resume_after_sigkill_continues_without_gaps(tmp_path: Path, scene) -> None:
    run, end = tmp_path / "killed", 80
    # A long schedule so that the process is still training when it is killed.
    proc = subprocess.Popen(_cli_args(run, 5000, "--checkpoint-every", "5"), cwd=REPO_ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        _wait_for(lambda: (run / "checkpoint.json").is_file(), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = json.loads((run / "checkpoint.json").read_text())["step"]
    assert 5 <= killed_at < end, "the process ran past the comparison step before the kill"
    assert max(_logged_steps(run)) >= killed_at

    # The killed process ran on one thread (_env); so do the resumed and the reference runs, since
    # float sums differ slightly between thread counts and would not compare bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = pt.pretrain(None, run, resume=True, until_step=end, checkpoint_every=1000,
                          progress=False)
        ref = pt.pretrain([SPEC], tmp_path / "ref", steps=5000, until_step=end,
                          checkpoint_every=1000, progress=False, **RECIPE)
    finally:
        torch.set_num_threads(threads)
    assert res.step == end
    # Steps logged after the last checkpoint by the killed process were dropped and redone.
    assert _logged_steps(run) == list(range(1, end + 1))
    assert ref.step == end
    _assert_same_state(_encoder_state(run), _encoder_state(tmp_path / "ref"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_with_a_usable_checkpoint(tmp_path: Path, sig: signal.Signals) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli_args(run, 100000, "--checkpoint-every", "100000"),
                            cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        # The handler is installed before the first step is logged.
        _wait_for(lambda: (run / "log.jsonl").is_file() and len(_logged_steps(run)) >= 3, proc)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert sig.name in out and "--resume" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    manifest, tensors = pt.load_checkpoint(run)  # verified against its sha256
    step = manifest["step"]
    assert 3 <= step < 100000 and summary["step"] == step
    assert _logged_steps(run) == list(range(1, step + 1))
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))
    # Usable: it resumes and goes on from there.
    res = pt.pretrain(None, run, resume=True, until_step=step + 2, progress=False)
    assert res.step == step + 2
    assert _logged_steps(run) == list(range(1, step + 3))


# --------------------------------------------------------------------------- failures
def test_nan_loss_raises_and_keeps_the_last_checkpoint(tmp_path: Path, scene,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    pt.pretrain([scene], run, steps=30, until_step=5, progress=False, **RECIPE)
    manifest_bytes = (run / "checkpoint.json").read_bytes()
    tensors_file = run / json.loads(manifest_bytes)["tensors"]
    sha = _sha256(tensors_file)

    forward = pt.MaskedS2Former.forward
    calls = {"n": 0}

    def poisoned(self, batches):
        out = forward(self, batches)
        calls["n"] += 1
        if calls["n"] >= 3:  # the third step of the resumed run (step 8)
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(pt.MaskedS2Former, "forward", poisoned)
    with pytest.raises(pt.NonFiniteLossError, match=r"step 8.*intact"):
        pt.pretrain([scene], run, resume=True, checkpoint_every=100, progress=False)
    assert (run / "checkpoint.json").read_bytes() == manifest_bytes
    assert _sha256(tensors_file) == sha
    assert list(run.glob("ckpt-*.safetensors")) == [tensors_file]
    # Nothing was logged for the failed step; the good steps before it were.
    assert _logged_steps(run) == list(range(1, 8))
    monkeypatch.setattr(pt.MaskedS2Former, "forward", forward)
    # The run is still resumable from the intact checkpoint (step 5).
    res = pt.pretrain([scene], run, resume=True, until_step=9, progress=False)
    assert res.step == 9 and _logged_steps(run) == list(range(1, 10))


def test_divergence_stops_before_a_bad_checkpoint(tmp_path: Path) -> None:
    # A real divergence (no monkeypatching): an absurd learning rate without clipping.
    run = tmp_path / "run"
    with pytest.raises(pt.NonFiniteLossError, match=r"became nan at step 2.*Lower the learning"):
        pt.pretrain([SPEC], run, steps=20, checkpoint_every=1, progress=False,
                    **{**RECIPE, "lr": 1e6, "grad_clip": 0.0, "warmup_steps": 1})
    manifest, tensors = pt.load_checkpoint(run)  # sha256 verified
    assert manifest["step"] == 1
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())
    assert _logged_steps(run) == [1]


def test_resume_refuses_a_different_recipe_and_reuse_without_resume(tmp_path: Path,
                                                                    scene) -> None:
    run = tmp_path / "run"
    pt.pretrain([scene], run, steps=20, until_step=2, progress=False, **RECIPE)
    with pytest.raises(ValueError, match=r"recipe differs.*lr = 0\.01 \(run has 0\.003\)"):
        pt.pretrain([scene], run, resume=True, lr=0.01, progress=False)
    with pytest.raises(ValueError, match="fdc_weight"):
        pt.pretrain([scene], run, resume=True, fdc_weight=0.0, progress=False)
    with pytest.raises(ValueError, match="scenes"):
        pt.pretrain(["simulated:rosis:24x24:1"], run, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="resume"):
        pt.pretrain([scene], run, steps=20, progress=False, **{k: v for k, v in RECIPE.items()})
    # Scene objects are not stored in the run: resuming needs them again.
    with pytest.raises(ValueError, match="Scene objects"):
        pt.pretrain(None, run, resume=True, progress=False)
    # Nothing was touched by the refusals.
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 2
    assert _logged_steps(run) == [1, 2]


def test_cli_reports_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = [SPEC, "--run-dir", str(run), "--model", "s2former_test", "--steps", "10",
            "--batch-size", "4", "--until-step", "1", "--no-progress"]
    assert pt.main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 1
    assert pt.main(args) == 2
    assert "already holds a pretraining checkpoint" in capsys.readouterr().err
    assert pt.main([*args, "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "recipe differs" in err and "lr" in err
    assert pt.main(["simulated:nosuchsensor", "--run-dir", str(tmp_path / "x")]) == 2
    assert "simulated:<sensor>:<layout>:<seed>" in capsys.readouterr().err


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="mask_ratio"):
        pt.PretrainConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match="fdc_weight"):
        pt.PretrainConfig(fdc_weight=-1)
    with pytest.raises(TypeError, match="fdc_wieght"):
        pt.pretrain(["x"], "unused", fdc_wieght=0.1)


# --------------------------------------------------------------------------- FDC switch
def _one_batch(scene, fdc_weight: float) -> tuple[pt.MaskedS2Former, list[pt.SubBatch]]:
    torch.manual_seed(0)
    model = pt.build_objective(pt.PretrainConfig(model="s2former_test", fdc_weight=fdc_weight))
    data = pt.PretrainData([scene], model.encoder)
    return model, data.sample(0, 0, 6, 0.7, 0.4)


def test_fdc_weight_zero_turns_fdc_off(scene) -> None:
    off, batches = _one_batch(scene, 0.0)
    on, _ = _one_batch(scene, 0.5)
    on.load_state_dict(off.state_dict())
    out_off, out_on = off(batches), on(batches)
    # Same network, same batch: identical terms; only the loss differs by the FDC.
    for k in ("rec_spatial", "rec_spectral", "fdc"):
        assert torch.allclose(out_off[k], out_on[k])
    assert out_off["fdc"] > 0
    assert torch.equal(out_off["loss"], out_off["rec_spatial"] + out_off["rec_spectral"])
    assert torch.allclose(out_on["loss"], out_off["loss"] + 0.5 * out_on["fdc"])
    # No gradient path through the FDC terms when it is off.
    assert not out_off["fdc"].requires_grad and out_on["fdc"].requires_grad
    # The gradient of the loss is exactly the gradient of the reconstruction terms.
    out_off["loss"].backward()
    g_loss = [p.grad.clone() for p in off.parameters()]
    off.zero_grad()
    rec = off(batches)
    (rec["rec_spatial"] + rec["rec_spectral"]).backward()
    for g, p in zip(g_loss, off.parameters()):
        assert torch.equal(g, p.grad)
    on.zero_grad()
    out_on["loss"].backward()
    w = on.encoder.pixel_embed.weight
    assert not torch.allclose(w.grad, off.encoder.pixel_embed.weight.grad)


def test_fdc_is_zero_for_a_perfect_reconstruction(scene, monkeypatch: pytest.MonkeyPatch) -> None:
    model, batches = _one_batch(scene, 0.5)
    b = batches[0]
    enc = model.encoder
    P, c, s = enc.patch_size, enc.center_size, enc.group_size
    o = (P - c) // 2

    def oracle(self, sb):
        from einops import rearrange
        pix = rearrange(sb.xc, "b g h w -> b (h w) g")
        centre = torch.nn.functional.pad(sb.xc[:, :, o:o + c, o:o + c],
                                         (0, 0, 0, 0, 0, enc.num_groups * s - sb.xc.shape[1]))
        return pix, rearrange(centre, "b (n s) h w -> b n (s h w)", s=s)

    monkeypatch.setattr(pt.MaskedS2Former, "reconstruct", oracle)
    out = model([b])
    for k in ("loss", "rec_spatial", "rec_spectral", "fdc_spectral", "fdc_spatial"):
        assert float(out[k]) == pytest.approx(0.0, abs=1e-6), k


def test_run_with_fdc_off_logs_rec_only_loss(tmp_path: Path, scene) -> None:
    pt.pretrain([scene], tmp_path / "run", steps=4, progress=False,
                **{**RECIPE, "fdc_weight": 0.0})
    for r in pt.read_log(tmp_path / "run"):
        assert r["fdc"] > 0  # still measured for the log
        assert r["loss"] == pytest.approx(r["rec_spatial"] + r["rec_spectral"], rel=1e-6)


# --------------------------------------------------------------------------- export
def test_export_pretrained_loads_with_create_model(tmp_path: Path, scene) -> None:
    import hsizoo

    res = pt.pretrain([scene], tmp_path / "run", steps=6, progress=False, **RECIPE)
    folder = pt.export_pretrained(tmp_path / "run", tmp_path / "s2former_test.sim",
                                  tag="sim", data="one simulated EnMAP scene")
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "loss_curve.png"} <= names
    assert (folder / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "s2former_test"
    assert config["training"]["steps"] == 6
    assert config["pretrain_config"]["fdc_weight"] == 0.5
    card = (folder / "README.md").read_text()
    assert "one simulated EnMAP scene" in card and "s2former_test" in card
    # No decoder weights in the published file.
    from safetensors.torch import load_file

    assert not [k for k in load_file(str(folder / "model.safetensors")) if "decoder" in k]

    expected = res.encoder.state_dict()
    for model in (hsizoo.create_model("s2former_test", checkpoint_path=folder),
                  hsizoo.create_model(folder)):
        got = model.state_dict()
        assert got.keys() == expected.keys()
        for k in expected:
            assert torch.equal(got[k], expected[k]), k
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite"):
        pt.export_pretrained(tmp_path / "run", folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_hsizoo_cli_pretrain_subcommand_and_export(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from hsizoo.cli import main

    run, out = tmp_path / "run", tmp_path / "export"
    rc = main(["pretrain", SPEC, "--run-dir", str(run), "--model", "s2former_test", "--steps",
               "3", "--batch-size", "4", "--no-progress", "--export", str(out), "--tag", "t"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert (run / "loss_curve.png").is_file()
    assert json.loads((out / "config.json").read_text())["tag"] == "t"
    # A second export into the same folder is refused before any training, unless --overwrite.
    before = (out / "model.safetensors").read_bytes()
    rc = main(["pretrain", SPEC, "--run-dir", str(tmp_path / "run2"), "--model", "s2former_test",
               "--steps", "3", "--batch-size", "4", "--no-progress", "--export", str(out),
               "--tag", "u"])
    err = capsys.readouterr().err
    assert rc == 2 and "overwrite" in err and str(out) in err
    assert not (tmp_path / "run2").exists()
    assert (out / "model.safetensors").read_bytes() == before
    rc = main(["pretrain", SPEC, "--run-dir", str(tmp_path / "run2"), "--model", "s2former_test",
               "--steps", "3", "--batch-size", "4", "--no-progress", "--export", str(out),
               "--tag", "u", "--overwrite", "--seed", "5"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["tag"] == "u"


# --------------------------------------------------------------------------- DDP
_DRIVER = '''
import json, os, sys
from hsizoo.pretrain import pretrain
from safetensors.torch import save_file

out = sys.argv[1]
res = pretrain([{spec!r}], os.path.join(out, "run"), steps={steps}, batch_size={batch},
               model="s2former_test", lr=3e-3, seed=3, progress=False, checkpoint_every=1000)
rank = int(os.environ["RANK"])
state = {{k: v.contiguous() for k, v in res.encoder.state_dict().items()}}
save_file(state, os.path.join(out, f"rank{{rank}}.safetensors"))
json.dump(dict(world=int(os.environ["WORLD_SIZE"]), step=res.step),
          open(os.path.join(out, f"rank{{rank}}.json"), "w"))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_agree_with_one_process(tmp_path: Path, scene) -> None:
    from safetensors.torch import load_file

    steps, batch = 4, 6
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER.format(spec=SPEC, steps=steps, batch=batch))
    env = {**_env(), "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(driver),
           str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in (0, 1):
        info = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert info == {"world": 2, "step": steps}
    # (a) Both replicas hold identical weights, and they moved from the initialisation.
    w0 = load_file(str(tmp_path / "rank0.safetensors"))
    w1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    torch.manual_seed(RECIPE["seed"])
    init = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder.state_dict()
    assert not torch.equal(init["pixel_embed.weight"], w0["pixel_embed.weight"])
    # Only rank 0 wrote the run directory, with the global batch recorded.
    manifest = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert manifest["world_size"] == 2 and manifest["step"] == steps
    ddp_log = pt.read_log(tmp_path / "run")
    assert [r["step"] for r in ddp_log] == list(range(1, steps + 1))
    assert ddp_log[-1]["samples"] == steps * 2 * batch

    # (b) One process with the global batch draws the same patches: same losses (the per-rank
    # means differ from the global mean only by the weights of border pixels) and weights.
    single = pt.pretrain([SPEC], tmp_path / "single", steps=steps, batch_size=2 * batch,
                         model="s2former_test", lr=3e-3, seed=3, progress=False)
    one_log = pt.read_log(tmp_path / "single")
    np.testing.assert_allclose([r["loss"] for r in ddp_log], [r["loss"] for r in one_log],
                               rtol=2e-3)
    np.testing.assert_allclose([r["rec_spatial"] for r in ddp_log],
                               [r["rec_spatial"] for r in one_log], rtol=2e-3)
    # Adam amplifies tiny gradient differences of near-zero entries, so compare the weights by
    # how far apart the two runs ended relative to how far they moved.
    s = single.encoder.state_dict()
    apart = sum(float((w0[k] - s[k]).abs().sum()) for k in w0)
    moved = sum(float((s[k] - init[k]).abs().sum()) for k in w0)
    assert apart < 0.01 * moved, (apart, moved)


# --------------------------------------------------------------------------- scene adaptation
def test_adapt_to_scene_lowers_reconstruction_loss_and_keeps_the_head(scene) -> None:
    import hsizoo

    torch.manual_seed(0)
    net = hsizoo.create_model("s2former_test", num_classes=4)
    net.eval()
    head = {k: v.clone() for k, v in net.get_classifier().state_dict().items()}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_before = torch.get_rng_state()
    info = pt.adapt_to_scene(net, scene, steps=30, seed=1, progress=False, batch_size=16)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's stream is untouched
    assert not net.training  # its mode is restored
    assert info["steps"] == len(info["loss_curve"]) == 30
    # Measured on the same held-out batches before and after.
    assert info["eval_after"]["rec_spatial"] < 0.8 * info["eval_before"]["rec_spatial"]
    assert info["eval_after"]["loss"] < info["eval_before"]["loss"]
    assert info["eval_after"]["fdc"] < info["eval_before"]["fdc"]
    assert info["seconds"] > 0
    # The encoder moved; the head did not; no decoder was left attached.
    after = net.state_dict()
    assert after.keys() == before.keys()
    assert not torch.equal(after["pixel_embed.weight"], before["pixel_embed.weight"])
    for k, v in net.get_classifier().state_dict().items():
        assert torch.equal(v, head[k]), k
    # Same seed, same start: the same result.
    torch.manual_seed(0)
    again = hsizoo.create_model("s2former_test", num_classes=4)
    info2 = pt.adapt_to_scene(again, scene, steps=30, seed=1, batch_size=16)
    assert info2["loss_curve"] == info["loss_curve"]


def test_adapt_to_scene_with_the_view_agreement_term(scene) -> None:
    """The term every published checkpoint was pretrained with runs in scene adaptation by
    default: its held-out InfoNCE falls, its fresh projector is not left on the model; turned
    off, the view options are ignored (same losses whatever the view offset)."""
    import hsizoo

    torch.manual_seed(0)
    net = hsizoo.create_model("s2former_test", num_classes=0)
    keys = set(net.state_dict())
    info = pt.adapt_to_scene(net, scene, steps=30, seed=1, batch_size=16, contrast_weight=1.0,
                             decoder_lr=3e-3)
    assert info["contrast_weight"] == 1.0 and set(net.state_dict()) == keys
    assert info["eval_after"]["contrast"] < info["eval_before"]["contrast"]
    torch.manual_seed(0)
    default = hsizoo.create_model("s2former_test", num_classes=0)
    d = pt.adapt_to_scene(default, scene, steps=3, seed=1, batch_size=16)
    torch.manual_seed(0)
    on = hsizoo.create_model("s2former_test", num_classes=0)
    e = pt.adapt_to_scene(on, scene, steps=3, seed=1, batch_size=16, contrast_weight=1.0)
    assert d["contrast_weight"] == 1.0 and d["loss_curve"] == e["loss_curve"]
    torch.manual_seed(0)
    plain = hsizoo.create_model("s2former_test", num_classes=0)
    a = pt.adapt_to_scene(plain, scene, steps=3, seed=1, batch_size=16, contrast_weight=0.0)
    torch.manual_seed(0)
    off = hsizoo.create_model("s2former_test", num_classes=0)
    b = pt.adapt_to_scene(off, scene, steps=3, seed=1, batch_size=16, contrast_weight=0.0,
                          view_offset=5)
    assert a["loss_curve"] == b["loss_curve"] and "contrast" not in a["eval_after"]
    assert a["loss_curve"] != d["loss_curve"]
    with pytest.raises(ValueError, match="view_offset"):
        pt.adapt_to_scene(off, scene, steps=1, contrast_weight=1.0, view_offset=-1)


def test_adapt_to_scene_refuses_other_models_and_reports_divergence(scene) -> None:
    with pytest.raises(TypeError, match="S2Former"):
        pt.adapt_to_scene(torch.nn.Linear(3, 3), scene, steps=2)
    import hsizoo

    net = hsizoo.create_model("s2former_test")
    with pytest.raises(pt.NonFiniteLossError, match="adaptation"):
        pt.adapt_to_scene(net, scene, steps=5, lr=1e8, decoder_lr=1e8, grad_clip=0)


_FINETUNE = """
import json, sys
import hsizoo

scene = hsizoo.simulate_scene((24, 24), sensor="enmap", seed=1)
res = hsizoo.finetune(scene, None, shots=3, model="s2former_test", pretrained=False, steps=4,
                      head_steps=2, pseudo_rounds=0, adapt_steps=5, progress=False)
print(json.dumps(dict(adapt=res.history["adapt"], seconds=res.history["seconds"])))
"""


def test_finetune_runs_scene_adaptation() -> None:
    # A fresh interpreter and the user's path (hsizoo.finetune), so that what the package
    # attribute ``hsizoo.pretrain`` resolves to depends on nothing imported by the tests.
    proc = subprocess.run([sys.executable, "-c", _FINETUNE], cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    adapt = out["adapt"]
    assert adapt["steps"] == 5 and len(adapt["loss_curve"]) == 5
    assert np.isfinite(adapt["last_loss"])
    assert out["seconds"]["adapt"] > 0


def test_nonfinite_gradient_with_finite_loss_is_caught(tmp_path: Path, scene,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    forward = pt.MaskedS2Former.forward
    calls = {"n": 0}

    def nan_grad(self, batches):
        out = forward(self, batches)
        calls["n"] += 1
        if calls["n"] >= 3:
            t = self.encoder.pos_embed.sum()
            out["loss"] = out["loss"] + torch.sqrt(t - t)  # adds 0; its gradient is NaN
        return out

    monkeypatch.setattr(pt.MaskedS2Former, "forward", nan_grad)
    run = tmp_path / "run"
    with pytest.raises(pt.NonFiniteLossError, match="gradient norm became nan at step 3"):
        pt.pretrain([scene], run, steps=10, checkpoint_every=1, progress=False, **RECIPE)
    manifest, tensors = pt.load_checkpoint(run)
    assert manifest["step"] == 2
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())
    assert _logged_steps(run) == [1, 2]


def test_fresh_start_after_a_death_before_the_first_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli_args(run, 100000, "--checkpoint-every", "100000"),
                            cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: (run / "log.jsonl").is_file() and len(_logged_steps(run)) >= 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run / "checkpoint.json").exists() and len(_logged_steps(run)) >= 3
    # --resume on a run without a checkpoint starts from step 1: no step is logged twice.
    pt.pretrain([SPEC], run, resume=True, steps=100000, until_step=4,
                progress=False, **RECIPE)
    assert _logged_steps(run) == [1, 2, 3, 4]
