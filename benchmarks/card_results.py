"""Put measured few-shot results into the published checkpoints' cards.

    python benchmarks/card_results.py

For every folder of hsizoo/weights/, the harness results (benchmarks/results/fewshot/) of the
methods that fine-tuned that checkpoint are summarised (mean ± std of OA, AA and kappa over the
seeds, per scene and shot count) into ``config.json["results"]`` (only results whose stored
checkpoint sha256 is this folder's: results of earlier weights under the same tag never count),
the representation probe (benchmarks/results/probe/) into ``config.json["probe"]``, and
README.md is re-rendered
from the config with :func:`hsizoo.hub.card.render_model_card`, so the card stays generated,
never hand-written. The weights file, and so its sha256, is not touched.

The timm ``pretrained_cfg`` block's preprocessing fields are refreshed from
:func:`hsizoo.hub.cfg.data_cfg_fields` (what ``timm.data.resolve_data_config`` reports), and a
``hf_hub_revision`` that is not a commit hash is dropped: a repository cannot name its own
commit, the registry pins it (hsizoo/weights/revisions.json, written by ``hsizoo push
--record-revision``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hsizoo.bench.summary import load_results  # noqa: E402
from hsizoo.hub.card import render_model_card  # noqa: E402
from hsizoo.hub.cfg import data_cfg_fields  # noqa: E402


def refresh_timm_block(cfg: dict) -> None:
    """The pretrained_cfg block's preprocessing fields as hsizoo states them now (in place)."""
    block = cfg.get("pretrained_cfg")
    if isinstance(block, dict) and block.get("input_size"):
        fields = data_cfg_fields(int(block["input_size"][0]))
        block.update({k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()
                      if k != "normalisation"})  # not a timm field; the top level says it
        block["fixed_input_size"] = True  # P x P is an architecture argument
    rev = str(cfg.get("hf_hub_revision") or "")
    if rev and not (len(rev) == 40 and all(c in "0123456789abcdef" for c in rev.lower())):
        del cfg["hf_hub_revision"]


def _uses(record: dict, tag: str, folder: Path, sha256: str) -> bool:
    settings = record.get("settings") or {}
    ck = (record.get("info") or {}).get("checkpoint") or settings.get("checkpoint")
    return ck in (tag, str(folder), folder.name) and settings.get("checkpoint_sha256") == sha256


def summarise(records: list[dict], tag: str, folder: Path, sha256: str) -> list[dict]:
    from hsizoo.bench.baselines import BASELINE_METHODS

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        # Fine-tuning results only: a baseline that reads the frozen embeddings
        # (label_propagation_views) is the probe's business, not the card's "fine-tuned" rows.
        if r["method"] not in BASELINE_METHODS and _uses(r, tag, folder, sha256):
            groups.setdefault((r["scene"], r["method"], r["shots"]), []).append(r)
    rows = []
    for (scene, method, shots), rs in sorted(groups.items()):
        def ms(key: str, scale: float = 100.0) -> str:
            v = np.array([x[key] for x in rs], dtype=float) * scale
            sd = v.std(ddof=1) if v.size > 1 else 0.0
            return f"{v.mean():.1f} ± {sd:.1f}" if scale == 100.0 else f"{v.mean():.3f} ± {sd:.3f}"
        rows.append({"dataset": scene, "method": method, "shots": shots, "seeds": len(rs),
                     "OA (%)": ms("oa"), "AA (%)": ms("aa"), "kappa": ms("kappa", 1.0)})
    return rows


def main() -> int:
    from hsizoo.bench.probe_run import load_probe_results, probe_rows

    # The harness's main results, plus separate harness runs (e.g. fewshot_s2former_base/, the
    # full method with another backbone); each card keeps the records of its own weights.
    records = [r for d in sorted((REPO / "benchmarks" / "results").glob("fewshot*"))
               if d.is_dir() for r in load_results(d)]
    probes = load_probe_results(REPO / "benchmarks" / "results" / "probe")
    for folder in sorted((REPO / "hsizoo" / "weights").iterdir()):
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            continue
        cfg = json.loads(cfg_path.read_text())
        refresh_timm_block(cfg)
        tag = f"{cfg['architecture']}.{cfg.get('tag')}"
        rows = summarise(records, tag, folder, cfg["sha256"])
        cfg["results"] = rows or None
        probe = probe_rows(probes, tag, cfg["sha256"])
        cfg["probe"] = probe or None
        cfg = {k: v for k, v in cfg.items() if v is not None}
        if not rows:
            print(f"{folder.name}: no few-shot results use these weights yet")
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
        (folder / "README.md").write_text(render_model_card(cfg))
        print(f"{folder.name}: {len(rows)} result rows, {len(probe)} probe rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
