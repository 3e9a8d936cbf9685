"""Shared test configuration: offline, seeded, GPU-free; slow tests opt-in with --runslow."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# The default run never touches the network: the Hub is reached only through local test servers.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "hsi"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run tests marked slow (minutes each)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data/hsi, or skip with the reason when this checkout has none."""
    if not (SHARED_DATA / "Indian_pines_corrected.mat").exists():
        pytest.skip(f"real scenes not found at {SHARED_DATA} (they live beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A running local Hub (tests/hub_server.py), huggingface_hub pointed at it, a fresh cache,
    and no $HSIZOO_HUB_MIRROR."""
    from hub_server import HubServer, point_huggingface_hub_at

    monkeypatch.delenv("HSIZOO_HUB_MIRROR", raising=False)
    server = HubServer(tmp_path / "hub").start()
    point_huggingface_hub_at(monkeypatch, server, tmp_path / "hf-cache")
    yield server
    server.stop()
