"""finetune's default weights: the published checkpoint that suits the scene, and it says which."""
from __future__ import annotations

import pytest

from hsizoo.finetune.inputs import build_model, pick_checkpoint


def test_in_domain_weights_are_picked_for_their_sensor() -> None:
    tag, why = pick_checkpoint("s2former_tiny", "aviris_indian_pines")
    assert tag == "s2former_tiny.ssl_indianpines" and "aviris_indian_pines" in why


def test_other_sensors_get_the_sensor_agnostic_default() -> None:
    for sensor in ("enmap", None):
        tag, why = pick_checkpoint("s2former_tiny", sensor)
        assert tag == "s2former_tiny.ssl_simulated" and "default" in why


def test_build_model_says_which_weights_and_why() -> None:
    m, desc = build_model("s2former_tiny", None, None, 4, "aviris_indian_pines")
    assert desc.startswith("s2former_tiny.ssl_indianpines") and "sensor" in desc
    assert m.num_classes == 4
    _, desc = build_model("s2former_tiny.ssl_simulated", None, None, 4, "aviris_indian_pines")
    assert desc == "s2former_tiny.ssl_simulated"  # an explicit tag is never second-guessed
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("s2former_tiny.nonexistent", None, None, 4)


def test_architectures_without_weights_fall_back_or_refuse() -> None:
    with pytest.warns(UserWarning, match="random initialisation"):
        _, desc = build_model("s2former_test", None, None, 3, "enmap")
    assert desc == "random init"
    with pytest.raises(ValueError, match="pretrained=False"):
        build_model("s2former_test", True, None, 3, "enmap")


@pytest.mark.parametrize("sensor", ["aviris", "aviris_salinas", "aviris_ksc", "aviris_indian_pines"])
def test_an_aviris_cube_named_only_by_its_wavelengths_gets_the_aviris_weights(sensor: str) -> None:
    # No preset name: the sensor family is recognised from the band centres alone, so a cube
    # and its wavelengths get what the same cube named by its preset gets.
    from hsizoo.spectral.grid import resolve_wavelengths

    tag, why = pick_checkpoint("s2former_tiny", None, resolve_wavelengths(None, sensor))
    assert tag == "s2former_tiny.ssl_indianpines" and "bands match" in why


@pytest.mark.parametrize("sensor", ["enmap", "prisma", "emit", "desis", "hyperion_botswana",
                                    "rosis", "sentinel2_msi"])
def test_other_sensors_named_by_wavelengths_get_the_default(sensor: str) -> None:
    # Dense 10 nm grids (PRISMA, Hyperion, EnMAP's SWIR) cover AVIRIS's range but are other
    # instruments: their band centres sit a quarter of a band or more from AVIRIS's.
    from hsizoo.spectral.grid import resolve_wavelengths

    tag, why = pick_checkpoint("s2former_tiny", None, resolve_wavelengths(None, sensor))
    assert tag == "s2former_tiny.ssl_simulated" and "none pretrained on a sensor matching" in why


def test_band_match_measures_spacing_offset_and_range() -> None:
    import numpy as np

    from hsizoo.finetune.inputs import band_match

    ref = np.arange(400.0, 2500.0, 10.0)
    assert band_match(ref + 1.0, ref)["same_sensor"]
    assert not band_match(ref + 5.0, ref)["same_sensor"]           # half a band off
    assert not band_match(np.arange(400.0, 2500.0, 5.0), ref)["same_sensor"]  # other spacing
    assert not band_match(np.arange(400.0, 3500.0, 10.0), ref)["same_sensor"]  # beyond its range
    assert band_match(ref[:2], ref[:1])["same_sensor"] is False      # too few bands to tell


def test_finetune_on_a_bare_cube_records_the_weights_it_chose() -> None:
    from hsizoo.finetune.inputs import build_model
    from hsizoo.spectral.grid import resolve_wavelengths

    wl = resolve_wavelengths(None, "aviris_salinas")
    _, desc = build_model("s2former_tiny", None, None, 4, None, scene_wavelengths=wl)
    assert desc.startswith("s2former_tiny.ssl_indianpines") and "bands match" in desc


def test_weights_know_the_scene_only_when_pretrained_on_its_sensor() -> None:
    # The rule that turns scene adaptation on by default: published weights that never saw the
    # scene's sensor (the sensor-agnostic ones included) are adapted; others are left alone.
    from hsizoo.finetune.inputs import weights_know_scene
    from hsizoo.spectral.grid import resolve_wavelengths

    aviris = resolve_wavelengths(None, "aviris_salinas")
    enmap = resolve_wavelengths(None, "enmap")
    ip, ip_desc = build_model("s2former_tiny", None, None, 4, "aviris_indian_pines")
    assert weights_know_scene(ip, ip_desc, "aviris_indian_pines", aviris) is True
    assert weights_know_scene(ip, ip_desc, None, aviris) is True      # by its bands alone
    assert weights_know_scene(ip, ip_desc, "enmap", enmap) is False   # AVIRIS weights, EnMAP scene
    sim, sim_desc = build_model("s2former_tiny", None, None, 4, "enmap")
    assert sim_desc.startswith("s2former_tiny.ssl_simulated")
    assert weights_know_scene(sim, sim_desc, "enmap", enmap) is False
    assert weights_know_scene(sim, sim_desc, "aviris_salinas", aviris) is False
    rnd, rnd_desc = build_model("s2former_tiny", False, None, 4, "enmap")
    assert weights_know_scene(rnd, rnd_desc, "enmap", enmap) is None  # nothing to adapt from
    assert weights_know_scene(sim, "saved model runs/mine", "enmap", enmap) is None
    assert weights_know_scene(sim, "checkpoint my.safetensors", "enmap", enmap) is None


def test_finetune_adapts_by_default_only_where_the_weights_never_saw_the_sensor(monkeypatch) -> None:
    import sys

    import numpy as np

    from hsizoo.data.simulate import simulate_scene
    from hsizoo.finetune import finetune

    monkeypatch.setattr(sys.modules["hsizoo.finetune"], "AUTO_ADAPT_STEPS", 3)
    fast = dict(steps=2, head_steps=2, batch_size=8, daft=False, progress=False)
    scene = simulate_scene((32, 32), "enmap", seed=0, num_classes=2)
    ft = finetune(scene, scene.labels, shots=2, **fast)
    h = ft.history
    assert h["weights"].startswith("s2former_tiny.ssl_simulated")
    assert h["adapt_rule"].startswith("auto: the published weights were not pretrained")
    assert h["adapt"]["steps"] == 3 and np.isfinite(h["adapt"]["last_loss"])
    ft = finetune(scene, scene.labels, shots=2, adapt_steps=0, **fast)
    assert "adapt" not in ft.history and ft.history["adapt_rule"] == "set by the recipe"
    av = simulate_scene((32, 32), "aviris_indian_pines", seed=0, num_classes=2)
    ft = finetune(av, av.labels, shots=2, **fast)
    assert ft.history["weights"].startswith("s2former_tiny.ssl_indianpines")
    assert "adapt" not in ft.history and "pretrained on this scene's sensor" in ft.history["adapt_rule"]
