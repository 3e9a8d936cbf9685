"""Embed the stored benchmark tables and the registry's weights table in README.md.

    python benchmarks/update_readme.py

README.md holds pairs of markers ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->``; the text
between them is replaced by generated markdown:

* ``weights``: every registered pretrained tag with its card's data, steps, wall time and final
  loss (read from the registry and the published folders under hsizoo/weights/);
* ``models``, ``finetune``, ``pretrain``: benchmarks/results/<NAME>.md, written by
  model_zoo.py, finetune_bench.py and pretrain_bench.py;
* ``results``: the harness's summary of benchmarks/results/fewshot/ (make_report.py).

Nothing is edited by hand between the markers; a missing result leaves a note that says which
command produces it.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))

PRODUCERS = {
    "models": "python benchmarks/model_zoo.py",
    "finetune": "python benchmarks/finetune_bench.py",
    "pretrain": "python benchmarks/pretrain_bench.py",
    "results": "python benchmarks/fewshot.py && python benchmarks/make_report.py",
    "probe_summary": "python benchmarks/probe.py",
    "pretrain_ablation": "python benchmarks/pretrain_ablation.py",
    "device_speed": "python benchmarks/device_speed.py",
    "compile_speed": "python benchmarks/compile_speed.py",
}


def weights_table() -> str:
    """The registry's pretrained tags and what their cards say."""
    import timm

    import hsizoo

    rows = ["| weights | sensor of the data | data | recipe | steps x batch | wall time | hardware "
            "| probe curve |", "|---|---|---|---|---:|---:|---|---|"]
    for name in hsizoo.list_pretrained():
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        folder = REPO / "hsizoo" / "weights" / cfg["hf_hub_id"].rsplit("/", 1)[-1]
        card = json.loads((folder / "config.json").read_text()) if folder.is_dir() else {}
        tr = card.get("training", {})
        data = card.get("data", "")
        data = (f"{data[0]}; and {len(data) - 2} more scenes ({data[-1]})" if isinstance(data, list)
                and len(data) > 2 else "; ".join(data) if isinstance(data, list) else str(data))
        pc = card.get("probe_curve") or {}
        curve = (f"{pc['linear_oa'][0]:.1f} -> {pc['linear_oa'][-1]:.1f} % ({pc['shots']}-shot "
                 f"linear, {pc['scene']})" if pc.get("linear_oa") else "")
        recipe = ("reconstruction + FDC + view agreement"
                  if card.get("pretrain_config", {}).get("contrast_weight") else
                  "reconstruction + FDC")
        rows.append(f"| [`{name}`](hsizoo/weights/{folder.name}/README.md) | "
                    f"{cfg.get('sensor') or ''} | {data} | {recipe} | "
                    f"{tr.get('steps', '')} x {tr.get('batch_size', '')} | "
                    f"{tr.get('wall_time', '')} | {tr.get('hardware', '')} | {curve} |")
    return "\n".join(rows)


def block(name: str) -> str:
    if name == "weights":
        return weights_table()
    if name == "results" and (RESULTS / "fewshot").is_dir():
        # The harness's own README summary: links relative to README, the verdict sentences.
        from hsizoo.bench.report import readme_summary
        from hsizoo.bench.summary import load_results

        records = load_results(RESULTS / "fewshot")
        if records:
            return readme_summary(records).strip()
    path = RESULTS / f"{'fewshot' if name == 'results' else name}.md"
    if path.is_file():
        return path.read_text().strip()
    return f"*Not measured yet: run `{PRODUCERS.get(name, name)}`.*"


def main() -> int:
    readme = REPO / "README.md"
    text = readme.read_text()
    names = re.findall(r"<!-- (\w+):begin -->", text)
    for name in names:
        pat = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pat.sub(lambda m: m.group(1) + block(name) + "\n" + m.group(2), text)
    readme.write_text(text)
    print(f"updated {', '.join(names)} in {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
