"""Paired comparison of stored harness runs (hsizoo.bench.paired, benchmarks/paired.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsizoo.bench.methods import SCHEMA
from hsizoo.bench.paired import paired_runs, paired_table


def _store(folder: Path, method: str, seed: int, oa: float, sha: str = "s", scene: str = "x",
           shots: int = 5, train_seed: int | None = None) -> None:
    d = folder / scene / method
    d.mkdir(parents=True, exist_ok=True)
    rec = dict(schema=SCHEMA, scene=scene, method=method, shots=shots, seed=seed, oa=oa,
               split=dict(train_sha256=f"{sha}{seed}"))
    name = f"shots{shots}_seed{seed}.json"
    if train_seed is not None:
        rec["train_seed"] = train_seed
        name = f"shots{shots}_seed{seed}_train{train_seed}.json"
    (d / name).write_text(json.dumps(rec))


def test_pairs_by_split_and_summarises(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, (x, y) in enumerate([(0.80, 0.85), (0.90, 0.88), (0.70, 0.76)]):
        _store(a, "m", seed, x)
        _store(b, "v", seed, y)
    _store(a, "m", 7, 0.5)  # no partner: left out
    _store(b, "v", 0, 0.99, shots=10)  # other shots: filtered out below
    pairs = paired_runs(a, "m", b, "v", shots=[5])
    assert [p.seed for p in pairs] == [0, 1, 2]
    assert [round(p.diff, 6) for p in pairs] == [5.0, -2.0, 6.0]
    table = paired_table(pairs, "m", "v")
    assert "| x | 5 | mean | 80.00 | 83.00 | +3.00 +- 2.52 (se), better on 2 of 3 |" in table
    assert table.splitlines()[-1].startswith("| all |")


def test_refuses_different_splits_and_no_pairs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _store(a, "m", 0, 0.8, sha="one")
    _store(b, "v", 0, 0.9, sha="two")
    with pytest.raises(ValueError, match="different pixels"):
        paired_runs(a, "m", b, "v")
    with pytest.raises(ValueError, match="No run of w"):
        paired_runs(a, "m", b, "w")


def test_a_split_with_several_training_runs_counts_once_with_their_mean(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for seed in (0, 1):
        _store(a, "m", seed, 0.80)
    for seed, oas in ((0, (0.80, 0.86, 0.83)), (1, (0.78, 0.80, 0.79))):
        for t, oa in zip((seed, 100, 101), oas):
            _store(b, "v", seed, oa, train_seed=t)
    pairs = paired_runs(a, "m", b, "v")
    assert [(p.seed, p.runs_a, p.runs_b) for p in pairs] == [(0, 1, 3), (1, 1, 3)]
    assert [round(p.diff, 6) for p in pairs] == [3.0, -1.0]
    table = paired_table(pairs, "m", "v")
    assert "| x | 5 | 0 (1 / 3 runs) | 80.00 | 83.00 | +3.00 |" in table
    assert "better on 1 of 2 |" in table  # two splits, not six runs
    _store(b, "v", 1, 0.5, sha="other", train_seed=102)  # a run on other pixels: refused
    with pytest.raises(ValueError, match="different pixels"):
        paired_runs(a, "m", b, "v")
