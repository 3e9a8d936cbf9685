"""Device and mixed precision: names and refusals, bf16 autocast on the CPU for prediction,
fine-tuning and pretraining, and (marked ``gpu``, skipped without CUDA) the same paths on a GPU
against the CPU's float32 results."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

import hsizoo  # noqa: F401  (registers the models)
from hsizoo.runtime.device import autocast, grad_scaler, resolve_device, resolve_precision
from hsizoo.finetune import finetune
from hsizoo.predict.engine import SharedPredictor
from hsizoo.data.patches import prepare_cube
from hsizoo.spectral.grid import band_stats
from scenes import three_class_scene as _scene

pt = importlib.import_module("hsizoo.pretrain")

FAST = dict(model="s2former_test", pretrained=False, steps=20, batch_size=16, head_steps=30,
            progress=False)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (run on a GPU machine: pytest -m gpu)")


def _logits(model: torch.nn.Module, scene, precision: str) -> torch.Tensor:
    padded = prepare_cube(band_stats(scene.cube).apply(scene.cube), None, model.patch_size)
    rows, cols = np.nonzero(np.ones(scene.cube.shape[:2], bool))
    return SharedPredictor(model, scene.wavelengths, 64, precision).predict_padded(
        padded, rows, cols)


# --------------------------------------------------------------------------- names, refusals
@pytest.mark.parametrize("given,name", [(None, "fp32"), ("FP32", "fp32"), ("bfloat16", "bf16"),
                                        ("bf16", "bf16"), ("half", "fp16")])
def test_precision_names_and_aliases(given, name) -> None:
    assert resolve_precision(given, "cuda" if name == "fp16" else "cpu") == name


def test_unknown_precision_and_cpu_fp16_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="not one of fp32, bf16, fp16"):
        resolve_precision("int8", "cpu")
    with pytest.raises(ValueError, match="use precision='bf16'"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="fp16"):
        finetune(_scene(), _scene().labels, shots=3, device="cpu", precision="fp16", **FAST)


def test_autocast_and_scaler_follow_the_precision() -> None:
    a = torch.randn(8, 8)
    with autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (a @ a).dtype == torch.float32
    assert not grad_scaler("cpu", "bf16").is_enabled()


# --------------------------------------------------------------------------- bf16 on the CPU
def test_bf16_prediction_is_float32_and_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = timm.create_model("s2former_test", num_classes=4).eval()
    scene = _scene()
    ref, low = _logits(model, scene, "fp32"), _logits(model, scene, "bf16")
    assert low.dtype == torch.float32 and low.shape == ref.shape
    assert not torch.equal(low, ref)  # the autocast did change the arithmetic
    err = (low - ref).abs().max() / ref.abs().max()
    assert err < 0.05, f"bf16 logits differ from fp32 by {float(err):.3f} of their range"
    agree = (low.argmax(1) == ref.argmax(1)).float().mean()
    assert agree > 0.9


def test_finetune_in_bf16_trains_predicts_and_records_it() -> None:
    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, device="cpu", precision="bf16", seed=1, **FAST)
    assert ft.history["precision"] == ft.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in ft.model.parameters())
    assert np.isfinite(ft.history["loss_curve"]).all()
    report = ft.evaluate()
    assert report.oa > 0.6, report  # three easy classes: well above chance (1/3)


def test_pretrain_in_bf16_keeps_float32_checkpoints(tmp_path: Path) -> None:
    scene = pt.load_scene_spec("simulated:enmap:24x24:1")
    res = pt.pretrain([scene], tmp_path / "run", steps=6, checkpoint_every=100, progress=False,
                      device="cpu", precision="bf16", model="s2former_test", batch_size=8,
                      seed=3, contrast_weight=1.0)
    recs = pt.read_log(tmp_path / "run")
    assert len(recs) == 6 and all(np.isfinite(r["loss"]) for r in recs)
    manifest = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert manifest["hardware"].endswith("bf16 autocast")
    from safetensors.torch import load_file

    (ckpt,) = (tmp_path / "run").glob("ckpt-*.safetensors")
    assert {t.dtype for t in load_file(ckpt).values() if t.is_floating_point()} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in res.encoder.parameters())


# --------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@needs_cuda
def test_gpu_prediction_equals_cpu() -> None:
    torch.manual_seed(0)
    model = timm.create_model("s2former_test", num_classes=4).eval()
    scene = _scene(33, 29)
    ref = _logits(model, scene, "fp32")
    gpu = _logits(model.to("cuda"), scene, "fp32")
    torch.testing.assert_close(gpu, ref, atol=1e-3, rtol=1e-3)
    for p in ("bf16", "fp16"):
        low = _logits(model, scene, p)
        assert (low.argmax(1) == ref.argmax(1)).float().mean() > 0.9, p


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_finetune_and_predict(precision: str) -> None:
    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, precision=precision, seed=1, **FAST)
    assert ft.history["device"].startswith("cuda")
    assert next(ft.model.parameters()).device.type == "cuda"
    assert np.isfinite(ft.history["loss_curve"]).all()
    assert ft.evaluate().oa > 0.6
    assert ft.predict(progress=False, device="cpu", precision="fp32").class_map.shape == \
        scene.labels.shape


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_pretrain(tmp_path: Path, precision: str) -> None:
    scene = pt.load_scene_spec("simulated:enmap:24x24:1")
    pt.pretrain([scene], tmp_path / "run", steps=6, checkpoint_every=3, progress=False,
                device="cuda", precision=precision, model="s2former_test", batch_size=8,
                seed=3, contrast_weight=1.0)
    recs = pt.read_log(tmp_path / "run")
    assert len(recs) == 6 and all(np.isfinite(r["loss"]) for r in recs)
    assert resolve_device(None).type == "cuda"
