"""The few-shot benchmark's vocabulary: its options, its methods, and how a method is fitted.

:data:`METHODS` lists every benchmarked method in report order: the baselines of
:mod:`hsizoo.bench.baselines` and the S2Former methods (plain fine-tuning or transductive DAFT,
from a random initialisation or a self-supervised checkpoint) with their ablations.
:func:`method_settings` is what changes a method's result; it is stored with each result and
compared when a benchmark resumes. The runner (:mod:`hsizoo.bench.runner`) calls :func:`_fit` on
each split; the report (:mod:`hsizoo.bench.report`) reads the names and :data:`SCHEMA`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.bench.baselines import BASELINE_METHODS, Predictor

__all__ = ["BASELINES", "BenchOptions", "CHECKPOINT_OPTIONS", "FULL_METHOD", "METHODS",
           "MethodSpec", "RECIPE", "SCHEMA", "SkipMethod", "method_settings",
           "checkpoint_for_role"]

#: Format of a run's result file (the report reads only this one).
SCHEMA = "hsizoo.bench.fewshot/1"


@dataclass
class BenchOptions:
    """Settings shared by all runs of a benchmark invocation.

    Attributes:
        model: S2Former variant fine-tuned by the S2Former methods (a checkpoint folder with its
            own config.json overrides it).
        steps: Fine-tuning steps of the S2Former methods.
        baseline_steps: Training steps of HybridSN.
        hybridsn_model: Registered HybridSN variant.
        checkpoints: Checkpoint per role: "indomain" (SSL + FDC on the target domain), "nofdc"
            (SSL without FDC), "xdomain" (SSL on simulated scenes of other sensors); each a
            folder, a model.safetensors path or a registered "arch.tag"; None = not given.
        train_budget: Cap on the training seconds of each run (None = all steps).
        filter_size: Window of the mean filter of svm_filtered and rf.
        rf_trees: Trees of the random forest.
        finetune_kwargs: Extra arguments for :func:`hsizoo.finetune` (e.g. ``head_steps``).
        predict_batch: Patches per forward pass at prediction.
        map_seed: Seed whose class maps are saved (None = none).
        map_extent: Pixels of the saved maps: "all" valid pixels, "labelled" pixels only, or
            "auto": labelled pixels of simulated scenes (their unlabelled background is a
            synthetic filler mixture, not a land cover, and mapping it costs most of the
            time), all valid pixels of real scenes.
        device: Where the S2Former methods train and predict (None = the GPU when there is one).
        precision: Their autocast: "fp32" (default), "bf16", or "fp16" on a GPU. Stored with
            the results when not fp32 (it changes them slightly); the device is not.
    """

    model: str = "s2former_tiny"
    steps: int = 200
    baseline_steps: int = 300
    hybridsn_model: str = "hybridsn"
    checkpoints: dict[str, str | None] = field(default_factory=dict)
    train_budget: float | None = None
    filter_size: int = 7
    rf_trees: int = 200
    finetune_kwargs: dict[str, Any] = field(default_factory=dict)
    predict_batch: int = 1024
    map_seed: int | None = 0
    map_extent: str = "auto"
    device: str | None = None
    precision: str = "fp32"


@dataclass(frozen=True)
class MethodSpec:
    """One benchmarked method.

    Attributes:
        name: Method name (result folder).
        description: One line for the report.
        family: "baseline" or "s2former".
        checkpoint: Role of the checkpoint it needs ("indomain", "nofdc", "xdomain") or None.
        daft: DAFT (True) or plain fine-tuning (False), S2Former methods only.
        pretrained: Starts from self-supervised weights (S2Former methods only).
        transduction: Label propagation over the scene's graph in DAFT (S2Former methods only).
        daft_overrides: (field, value) pairs of :class:`hsizoo.method.daft.DaftConfig` that differ
            from its defaults (ablations of DAFT's terms).
        transduction_overrides: The same for :class:`hsizoo.finetune.TransductionConfig`.
        recipe_overrides: The same for :class:`hsizoo.finetune.FinetuneRecipe` (e.g.
            ``adapt_steps``).
        steps_scale: Fine-tuning steps as a multiple of the run's ``--steps`` (a longer or
            shorter schedule that stays proportional when the harness runs short).
    """

    name: str
    description: str
    family: str
    checkpoint: str | None = None
    daft: bool = False
    pretrained: bool = False
    transduction: bool = True
    daft_overrides: tuple[tuple[str, Any], ...] = ()
    transduction_overrides: tuple[tuple[str, Any], ...] = ()
    recipe_overrides: tuple[tuple[str, Any], ...] = ()
    steps_scale: float = 1.0

    def steps(self, opts: BenchOptions) -> int:
        """Fine-tuning steps of this method in a run with ``opts``."""
        return max(1, int(round(opts.steps * self.steps_scale)))


CHECKPOINT_OPTIONS = {"indomain": "--checkpoint-indomain", "nofdc": "--checkpoint-nofdc",
                      "xdomain": "--checkpoint-xdomain"}

def _graph_variant(name: str, change: str, **transduction: Any) -> MethodSpec:
    """The full method (in-domain checkpoint, transductive DAFT) with ``transduction``
    settings changed; ``change`` completes "variant: transductive DAFT with ..."."""
    return MethodSpec(name, f"variant: transductive DAFT with {change}", "s2former", "indomain",
                      daft=True, pretrained=True,
                      transduction_overrides=tuple(transduction.items()))


#: The methods, in report order. The "full method" of the paper is s2former_ssl_daft.
#: Baselines that read a checkpoint's frozen embeddings, and its role.
_BASELINE_CHECKPOINTS = {"label_propagation_views": "indomain"}

METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    *(MethodSpec(n, d, "baseline", _BASELINE_CHECKPOINTS.get(n))
      for n, (d, _) in BASELINE_METHODS.items()),
    MethodSpec("s2former_scratch", "S2Former from a random initialisation, plain fine-tuning",
               "s2former"),
    MethodSpec("s2former_ssl_ft", "S2Former SSL (+FDC) checkpoint, plain fine-tuning",
               "s2former", "indomain", pretrained=True),
    MethodSpec("s2former_ssl_noFDC_ft", "S2Former SSL checkpoint without FDC, plain fine-tuning",
               "s2former", "nofdc", pretrained=True),
    MethodSpec("s2former_ssl_daft", "full method: S2Former SSL + FDC checkpoint, then "
               "transductive DAFT", "s2former", "indomain", daft=True, pretrained=True),
    MethodSpec("s2former_scratch_daft", "ablation: transductive DAFT from a random "
               "initialisation", "s2former", daft=True),
    MethodSpec("s2former_ssl_daft_nograph", "ablation: DAFT without the graph (pseudo-labels "
               "from the teacher alone)", "s2former", "indomain", daft=True, pretrained=True,
               transduction=False),
    MethodSpec("s2former_ssl_daft_norefine", "ablation: transductive DAFT without the final "
               "graph refinement (the student's map as it is)", "s2former", "indomain",
               daft=True, pretrained=True, transduction_overrides=(("refine_alpha", 0.0),)),
    MethodSpec("s2former_ssl_daft_discriminant", "variant: transductive DAFT over the graph "
               "with two discriminant self-training rounds (hsizoo.method.discriminant)",
               "s2former", "indomain", daft=True, pretrained=True,
               transduction_overrides=(("discriminant_rounds", 2),)),
    MethodSpec("s2former_ssl_daft_guided", "variant: transductive DAFT with the edge-preserving "
               "guided filter instead of the Gaussian before the final graph refinement",
               "s2former", "indomain", daft=True, pretrained=True,
               transduction_overrides=(("refine_filter", "guided"),)),
    MethodSpec("s2former_ssl_daft_views", "variant: transductive DAFT whose first propagation "
               "is combined with one over the checkpoint's embeddings alone "
               "(hsizoo.method.views)", "s2former", "indomain", daft=True, pretrained=True,
               transduction_overrides=(("embedding_view", True),)),
    MethodSpec("s2former_ssl_daft_views_refresh", "variant: s2former_ssl_daft_views with the "
               "embedding view joining the pseudo-label refresh's propagation too", "s2former",
               "indomain", daft=True, pretrained=True,
               transduction_overrides=(("embedding_view", True), ("view_refresh", True))),
    MethodSpec("s2former_ssl_daft_adapt", "variant: transductive DAFT after 300 steps of "
               "scene-adaptive self-supervision on the scene's own unlabelled pixels "
               "(adapt_steps)", "s2former", "indomain", daft=True, pretrained=True,
               recipe_overrides=(("adapt_steps", 300),)),
    MethodSpec("s2former_ssl_daft_noadapt", "ablation: transductive DAFT without scene "
               "adaptation (adapt_steps=0; the default adapts where the weights never saw the "
               "scene's sensor)", "s2former", "indomain", daft=True, pretrained=True,
               recipe_overrides=(("adapt_steps", 0),)),
    MethodSpec("s2former_ssl_daft_long", "variant: transductive DAFT with a three times longer "
               "student schedule at about 1.25 times the compute (per step 16 shots and 48 "
               "pseudo-labelled patches instead of 64 and 64)", "s2former", "indomain",
               daft=True, pretrained=True, steps_scale=3.0,
               recipe_overrides=(("batch_size", 16), ("pseudo_batch_size", 48))),
    _graph_variant("s2former_ssl_daft_prior", "the scene's class proportions re-estimated by EM "
                   "from the propagated posteriors (first propagation and refresh)",
                   prior_iterations=10),
    _graph_variant("s2former_ssl_daft_mix", "a final refinement seeded by the student's "
                   "probabilities and the graph's last propagation, half and half",
                   refine_graph_weight=0.5),
    MethodSpec("s2former_ssl_daft_cv", "variant: transductive DAFT with the graph's position "
               "scale and feature smoothing chosen by cross-validation on the shots",
               "s2former", "indomain", daft=True, pretrained=True,
               transduction_overrides=(("cv_graph", True),)),
    MethodSpec("s2former_ssl_daft_align", "ablation: transductive DAFT with the noised "
               "feature alignment and agreement terms on", "s2former", "indomain", daft=True,
               pretrained=True, daft_overrides=(("align_weight", 1.0), ("agree_weight", 1.0))),
    MethodSpec("s2former_xdomain_daft", "S2Former pretrained on simulated scenes of other "
               "sensors, then DAFT", "s2former", "xdomain", daft=True, pretrained=True),
]}
FULL_METHOD = "s2former_ssl_daft"
#: Version of the fine-tuning recipe, stored with S2Former results: results of an older recipe
#: are not reused as if they were this one's. /3: scene adaptation on by default where the
#: published weights never saw the scene's sensor (``FinetuneRecipe.adapt_steps`` None); runs
#: with weights of the scene's own sensor are unchanged from /2.
RECIPE = "transductive-daft/3"
#: The baselines the full method is compared against: those with no pretrained network.
BASELINES = tuple(n for n in BASELINE_METHODS if n not in _BASELINE_CHECKPOINTS)


class SkipMethod(Exception):
    """A method cannot run in this invocation (the message says why)."""


# ----------------------------------------------------------------------------------------------
# Checkpoints, fitting and the settings stored with a result


def checkpoint_for_role(value: str | None, role: str, model: str) -> dict[str, Any]:
    """Turn a checkpoint option into :func:`hsizoo.finetune` arguments.

    Args:
        value: A folder written by save_pretrained / export_pretrained, a model.safetensors file,
            or a registered ``arch.tag`` with weights; None when the option was not given.
        role: "indomain", "nofdc" or "xdomain" (for messages).
        model: The S2Former variant for a bare model.safetensors without config.json.

    Returns:
        ``{"model": ..., "pretrained": ..., "checkpoint_path": ..., "source": ..., "sha256": ...}``.

    Raises:
        SkipMethod: the checkpoint was not given or cannot be found.
    """
    from hsizoo.io.atomic import file_sha256
    from hsizoo.models._factory import list_pretrained

    opt = CHECKPOINT_OPTIONS[role]
    if not value:
        raise SkipMethod(f"no {role} checkpoint given ({opt} FOLDER|model.safetensors|arch.tag)")
    p = Path(value).expanduser()
    if p.exists():
        folder = p if p.is_dir() else p.parent
        weights = p if p.is_file() else p / "model.safetensors"
        if not weights.is_file():
            if (folder / "checkpoint.json").is_file():
                raise SkipMethod(
                    f"{opt} {value} is a pretraining run folder, not an exported checkpoint: "
                    "export it first (hsizoo pretrain ... --export FOLDER, or "
                    "hsizoo.pretrain.export_pretrained(run_dir, folder)) and pass that folder")
            raise SkipMethod(f"{opt} {value}: no model.safetensors in that folder")
        sha = file_sha256(weights)  # create_model verifies it again
        if (folder / "config.json").is_file():
            # The folder's config.json names the architecture and its arguments.
            return {"model": str(folder), "pretrained": None, "checkpoint_path": str(folder),
                    "source": str(p), "sha256": sha}
        return {"model": model, "pretrained": None, "checkpoint_path": str(weights),
                "source": str(p), "sha256": sha}
    if "." in value and value in list_pretrained():
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(value)
        sha = cfg.to_dict().get("sha256") if cfg is not None else None
        return {"model": value, "pretrained": True, "checkpoint_path": None, "source": value,
                "sha256": sha}
    raise SkipMethod(f"{opt} {value}: neither an existing path nor a registered tag with weights "
                     f"(registered: {', '.join(list_pretrained()) or 'none'})")


def _fit_s2former(spec: MethodSpec, scene: Any, train: np.ndarray, seed: int,
                  opts: BenchOptions) -> tuple[Predictor, dict[str, Any]]:
    from hsizoo.finetune import finetune
    from hsizoo.predict.engine import SharedPredictor
    from hsizoo.data.patches import prepare_cube

    ck: dict[str, Any] = {"model": opts.model, "pretrained": False, "checkpoint_path": None,
                          "source": None, "sha256": None}
    if spec.checkpoint:
        ck = checkpoint_for_role(opts.checkpoints.get(spec.checkpoint), spec.checkpoint,
                                opts.model)
    from hsizoo.method.daft import DaftConfig
    from hsizoo.finetune import TransductionConfig

    kwargs = {"steps": spec.steps(opts), **dict(opts.finetune_kwargs),
              **dict(spec.recipe_overrides)}
    daft: Any = DaftConfig(**dict(spec.daft_overrides)) if spec.daft else False
    transduction: Any = TransductionConfig(**dict(spec.transduction_overrides)) \
        if spec.transduction else False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no pretrained weights yet.*")
        ft = finetune(scene, train, shots=None, model=ck["model"], pretrained=ck["pretrained"],
                      checkpoint_path=ck["checkpoint_path"], seed=seed,
                      class_names=scene.class_names, daft=daft,
                      transduction=transduction, time_budget=opts.train_budget,
                      progress=False, device=opts.device, precision=opts.precision, **kwargs)
    net = ft.model.eval()
    sigma = float(getattr(ft, "smooth_sigma", 0.0))
    cache: dict[str, Any] = {}

    def predict(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # Shared per-pixel computation, exactly what FineTuned.predict does window by window.
        if sigma <= 0 and ft.refiner is None:
            if "padded" not in cache:  # built on first use: the other path does not need it
                cache["padded"] = prepare_cube(ft.stats.apply(scene.cube), scene.valid,
                                               net.patch_size)
                cache["predictor"] = SharedPredictor(
                    net, np.asarray(scene.wavelengths, dtype=np.float64), opts.predict_batch,
                    ft.precision)
            logits = cache["predictor"].predict_padded(cache["padded"], rows, cols)
            return logits.argmax(1).numpy().astype(np.int64) + 1
        # With spatial regularisation (finetune's default) a pixel's class depends on its
        # neighbours' probabilities: classify every valid pixel once, smooth, then look up.
        # Transductive DAFT then refines that over the scene's graph: FineTuned.predict.
        if "labels" not in cache:
            cache["labels"] = ft.predict(progress=False, batch_size=opts.predict_batch).class_map
        return cache["labels"][rows, cols].astype(np.int64)

    hist = {k: v for k, v in ft.history.items() if k != "loss_curve"}
    info = {"model": ck["model"], "architecture": getattr(net, "architecture", None),
            "checkpoint": ck["source"], "checkpoint_sha256": ck["sha256"], "daft": spec.daft,
            "transduction": spec.transduction and spec.daft,
            "daft_overrides": dict(spec.daft_overrides),
            "steps": kwargs["steps"], "steps_done": hist.get("steps_done"), "smooth_sigma": sigma,
            "finetune_kwargs": kwargs, "history": hist}
    return predict, info


def _fit(spec: MethodSpec, scene: Any, train: np.ndarray, seed: int, opts: BenchOptions
         ) -> tuple[Predictor, dict[str, Any]]:
    if spec.family == "baseline":
        return BASELINE_METHODS[spec.name][1](scene, train, seed, opts)
    return _fit_s2former(spec, scene, train, seed, opts)


def method_settings(spec: MethodSpec, opts: BenchOptions) -> dict[str, Any]:
    """The options that change a method's result (stored with it; compared when resuming)."""
    if spec.name in ("svm_raw", "svm_filtered"):
        return {"filter_size": opts.filter_size} if spec.name == "svm_filtered" else {}
    if spec.name == "rf":
        return {"filter_size": opts.filter_size, "rf_trees": opts.rf_trees}
    if spec.name == "label_propagation":
        return {"graph": "transduction-defaults/1"}
    if spec.name == "label_propagation_cv":
        return {"graph": "transduction-defaults/1", "graph_cv": "shots-cv/1"}
    if spec.name == "label_propagation_discriminant":
        return {"graph": "transduction-defaults/1", "discriminant": "fisher-self-training/1"}
    if spec.name == "label_propagation_prior":
        return {"graph": "transduction-defaults/1", "class_prior": "saerens-em/10"}
    if spec.name == "label_propagation_views":
        return {"graph": "transduction-defaults/1", "views": "embedding-product/1",
                "checkpoint": opts.checkpoints.get(spec.checkpoint),
                "checkpoint_sha256": _checkpoint_sha(spec, opts)}
    if spec.name == "hybridsn":
        return {"hybridsn_model": opts.hybridsn_model, "baseline_steps": opts.baseline_steps,
                "train_budget": opts.train_budget}
    precision = {"precision": opts.precision} if opts.precision != "fp32" else {}
    return {"model": opts.model, "steps": opts.steps, "train_budget": opts.train_budget,
            **precision, "finetune_kwargs": dict(opts.finetune_kwargs), "recipe": RECIPE,
            "transduction": spec.transduction and spec.daft,
            "daft_overrides": dict(spec.daft_overrides),
            "transduction_overrides": dict(spec.transduction_overrides),
            "checkpoint": opts.checkpoints.get(spec.checkpoint) if spec.checkpoint else None,
            "checkpoint_sha256": _checkpoint_sha(spec, opts),
            # only where a method has them, so the stored settings of the others keep their keys
            **({"recipe_overrides": dict(spec.recipe_overrides)} if spec.recipe_overrides
               else {}),
            **({"steps_scale": spec.steps_scale} if spec.steps_scale != 1.0 else {})}


def _checkpoint_sha(spec: MethodSpec, opts: BenchOptions) -> str | None:
    """sha256 of the weights a method starts from, so retrained weights under the same tag or
    path are never mistaken for the ones a stored result used."""
    value = opts.checkpoints.get(spec.checkpoint) if spec.checkpoint else None
    if not value:
        return None
    try:
        return checkpoint_for_role(value, spec.checkpoint, opts.model).get("sha256")
    except SkipMethod:
        return None
