"""The tools people already run: torch.compile (one full graph), torch.export, ONNX (the dynamo
exporter) and FX, with the wavelengths as a tensor input; and timm's plain ``model(x)`` call.

Each deployed form must match eager: the canonical resampling is computed from the wavelength
tensor inside the graph, so a second sensor with the same band count runs through the same
compiled graph or exported program.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import timm
import torch

import hsizoo
from hsizoo.spectral.grid import make_grid
from hsizoo.spectral.sensors import get_sensor

MODELS = ["s2former_test", "hybridsn_test"]
WL = torch.tensor(np.linspace(430.0, 2450.0, 150))  # a 150-band sensor
WL2 = torch.tensor(np.linspace(400.0, 1000.0, 150))  # another one with as many bands
EXPORT_EXTRA = "pip install -e '.[export]'"


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return hsizoo.create_model(name, num_classes=5).eval()


def _x(model: torch.nn.Module, n: int = 4) -> torch.Tensor:
    p = model.patch_size
    return torch.randn(n, WL.numel(), p, p, generator=torch.Generator().manual_seed(1))


def _compiled_matches_eager(name: str, backend: object) -> None:
    model = _model(name)
    compiled = torch.compile(copy.deepcopy(model), fullgraph=True, backend=backend)
    x = _x(model)
    for wl in (WL, WL2):
        xe, xc = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_e, out_c = model(xe, wl), compiled(xc, wl)
        torch.testing.assert_close(out_c, out_e, atol=1e-4, rtol=1e-4)
        out_e.square().sum().backward()
        out_c.square().sum().backward()
        for (n, a), b in zip(model.named_parameters(), compiled.parameters()):
            torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-4, msg=n)
        torch.testing.assert_close(xc.grad, xe.grad, atol=1e-4, rtol=1e-4)
        model.zero_grad()
        compiled.zero_grad()


@pytest.mark.parametrize("name", MODELS)
def test_compile_fullgraph_forward_backward_match_eager_one_graph_for_any_sensor(name: str) -> None:
    """Dynamo captures forward as one graph (AOTAutograd builds the backward, as for inductor)."""
    from torch._dynamo.backends.registry import lookup_backend

    graphs = []

    def counting(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return lookup_backend("aot_eager")(gm, example_inputs)

    _compiled_matches_eager(name, counting)
    assert len(graphs) == 1  # WL2 reused the graph: the wavelengths are an input, not a constant


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_compile_inductor_forward_backward_match_eager(name: str) -> None:
    _compiled_matches_eager(name, "inductor")


@pytest.mark.parametrize("name", MODELS)
def test_export_takes_wavelengths_as_an_input_and_matches_eager(name: str) -> None:
    model = _model(name)
    x = _x(model)
    ep = torch.export.export(model, (x, WL))
    assert len(ep.graph_signature.user_inputs) == 2
    exported = ep.module()
    with torch.no_grad():
        for wl in (WL, WL2):
            torch.testing.assert_close(exported(x, wl), model(x, wl), atol=1e-5, rtol=1e-5)
        bad = WL.clone()
        bad[3] = float("nan")
        with pytest.raises(RuntimeError, match="finite"):  # a run-time check inside the graph
            exported(x, bad)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_dynamo_export_runs_in_onnxruntime(name: str, tmp_path) -> None:
    pytest.importorskip("onnxscript", reason=f"ONNX export needs onnxscript: {EXPORT_EXTRA}")
    onnx = pytest.importorskip("onnx", reason=f"ONNX export needs onnx: {EXPORT_EXTRA}")
    model = _model(name)
    x = _x(model)
    path = tmp_path / f"{name}.onnx"
    program = torch.onnx.export(model, (x, WL), dynamo=True, input_names=["x", "wavelengths"],
                                output_names=["logits"])
    program.save(str(path))
    onnx.checker.check_model(str(path))
    try:
        import onnxruntime as ort
    except ImportError:
        pytest.skip(f"the exported model is not run: onnxruntime is not installed ({EXPORT_EXTRA})")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for wl in (WL, WL2):
            (out,) = session.run(None, {"x": x.numpy(), "wavelengths": wl.numpy()})
            np.testing.assert_allclose(out, model(x, wl).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_fx_feature_extraction_traces_the_whole_model(name: str) -> None:
    """timm's and torchvision's FX tracer: the wavelength input is a leaf (SpectralInput)."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = _model(name)
    kw = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())
    last = get_graph_node_names(model, tracer_kwargs=kw)[1][-1]
    fx = create_feature_extractor(model, return_nodes=[last], tracer_kwargs=kw)
    x = _x(model)
    with torch.no_grad():
        torch.testing.assert_close(fx(x, WL)[last], model(x, WL))


# ------------------------------------------------------------------ timm's model(x), no wavelengths

@pytest.mark.parametrize("name", hsizoo.list_models())
def test_plain_call_takes_the_configs_bands_and_says_so_once(name: str) -> None:
    """What timm's tests do: model(torch.randn(B, *input_size)) with default arguments."""
    model = timm.create_model(name).eval()
    size = model.pretrained_cfg["input_size"]
    assert model.in_chans == size[0] and size[1:] == (model.patch_size,) * 2
    sensor = model.pretrained_cfg.get("sensor")
    expected = get_sensor(sensor).wavelengths if sensor else make_grid(model.grid)
    x = torch.randn(2, *size)
    with torch.no_grad():
        with pytest.warns(UserWarning, match="No wavelengths given") as first:
            out = model(x)
        assert (sensor or "canonical grid") in str(first[0].message)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once per model
            torch.testing.assert_close(model(x), out, rtol=0, atol=0)
            torch.testing.assert_close(model(x, expected), out, rtol=0, atol=0)


def test_own_sensor_is_used_silently_and_band_count_errors_name_the_fix() -> None:
    model = hsizoo.create_model("s2former_test", sensor="rosis").eval()
    x = torch.randn(2, 103, 5, 5)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(model(x), model(x, get_sensor("rosis").wavelengths))
    with pytest.raises(ValueError, match="103 bands.*sensor="):
        model(torch.randn(2, 200, 5, 5))
    grid_model = hsizoo.create_model("hybridsn_test")
    with pytest.raises(ValueError, match="canonical grid points: 211 bands.*wavelengths="):
        grid_model(torch.randn(2, 200, 9, 9))


def test_wavelength_tensors_are_checked_eagerly() -> None:
    model = hsizoo.create_model("s2former_test").eval()
    x = torch.randn(2, 4, 5, 5)
    with pytest.raises(ValueError, match="4 bands"):
        model(x, torch.tensor([500.0, 600.0, 700.0]))
    with pytest.raises(ValueError, match="finite"):
        model(x, torch.tensor([500.0, float("nan"), 700.0, 800.0]))
    with pytest.raises(ValueError, match="increasing"):
        model(x, torch.tensor([500.0, 700.0, 600.0, 800.0]))
    with pytest.raises(ValueError, match="cover no point"):
        model(x, torch.tensor([3000.0, 3100.0, 3200.0, 3300.0]))
    wl = torch.tensor([500.0, 600.0, 700.0, 800.0])
    with torch.no_grad():  # float32 or float64, tensor or list: the same model
        torch.testing.assert_close(model(x, wl), model(x, wl.double().tolist()), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_factory_device_and_reset_classifier_follow_the_model(name: str) -> None:
    model = timm.create_model(name, device="meta", dtype=torch.float32).eval()
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"meta"}
    out = model(torch.randn(2, model.in_chans, model.patch_size, model.patch_size, device="meta"))
    assert out.device.type == "meta"
    model.to(dtype=torch.float64)
    model.reset_classifier(3)
    head = model.get_classifier()
    assert (head.weight.device.type, head.weight.dtype, head.training) == ("meta", torch.float64,
                                                                            False)


def test_weights_kept_under_inference_mode_serve_training_later() -> None:
    model = hsizoo.create_model("s2former_test", num_classes=3)
    x = torch.randn(2, WL.numel(), 5, 5)
    with torch.inference_mode():
        model(x, WL)
    model(x.requires_grad_(True), WL).sum().backward()  # no "inference tensors" error
    assert x.grad is not None
