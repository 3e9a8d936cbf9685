"""benchmarks/device_speed.py: the patches/s and share-of-peak columns (no GPU needed)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_speed.py"


@pytest.fixture(scope="module")
def device_speed():
    spec = importlib.util.spec_from_file_location("device_speed", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peak_known_cards_only(device_speed):
    assert device_speed.peak_tflops("NVIDIA H200", "fp32") == 67.0
    assert device_speed.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert device_speed.peak_tflops("CPU, 2 torch threads", "fp32") is None
    assert device_speed.peak_tflops("NVIDIA GeForce RTX 4090", "fp32") is None


def test_flops_grow_with_bands_and_share_of_peak(device_speed):
    few = device_speed.flops_per_patch("s2former_test", [450.0 + 10 * i for i in range(20)], 4)
    many = device_speed.flops_per_patch("s2former_test", [450.0 + 5 * i for i in range(80)], 4)
    assert 0 < few < many
    row = dict(device_name="NVIDIA H200", precision="fp32", big_pixels=67_000,
               big_predict_s=1.0, flops_per_patch=1e6)
    rate, share = device_speed._throughput(row)
    assert rate == 67_000 and share == pytest.approx(1e-3)  # 67 GFLOP/s of 67 TFLOP/s
    rate, share = device_speed._throughput({**row, "device_name": "CPU"})
    assert share is None
    md = device_speed.markdown([{**row, "device": "cuda", "ip_read_finetune_s": 1.0,
                                 "ip_predict_s": 1.0, "ip_total_s": 2.0, "ip_oa": 0.5}], {})
    assert "| 67,000 | 0.1 % |" in md
