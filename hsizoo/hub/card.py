"""Model cards: the Hub ``README.md`` of a checkpoint, rendered only from its config.json fields.

Nothing here is written by hand per model: a card says what the config records, and a section
whose fields are absent is left out, so a card never claims more than the checkpoint knows.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = ["render_model_card"]

_PAPER = "arXiv:2601.18088"
_PAPER_URL = "https://arxiv.org/abs/2601.18088"
_BASE_TAGS = ("hyperspectral", "remote-sensing", "self-supervised")
# Training-recipe fields shown in this order when present (config["training"] or top level).
_RECIPE_FIELDS = (
    ("steps", "Steps"), ("epochs", "Epochs"), ("batch_size", "Batch size"), ("lr", "Learning rate"),
    ("optimizer", "Optimiser"), ("mask_ratio", "Mask ratio"), ("loss", "Loss"),
    ("final_loss", "Final loss"), ("wall_time_s", "Wall time (s)"), ("wall_time", "Wall time"),
    ("hardware", "Hardware"), ("seed", "Seed"), ("command", "Command"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{', '.join(_fmt(v) for v in value[:4])}, ..., {_fmt(value[-1])}] ({len(value)} values)"
    if isinstance(value, (dict, list, tuple)):
        return f"`{json.dumps(value)}`"
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _train_datasets(cfg: Mapping[str, Any]) -> list[str]:
    """Datasets the weights were trained on: ``datasets``, else the catalogue scenes of the
    pretraining run (simulated scenes have no dataset to name; the card's prose says what they
    are)."""
    if cfg.get("datasets"):
        return [str(d) for d in _as_list(cfg["datasets"])]
    run = cfg.get("pretrain_config") if isinstance(cfg.get("pretrain_config"), Mapping) else {}
    return [str(s) for s in _as_list(run.get("scenes")) if ":" not in str(s)]


def _mean(value: Any) -> float | None:
    """The mean of a stored "mean ± std" text, or a number as is."""
    try:
        return float(str(value).split("±")[0].strip())
    except ValueError:
        return None


def _eval_results(cfg: Mapping[str, Any]) -> list[Any]:
    """model-index entries from the stored probe rows and few-shot results (never invented)."""
    from huggingface_hub import EvalResult

    out: list[Any] = []
    for row in _as_list(cfg.get("probe")):
        if isinstance(row, Mapping) and _mean(row.get("linear")) is not None:
            out.append(EvalResult(
                task_type="image-classification",
                task_name=f"{row['shots']}-shot classification",
                dataset_type=str(row["scene"]), dataset_name=str(row["scene"]),
                dataset_config=f"{row['shots']}-shot", metric_type="accuracy",
                metric_value=_mean(row["linear"]),
                metric_name=f"OA (%), linear probe of the frozen features, mean of "
                            f"{row.get('seeds')} split seeds"))
    for row in _as_list(cfg.get("results")):
        if not isinstance(row, Mapping):
            continue
        for key, metric in (("OA (%)", "accuracy"), ("kappa", "cohen_kappa")):
            value = _mean(row.get(key))
            if value is not None:
                out.append(EvalResult(
                    task_type="image-classification",
                    task_name=f"{row['shots']}-shot classification",
                    dataset_type=str(row["dataset"]), dataset_name=str(row["dataset"]),
                    dataset_config=f"{row['shots']}-shot", metric_type=metric,
                    metric_value=value,
                    metric_name=f"{key}, {row.get('method')} (fine-tuned), mean of "
                                f"{row.get('seeds')} split seeds"))
    return out


def _front_matter(cfg: Mapping[str, Any]) -> list[str]:
    """The Hub metadata block, formatted and quoted by huggingface_hub's ModelCardData.

    ``library_name`` is timm: config.json is in timm's format and ``timm.create_model("hf-hub:
    <repo>")`` loads it once hsizoo is imported (which registers the architectures). A
    backbone without classifier is tagged ``image-feature-extraction``, a model with one
    ``image-classification``. ``model-index`` holds the stored probe and few-shot results.
    """
    from huggingface_hub import ModelCardData

    head = int(cfg.get("num_classes") or 0) > 0
    tags = list(dict.fromkeys([*_BASE_TAGS, *(["image-classification"] if head else []),
                               "hsizoo", *_as_list(cfg.get("tags")),
                               *([cfg["sensor"]] if cfg.get("sensor") else [])]))
    evals = _eval_results(cfg)
    metrics = list(dict.fromkeys(e.metric_type for e in evals))
    name = f"{cfg.get('architecture')}.{cfg['tag']}" if cfg.get("tag") else str(cfg.get("architecture"))
    data = ModelCardData(library_name="timm", license=cfg.get("license", "apache-2.0"),
                         pipeline_tag="image-classification" if head else "image-feature-extraction",
                         tags=tags, datasets=_train_datasets(cfg) or None,
                         metrics=metrics or None, model_name=name if evals else None,
                         eval_results=evals or None)
    return ["---", *data.to_yaml().splitlines(), "---"]


def _grid_line(grid: Any) -> str | None:
    if isinstance(grid, (list, tuple)) and len(grid) >= 2:
        vals = [float(g) for g in grid]
        if len(vals) == 3 and vals[1] > vals[0] and 0 < vals[2] < vals[1] - vals[0]:
            # A (start, stop, step) triple rather than the grid points.
            n = int(round((vals[1] - vals[0]) / vals[2])) + 1
            return f"{vals[0]:g}-{vals[1]:g} nm every {vals[2]:g} nm ({n} points)"
        step = (vals[-1] - vals[0]) / (len(vals) - 1)
        return f"{vals[0]:g}-{vals[-1]:g} nm, {len(vals)} points (mean step {step:.4g} nm)"
    return None


def _results_table(results: Any) -> list[str]:
    """Results as a Markdown table: a list of row dicts, or {dataset: {metric: value}}."""
    if isinstance(results, Mapping):
        rows = [{"dataset": k, **(v if isinstance(v, Mapping) else {"value": v})} for k, v in results.items()]
    else:
        rows = [dict(r) for r in _as_list(results) if isinstance(r, Mapping)]
    if not rows:
        return []
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return out


def render_model_card(config: Mapping[str, Any]) -> str:
    """Render a Hub model card (README.md) from a checkpoint's config.json fields.

    Args:
        config: The config written by :func:`hsizoo.hub.save.save_pretrained`: at least
            ``architecture``; optionally ``tag``, ``hf_hub_id``, ``hf_hub_revision``,
            ``model_args``, ``grid``, ``num_classes``, ``class_names``, ``sensor``,
            ``normalisation``, ``training``, ``data``, ``datasets``, ``results``,
            ``loss_curve``, ``probe_curve``, ``probe``, ``license``, ``sha256``,
            ``description``.

    Returns:
        The Markdown text, with YAML front matter.
    """
    cfg = dict(config)
    arch = str(cfg.get("architecture", "unknown"))
    name = f"{arch}.{cfg['tag']}" if cfg.get("tag") else arch
    lines = _front_matter(cfg)
    lines += ["", f"# {name}", ""]

    # Description, from fields only.
    num_classes = int(cfg.get("num_classes") or 0)
    kind = (f"a {num_classes}-class classifier" if num_classes
            else "a backbone without classifier (features only; fine-tune a head for your classes)")
    lines.append(f"Hyperspectral image classification model `{arch}` from hsizoo ({_PAPER}): {kind}.")
    if cfg.get("pretraining"):
        lines.append(f"Pretraining: {cfg['pretraining']}.")
    if cfg.get("description"):
        lines.append(str(cfg["description"]))
    if cfg.get("sensor"):
        lines.append(f"Trained on data of the `{cfg['sensor']}` sensor preset; through spectral "
                     "canonicalisation it accepts any sensor with known band wavelengths.")
    lines.append("")

    lines += ["## Architecture", "", f"- Architecture: `{arch}`"]
    for key, label in (("num_parameters", "Parameters"), ("num_features", "Feature dimension"),
                       ("num_classes", "Classes")):
        if cfg.get(key) is not None:
            lines.append(f"- {label}: {cfg[key]:,}" if isinstance(cfg[key], int) else f"- {label}: {cfg[key]}")
    if cfg.get("model_args"):
        lines += ["", "Model arguments:", "", "```json", json.dumps(cfg["model_args"], indent=2), "```"]
    grid_text = _grid_line(cfg.get("grid"))
    if grid_text:
        lines += ["", "## Canonical wavelength grid", "",
                  f"Every input spectrum is resampled by wavelength onto {grid_text}; grid points "
                  "outside a sensor's range or in its removed absorption bands are masked."]
    if cfg.get("class_names"):
        lines += ["", "## Classes", ""]
        lines += [f"{i}. {c}" for i, c in enumerate(cfg["class_names"], start=1)]
    if cfg.get("normalisation"):
        lines += ["", "## Input normalisation", "", _fmt(cfg["normalisation"])]

    hub_id = cfg.get("hf_hub_id")
    lines += ["", "## How to load", "", "```python", "import hsizoo", ""]
    lines.append(f'model = hsizoo.create_model("{name}", pretrained=True)')
    if hub_id:
        lines.append(f'model = hsizoo.create_model("hf-hub:{hub_id}", pretrained=True)  # offline: the copy shipped with hsizoo')
    lines.append('# or from a local copy of this repository:')
    lines.append('# model = hsizoo.create_model("path/to/this/folder")')
    lines += ["", "import timm  # hsizoo registers its models in timm's registry on import",
              f'model = timm.create_model("{name}", pretrained=True)']
    if hub_id:
        lines += [f'model = timm.create_model("hf-hub:{hub_id}", pretrained=True)  # this repository']
    lines.append("```")
    if hub_id:
        rev = cfg.get("hf_hub_revision")
        lines += ["", f"Hub repository: `{hub_id}`" + (f", pinned revision `{rev}`" if rev else "") + "."]
    lines += ["", "The forward pass takes patches `x` of shape (B, bands, P, P) and the band centre "
              "wavelengths in nm: `model(x, wavelengths=...)`."]

    training = cfg.get("training") if isinstance(cfg.get("training"), Mapping) else {}
    recipe = [(label, training.get(key, cfg.get(key))) for key, label in _RECIPE_FIELDS]
    recipe = [(label, v) for label, v in recipe if v is not None]
    extra = [(k, v) for k, v in training.items() if k not in dict(_RECIPE_FIELDS)]
    data = cfg.get("data")
    if recipe or extra or data or cfg.get("datasets"):
        lines += ["", "## Training data and recipe", ""]
        if data:
            if isinstance(data, Mapping):
                lines += [f"- Data, {k}: {_fmt(v)}" for k, v in data.items()]
            else:
                lines += [f"- Data: {_fmt(d)}" for d in _as_list(data)]
        elif cfg.get("datasets"):
            lines.append(f"- Data: {', '.join(map(str, _as_list(cfg['datasets'])))}")
        lines += [f"- {label}: {_fmt(v)}" for label, v in recipe]
        lines += [f"- {k}: {_fmt(v)}" for k, v in extra]
    if cfg.get("loss_curve"):
        lines += ["", f"![Training loss curve]({cfg['loss_curve']})"]
    curve = cfg.get("probe_curve")
    if isinstance(curve, Mapping) and curve.get("steps"):
        pairs = ", ".join(f"{oa:.1f} % at step {s}" for s, oa in
                          zip(curve["steps"], curve["linear_oa"]))
        lines += ["", f"Probe curve while training ({curve.get('shots')}-shot linear probe of "
                  f"the frozen features on {curve.get('scene')}, split seeds "
                  f"{_fmt(curve.get('seeds'))}; monitoring only, never used for training): "
                  f"{pairs}."]
    probe = _results_table(cfg.get("probe"))
    if probe:
        lines += ["", "## Representation probe (frozen features)", "",
                  "Overall accuracy (%) of read-outs fitted on the shots of frozen features, "
                  "against the same architecture at random initialisation, paired over split "
                  "seeds (`python benchmarks/probe.py`; see benchmarks/results/probe.md).", ""]
        lines += probe

    table = _results_table(cfg.get("results"))
    if table:
        lines += ["", "## Results", ""] + table

    if cfg.get("sha256"):
        lines += ["", "## Files", "",
                  f"- `model.safetensors`: sha256 `{cfg['sha256']}` (checked by hsizoo on every load)",
                  "- `config.json`: architecture, arguments, grid, provenance (this card is rendered "
                  "from it)"]
        if cfg.get("hsizoo_version") or cfg.get("torch_version"):
            lines.append(f"- Written by hsizoo {cfg.get('hsizoo_version', '?')} with torch "
                         f"{cfg.get('torch_version', '?')}")

    lines += ["", "## Limitations", "",
              "- Inputs must carry band wavelengths (a file's metadata or a sensor preset); bands "
              "outside the canonical grid are ignored.",
              "- Accuracy on a new scene depends on its labelled shots and on how far its sensor, "
              "season and preprocessing (radiance vs reflectance, atmospheric correction) differ "
              "from the training data named above; validate on held-out pixels of your scene.",
              "- The implementation follows our reading of the paper, which describes its parts "
              "in words only; numbers are not those of the paper's authors."]
    if not (recipe or data or cfg.get("datasets")):
        lines.append("- This card records no training data or recipe for these weights.")

    lines += ["", "## Citation", "", "```bibtex", "@article{s2former2026,",
              "  title   = {Cross-Domain Transfer with Self-Supervised Spectral-Spatial Modeling for "
              "Hyperspectral Image Classification},",
              "  journal = {arXiv preprint arXiv:2601.18088},", "  year    = {2026},",
              f"  url     = {{{_PAPER_URL}}}", "}", "```", ""]
    return "\n".join(lines)
