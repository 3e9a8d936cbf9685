"""Paired comparison of stored harness runs (hsizoo.bench.paired, benchmarks/paired.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsizoo.bench.methods import SCHEMA
from hsizoo.bench.paired import paired_runs, paired_table


def _store(folder: Path, method: str, seed: int, oa: float, sha: str = "s", scene: str = "x",
           shots: int = 5) -> None:
    d = folder / scene / method
    d.mkdir(parents=True, exist_ok=True)
    rec = dict(schema=SCHEMA, scene=scene, method=method, shots=shots, seed=seed, oa=oa,
               split=dict(train_sha256=f"{sha}{seed}"))
    (d / f"shots{shots}_seed{seed}.json").write_text(json.dumps(rec))


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
