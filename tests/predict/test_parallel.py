"""Forward passes on a pool of single-threaded workers (hsizoo.predict.parallel): the same
outputs whatever the number of workers, in order, and the caller's torch thread count back."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import hsizoo  # noqa: F401  (registers the models)
from hsizoo.data.patches import prepare_cube
from hsizoo.predict.engine import SharedPredictor, predict_naive
from hsizoo.predict.parallel import map_batches


@pytest.fixture
def threads():
    """Run with 2 torch threads and put the session's count back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_map_batches_keeps_order_and_restores_threads(threads: int) -> None:
    seen = []

    def fn(s: int) -> int:
        seen.append(torch.get_num_threads())
        return s * s

    assert map_batches(fn, range(0, 40, 4), workers=3) == [s * s for s in range(0, 40, 4)]
    assert set(seen) == {1}  # every pass ran on one torch thread
    assert torch.get_num_threads() == threads
    # One worker runs in the calling thread with the caller's threads.
    seen.clear()
    assert map_batches(fn, range(3), workers=1) == [0, 1, 4]
    assert seen == [threads] * 3


def test_map_batches_restores_threads_after_an_error(threads: int) -> None:
    def fn(s: int) -> int:
        if s == 2:
            raise RuntimeError("pass 2 failed")
        return s

    with pytest.raises(RuntimeError, match="pass 2 failed"):
        map_batches(fn, range(5), workers=2)
    assert torch.get_num_threads() == threads


def test_predictions_do_not_depend_on_the_workers(threads: int) -> None:
    torch.manual_seed(0)
    model = timm.create_model("s2former_test", num_classes=3).eval()
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(11, 9, 12)).astype(np.float32)
    padded = prepare_cube(cube, None, model.patch_size)
    rows, cols = np.nonzero(np.ones((11, 9), bool))
    wl = np.linspace(450.0, 2300.0, 12)
    outs = [SharedPredictor(model, wl, batch_size=8, cpu_workers=w).predict_padded(
        padded, rows, cols) for w in (1, 2, 3)]
    assert torch.get_num_threads() == threads
    # Workers run the very passes one thread runs, so the outputs are identical (written in
    # the order of the passes); against two intra-op threads (1 worker), equal to rounding.
    assert torch.equal(outs[1], outs[2])
    torch.set_num_threads(1)
    single = SharedPredictor(model, wl, batch_size=8, cpu_workers=1).predict_padded(
        padded, rows, cols)
    assert torch.equal(outs[1], single)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    naive = predict_naive(model, padded, rows, cols, wl, batch_size=16)
    torch.testing.assert_close(outs[1], naive, atol=1e-5, rtol=1e-5)


def test_bad_worker_count_is_refused() -> None:
    model = timm.create_model("s2former_test", num_classes=3)
    with pytest.raises(ValueError, match="cpu_workers=0"):
        SharedPredictor(model, np.linspace(450.0, 2300.0, 12), cpu_workers=0)
