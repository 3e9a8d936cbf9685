"""The few-shot benchmark runner: every method on identical splits, one JSON file per run.

A *run* is one (scene, method, shots, seed). Its split is :func:`hsizoo.splits.few_shot_split`
of the scene's labels with that seed (``shots`` labelled pixels per class for training, every
other labelled pixel for testing), drawn once and handed to every method, so all methods see the
same training pixels; each result file stores the training pixel indices to prove it.

Each finished run writes ``<out>/<scene>/<method>/shots<k>_seed<s>.json`` (written atomically,
last), so an interrupted benchmark resumes where it stopped: existing files are skipped unless
``force``. Runs go seed by seed (all scenes, shot counts and methods of seed 0 first), so a
benchmark cut short by ``time_limit`` still compares all methods on the seeds it finished. For
one seed (``map_seed``, default 0) the predicted class map is saved beside the JSON as a
compressed ``.npz`` for the report's map figures (the whole scene for real scenes, the labelled
pixels for simulated ones: ``map_extent``).

Timing: ``train_s`` is the wall time of fitting on the shots (feature extraction and scene
standardisation included); ``predict_s`` the wall time of classifying the test pixels (mapping
the rest of the scene for the saved map is timed apart, as ``map_s``). Memory: the resident set
size of this process is sampled every 10 ms from ``/proc/self/statm`` during the run
(``peak_rss_mb``, and ``peak_rss_delta_mb`` above the run's start); runs share one process, so
``process_maxrss_mb`` (``getrusage``) is the peak of the whole process so far, not of the run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..io.atomic import write_atomic
from .baselines import BASELINE_METHODS, Predictor

__all__ = ["BenchOptions", "METHODS", "DEFAULT_SCENES", "DEFAULT_SHOTS", "DEFAULT_SEEDS",
           "MethodSpec", "PeakMemory", "parse_int_list", "result_path", "run_benchmark",
           "scene_slug"]

DEFAULT_SCENES = ("indian_pines", "simulated:rosis:pavia_university:0",
                  "simulated:enmap:salinas:0", "simulated:prisma:ksc:0")
DEFAULT_SHOTS = (1, 5, 10)
DEFAULT_SEEDS = tuple(range(10))
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
        daft_overrides: (field, value) pairs of :class:`hsizoo.daft.DaftConfig` that differ
            from its defaults (ablations of DAFT's terms).
        transduction_overrides: The same for :class:`hsizoo.finetune.TransductionConfig`.
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


CHECKPOINT_OPTIONS = {"indomain": "--checkpoint-indomain", "nofdc": "--checkpoint-nofdc",
                      "xdomain": "--checkpoint-xdomain"}

#: The methods, in report order. The "full method" of the paper is s2former_ssl_daft.
METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    *(MethodSpec(n, d, "baseline") for n, (d, _) in BASELINE_METHODS.items()),
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
    MethodSpec("s2former_ssl_daft_align", "ablation: transductive DAFT with the noised "
               "feature alignment and agreement terms on", "s2former", "indomain", daft=True,
               pretrained=True, daft_overrides=(("align_weight", 1.0), ("agree_weight", 1.0))),
    MethodSpec("s2former_xdomain_daft", "S2Former pretrained on simulated scenes of other "
               "sensors, then DAFT", "s2former", "xdomain", daft=True, pretrained=True),
]}
FULL_METHOD = "s2former_ssl_daft"
#: Version of the fine-tuning recipe, stored with S2Former results: results of an older recipe
#: are not reused as if they were this one's.
RECIPE = "transductive-daft/2"
BASELINES = tuple(BASELINE_METHODS)


class SkipMethod(Exception):
    """A method cannot run in this invocation (the message says why)."""


# ----------------------------------------------------------------------------------------------
# Small helpers


def parse_int_list(text: str | Iterable[str] | Iterable[int]) -> list[int]:
    """Parse "0-9", "1,5,10", "1 5 10" or a list of such items into sorted unique ints.

    Args:
        text: The text (or items of an ``nargs="+"`` option).

    Returns:
        The integers, ascending.

    Raises:
        ValueError: an item that is neither an integer nor a range "a-b" with a <= b.
    """
    items = [text] if isinstance(text, (str, int)) else list(text)
    out: set[int] = set()
    for item in items:
        for part in str(item).replace(",", " ").split():
            m = re.fullmatch(r"(\d+)-(\d+)", part)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if a > b:
                    raise ValueError(f"Bad range {part!r}: write low-high, e.g. 0-9.")
                out.update(range(a, b + 1))
            elif re.fullmatch(r"\d+", part):
                out.add(int(part))
            else:
                raise ValueError(f"Bad number list item {part!r}: use integers and ranges, "
                                 "e.g. '1,5,10' or '0-9'.")
    if not out:
        raise ValueError("Empty number list; give at least one value, e.g. 0-9.")
    return sorted(out)


def _split_names(items: Iterable[str] | str) -> list[str]:
    items = [items] if isinstance(items, str) else list(items)
    out: list[str] = []
    for item in items:
        out += [p for p in item.replace(",", " ").split() if p and p not in out]
    return out


def scene_slug(spec: str) -> str:
    """File-system name of a scene spec ("simulated:rosis:pavia_university:0" ->
    "simulated_rosis_pavia_university_0")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec).strip("_") or "scene"


def result_path(out_dir: str | Path, scene: str, method: str, shots: int, seed: int) -> Path:
    """Where the JSON of one run lives."""
    return Path(out_dir) / scene_slug(scene) / method / f"shots{shots}_seed{seed}.json"


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_mb() -> float | None:
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


class PeakMemory:
    """Peak resident set size of this process during a ``with`` block, sampled by a thread.

    Args:
        interval: Seconds between samples (spikes shorter than this can be missed).
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start: int | None = None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            v = _rss_bytes()
            if v is not None and (self.peak is None or v > self.peak):
                self.peak = v

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = _rss_bytes()
        if self.start is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        v = _rss_bytes()
        if v is not None and self.peak is not None:
            self.peak = max(self.peak, v)

    def as_dict(self) -> dict[str, Any]:
        """Peak, start and delta in MiB, the process high-water mark, and how they were got."""
        mb = 1024.0 * 1024.0
        out: dict[str, Any] = {"process_maxrss_mb": _maxrss_mb()}
        if self.start is not None and self.peak is not None:
            out.update(peak_rss_mb=self.peak / mb, start_rss_mb=self.start / mb,
                       peak_rss_delta_mb=(self.peak - self.start) / mb,
                       how=f"RSS sampled every {1000 * self.interval:.0f} ms from /proc/self/statm "
                       "during the run; process_maxrss_mb is the whole process's getrusage peak")
        else:
            out["how"] = ("getrusage peak of the whole process only (/proc/self/statm is not "
                          "available here)")
        return out


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    # The one atomic writer (hidden partial file, fsync, rename); the run's folder is made here.
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, write, overwrite=True)


def default_environment() -> dict[str, Any]:
    """benchmarks/_env.py's environment() when running from a source checkout, else the same
    fields gathered here (torch, python, CPU, threads)."""
    import importlib.util
    import platform

    import torch

    env_py = Path(__file__).resolve().parents[2] / "benchmarks" / "_env.py"
    if env_py.is_file():
        try:
            spec = importlib.util.spec_from_file_location("_hsizoo_bench_env", env_py)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return dict(mod.environment())
        except Exception:  # noqa: BLE001 - the record is informative; fall back rather than fail
            pass
    return {"torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "commit": ""}


# ----------------------------------------------------------------------------------------------
# S2Former methods


def resolve_checkpoint(value: str | None, role: str, model: str) -> dict[str, Any]:
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
    from ..io.atomic import file_sha256
    from ..models._factory import list_pretrained

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
        sha = file_sha256(weights, cache=True)  # create_model verifies it again
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
    from ..finetune import finetune
    from ..inference import SharedPredictor
    from ..patches import prepare_cube

    ck: dict[str, Any] = {"model": opts.model, "pretrained": False, "checkpoint_path": None,
                          "source": None, "sha256": None}
    if spec.checkpoint:
        ck = resolve_checkpoint(opts.checkpoints.get(spec.checkpoint), spec.checkpoint,
                                opts.model)
    from ..daft import DaftConfig
    from ..finetune import TransductionConfig

    kwargs = dict(opts.finetune_kwargs)
    daft: Any = DaftConfig(**dict(spec.daft_overrides)) if spec.daft else False
    transduction: Any = TransductionConfig(**dict(spec.transduction_overrides)) \
        if spec.transduction else False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no pretrained weights yet.*")
        ft = finetune(scene, train, shots=None, model=ck["model"], pretrained=ck["pretrained"],
                      checkpoint_path=ck["checkpoint_path"], seed=seed,
                      class_names=scene.class_names, daft=daft,
                      transduction=transduction, steps=opts.steps,
                      time_budget=opts.train_budget, progress=False, device=opts.device,
                      precision=opts.precision, **kwargs)
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
            "steps": opts.steps, "steps_done": hist.get("steps_done"), "smooth_sigma": sigma,
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
            "checkpoint_sha256": _checkpoint_sha(spec, opts)}


def _checkpoint_sha(spec: MethodSpec, opts: BenchOptions) -> str | None:
    """sha256 of the weights a method starts from, so retrained weights under the same tag or
    path are never mistaken for the ones a stored result used."""
    value = opts.checkpoints.get(spec.checkpoint) if spec.checkpoint else None
    if not value:
        return None
    try:
        return resolve_checkpoint(value, spec.checkpoint, opts.model).get("sha256")
    except SkipMethod:
        return None


def _stored_settings(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------
# One run


def _split(labels: np.ndarray, shots: int, seed: int) -> tuple[Any, list[str]]:
    from ..splits import few_shot_split

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = few_shot_split(labels, shots, seed)
    return split, [str(w.message) for w in caught]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def run_one(scene_spec: str, scene: Any, spec: MethodSpec, shots: int, seed: int,
            opts: BenchOptions, out_dir: Path, environment: dict[str, Any],
            split: Any = None, split_warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Train one method on one split, evaluate it, write its JSON (and map), return the record.

    Args:
        scene_spec: The scene's spec (its name in the results).
        scene: The loaded scene (with labels).
        spec: The method.
        shots: Training pixels per class.
        seed: Seed of the split and of training.
        opts: Benchmark options.
        out_dir: Results folder.
        environment: What the numbers were measured on.
        split: The split (drawn here when None).
        split_warnings: Warnings of drawing the split, stored with the result.

    Returns:
        The stored record.
    """
    from ..metrics import evaluate

    if split is None:
        split, split_warnings = _split(scene.labels, shots, seed)
    K = int(max(int(scene.labels.max()), len(scene.class_names or [])))
    test = np.where(scene.valid, split.test, 0)
    tr, tc = np.nonzero(test)
    mem = PeakMemory()
    with mem:
        t0 = time.perf_counter()
        predict, info = _fit(spec, scene, split.train, seed, opts)
        t1 = time.perf_counter()
        pred_test = predict(tr, tc)
        t2 = time.perf_counter()
    pred = np.zeros(scene.labels.shape, dtype=np.int64)
    pred[tr, tc] = pred_test
    report = evaluate(test, pred, num_classes=K, class_names=scene.class_names)
    path = result_path(out_dir, scene_spec, spec.name, shots, seed)
    map_file = None
    map_s = None
    extent = None
    if opts.map_seed is not None and seed == opts.map_seed:
        extent = opts.map_extent
        if extent == "auto":
            extent = "labelled" if (scene.meta or {}).get("simulated") else "all"
        if extent not in ("all", "labelled"):
            raise ValueError(f"map_extent must be 'auto', 'all' or 'labelled'; got {extent!r}.")
        region = scene.valid if extent == "all" else scene.valid & (scene.labels > 0)
        rest_r, rest_c = np.nonzero(region & (test == 0))
        t3 = time.perf_counter()
        if rest_r.size:
            pred[rest_r, rest_c] = predict(rest_r, rest_c)
        map_s = time.perf_counter() - t3
        dtype = np.uint8 if K < 256 else np.uint16
        map_path = path.with_name(path.stem + "_map.npz")

        def write_map(tmp: Path) -> None:
            # A file object, not a name: numpy would append ".npz" to the temporary name.
            with open(tmp, "wb") as f:
                np.savez_compressed(f, class_map=pred.astype(dtype),
                                    reference=scene.labels.astype(dtype),
                                    train=split.train.astype(dtype), valid=scene.valid)

        _atomic_write(map_path, write_map)
        map_file = map_path.name
    train_idx = np.flatnonzero(split.train.reshape(-1))
    record = {
        "schema": SCHEMA,
        "scene": scene_spec,
        "scene_info": {"shape": list(scene.cube.shape), "sensor": scene.sensor,
                       "num_classes": K, "class_names": list(scene.class_names or []),
                       "labelled": int(np.count_nonzero(scene.labels)),
                       "class_colors": (scene.meta or {}).get("class_colors")},
        "method": spec.name,
        "method_info": {"description": spec.description, "family": spec.family, **info},
        "shots": shots,
        "seed": seed,
        "split": {"protocol": "hsizoo.splits.few_shot_split (random, min_test=1)",
                  "train_indices": train_idx.tolist(),
                  "train_sha256": hashlib.sha256(train_idx.astype(np.int64).tobytes()).hexdigest(),
                  "num_train": int(train_idx.size), "num_test": int(tr.size),
                  "per_class_train": split.per_class_train,
                  "per_class_test": split.per_class_test,
                  "short_classes": split.short_classes, "warnings": list(split_warnings)},
        "metrics": report.as_dict(),
        "oa": report.oa, "aa": report.aa, "kappa": report.kappa,
        "timing": {"train_s": t1 - t0, "predict_s": t2 - t1, "predict_pixels": int(tr.size),
                   "map_s": map_s},
        "memory": mem.as_dict(),
        "map_file": map_file,
        "map_extent": extent if map_file else None,
        "settings": method_settings(spec, opts),
        "options": asdict(opts),
        "environment": environment,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record = _jsonable(record)
    _atomic_write(path, lambda p: p.write_text(json.dumps(record, indent=1) + "\n"))
    return record


# ----------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class BenchSummary:
    """What an invocation did.

    Attributes:
        done: Result files written.
        skipped_existing: Runs skipped because their result file exists.
        failed: (run description, error) of runs that raised.
        skipped: Reasons for scenes and methods that were left out.
        not_started: Runs left for later because the time limit was reached.
    """

    done: list[Path] = field(default_factory=list)
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_started: int = 0


def _load_scene(spec: str, data_root: str | None) -> Any:
    from ..pretrain import load_scene_spec

    scene = load_scene_spec(spec, data_root)
    if scene.labels is None or not np.any(scene.labels > 0):
        raise ValueError(f"scene {spec!r} has no labels to benchmark against")
    return scene


def run_benchmark(scenes: Sequence[str] = DEFAULT_SCENES,
                  methods: Sequence[str] = tuple(METHODS), shots: Sequence[int] = DEFAULT_SHOTS,
                  seeds: Sequence[int] = DEFAULT_SEEDS, opts: BenchOptions | None = None,
                  out_dir: str | Path = "benchmarks/results/fewshot", *, force: bool = False,
                  time_limit: float | None = None, data_root: str | None = None,
                  environment: dict[str, Any] | None = None, dry_run: bool = False,
                  stop_on_error: bool = False,
                  scene_objects: dict[str, Any] | None = None,
                  print_fn: Callable[[str], None] = print) -> BenchSummary:
    """Run (or resume) the few-shot benchmark.

    Args:
        scenes: Scene specs: "indian_pines" (real, from ``data_root``) or
            "simulated:<sensor>:<layout>:<seed>" (:func:`hsizoo.pretrain.load_scene_spec`).
        methods: Method names (:data:`METHODS`).
        shots: Training pixels per class.
        seeds: Split and training seeds.
        opts: Method settings.
        out_dir: Results folder.
        force: Re-run and overwrite existing results.
        time_limit: Start no new run after this many seconds (the running one finishes).
        data_root: Folder of the real scenes (default ``$HSIZOO_DATA_DIR`` or ../shared/data/hsi).
        environment: Environment record stored with each result (default
            :func:`default_environment`).
        dry_run: Only print what would run.
        stop_on_error: Raise the first error instead of recording it and going on.
        scene_objects: Already loaded scenes by spec (skips loading them).
        print_fn: Where progress lines go.

    Returns:
        A :class:`BenchSummary`.

    Raises:
        ValueError: unknown method names, or bad shots / seeds.
    """
    t_start = time.perf_counter()
    opts = opts or BenchOptions()
    out = Path(out_dir)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(METHODS)}.")
    if not scenes or not methods:
        raise ValueError("Give at least one scene and one method.")
    if any(int(k) < 1 for k in shots):
        raise ValueError(f"shots must be >= 1; got {list(shots)}.")
    summary = BenchSummary()

    # Methods that cannot run here are skipped once, with the reason.
    active: list[MethodSpec] = []
    for name in methods:
        spec = METHODS[name]
        try:
            if spec.checkpoint:
                resolve_checkpoint(opts.checkpoints.get(spec.checkpoint), spec.checkpoint,
                                   opts.model)
            if spec.name in ("svm_raw", "svm_filtered", "rf"):
                from .baselines import require_sklearn

                require_sklearn()
            active.append(spec)
        except (SkipMethod, ImportError) as e:
            summary.skipped.append(f"method {name}: {e}")
            print_fn(f"skip method {name}: {e}")

    jobs = [(seed, sc, k, spec) for seed in seeds for sc in scenes for k in shots
            for spec in active]
    pending = []
    differ: dict[str, int] = {}
    for job in jobs:
        seed, sc, k, spec = job
        path = result_path(out, sc, spec.name, k, seed)
        if not force and path.exists():
            summary.skipped_existing += 1
            # A resumed benchmark must not mix settings silently.
            want = _jsonable(method_settings(spec, opts))
            if _stored_settings(path) != want:
                differ[spec.name] = differ.get(spec.name, 0) + 1
        else:
            pending.append(job)
    for name, n in differ.items():
        msg = (f"warning: {n} stored result(s) of {name} were made with other settings than "
               f"now ({_jsonable(method_settings(METHODS[name], opts))}); they are kept. Pass "
               "--force to redo them, or --out another folder.")
        summary.skipped.append(msg)
        print_fn(msg)
    print_fn(f"{len(jobs)} runs ({len(scenes)} scene(s) x {len(active)} method(s) x "
             f"{len(shots)} shot count(s) x {len(seeds)} seed(s)); {summary.skipped_existing} "
             f"already stored in {out}, {len(pending)} to run")
    if dry_run:
        for seed, sc, k, spec in pending:
            print_fn(f"  would run {sc} {spec.name} shots={k} seed={seed}")
        return summary

    env = environment if environment is not None else (default_environment() if pending else {})
    loaded: dict[str, Any] = dict(scene_objects or {})
    bad_scenes: dict[str, str] = {}
    splits: dict[tuple[str, int, int], tuple[Any, list[str]]] = {}
    for i, (seed, sc, k, spec) in enumerate(pending):
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            summary.not_started = len(pending) - i
            print_fn(f"time limit of {time_limit:.0f} s reached: {summary.not_started} run(s) "
                     "left for the next invocation (it resumes here)")
            break
        if sc in bad_scenes:
            continue
        if not force and result_path(out, sc, spec.name, k, seed).exists():
            # Written meanwhile by another process working on the same folder.
            summary.skipped_existing += 1
            continue
        if sc not in loaded:
            try:
                loaded[sc] = _load_scene(sc, data_root)
            except (FileNotFoundError, ValueError) as e:
                bad_scenes[sc] = str(e)
                summary.skipped.append(f"scene {sc}: {e}")
                print_fn(f"skip scene {sc}: {e}")
                continue
        scene = loaded[sc]
        if (sc, k, seed) not in splits:
            splits[(sc, k, seed)] = _split(scene.labels, k, seed)
        split, split_warn = splits[(sc, k, seed)]
        label = f"{sc} {spec.name} shots={k} seed={seed}"
        try:
            rec = run_one(sc, scene, spec, k, seed, opts, out, env, split, split_warn)
        except SkipMethod as e:
            summary.skipped.append(f"{label}: {e}")
            print_fn(f"[{i + 1}/{len(pending)}] skip {label}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - one failing run must not lose the others
            if stop_on_error:
                raise
            summary.failed.append((label, f"{type(e).__name__}: {e}"))
            print_fn(f"[{i + 1}/{len(pending)}] FAILED {label}: {type(e).__name__}: {e}")
            print_fn("".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]))
            continue
        summary.done.append(result_path(out, sc, spec.name, k, seed))
        t = rec["timing"]
        peak = rec["memory"].get("peak_rss_mb") or rec["memory"].get("process_maxrss_mb")
        print_fn(f"[{i + 1}/{len(pending)}] {label}: OA {100 * rec['oa']:.2f} %  AA "
                 f"{100 * rec['aa']:.2f} %  kappa {rec['kappa']:.3f}  (train {t['train_s']:.1f} s,"
                 f" predict {t['predict_s']:.1f} s"
                 + (f", peak {peak:.0f} MB)" if peak is not None else ")"))
    print_fn(f"done: {len(summary.done)} written, {summary.skipped_existing} already stored, "
             f"{len(summary.failed)} failed, {summary.not_started} left for later")
    return summary


# ----------------------------------------------------------------------------------------------
# Command line


def add_run_arguments(p: argparse.ArgumentParser, default_out: str | Path | None = None) -> None:
    """Options of ``hsizoo bench run`` / ``benchmarks/fewshot.py``."""
    p.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES),
                   help="scene specs: indian_pines, simulated:<sensor>:<layout>:<seed>, or a "
                   "scene file (default: %(default)s)")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help=f"methods (default all): {', '.join(METHODS)}")
    p.add_argument("--shots", nargs="+", default=["1,5,10"],
                   help="labelled pixels per class, e.g. 1,5,10 (default)")
    p.add_argument("--seeds", nargs="+", default=["0-9"], help="seeds, e.g. 0-9 (default) or 0,1")
    p.add_argument("--steps", type=int, default=200, help="S2Former fine-tuning steps (200)")
    p.add_argument("--baseline-steps", type=int, default=300,
                   help="HybridSN training steps (300)")
    p.add_argument("--model", default="s2former_tiny",
                   help="S2Former variant of the S2Former methods (s2former_tiny)")
    p.add_argument("--hybridsn-model", default="hybridsn", help="HybridSN variant (hybridsn)")
    p.add_argument("--checkpoint-indomain",
                   help="SSL+FDC checkpoint of the target domain (folder, model.safetensors or "
                   "arch.tag) for s2former_ssl_ft and s2former_ssl_daft")
    p.add_argument("--checkpoint-nofdc", help="SSL checkpoint trained without FDC, for "
                   "s2former_ssl_noFDC_ft")
    p.add_argument("--checkpoint-xdomain", help="checkpoint pretrained on simulated scenes of "
                   "other sensors, for s2former_xdomain_daft")
    p.add_argument("--out", default=str(default_out or "benchmarks/results/fewshot"),
                   help="results folder (default %(default)s)")
    p.add_argument("--data-root", help="folder of the real scenes (default $HSIZOO_DATA_DIR or "
                   "../shared/data/hsi)")
    p.add_argument("--force", action="store_true", help="re-run runs whose results exist")
    p.add_argument("--time-limit", type=float, default=None,
                   help="start no new run after this many seconds (resume later)")
    p.add_argument("--train-budget", type=float, default=None,
                   help="cap on the training seconds of each run (default: all steps)")
    p.add_argument("--map-seed", type=int, default=0,
                   help="seed whose class maps are saved (-1: none)")
    p.add_argument("--map-extent", choices=["auto", "all", "labelled"], default="auto",
                   help="pixels of the saved maps: all valid pixels, labelled ones, or auto "
                   "(labelled for simulated scenes, all for real ones; default)")
    p.add_argument("--device", help="where the S2Former methods run: cuda or cpu (default: "
                   "the GPU when there is one)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="autocast of the S2Former methods (default fp32; fp16 is GPU only)")
    p.add_argument("--dry-run", action="store_true", help="list the runs to do and stop")
    p.add_argument("--stop-on-error", action="store_true", help="raise the first error")


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """BenchOptions from parsed command-line arguments."""
    return BenchOptions(
        model=args.model, steps=args.steps, baseline_steps=args.baseline_steps,
        hybridsn_model=args.hybridsn_model,
        checkpoints={"indomain": args.checkpoint_indomain, "nofdc": args.checkpoint_nofdc,
                     "xdomain": args.checkpoint_xdomain},
        train_budget=args.train_budget, map_seed=None if args.map_seed < 0 else args.map_seed,
        map_extent=args.map_extent, device=getattr(args, "device", None),
        precision=getattr(args, "precision", "fp32"))


def run_from_args(args: argparse.Namespace,
                  environment: Callable[[], dict[str, Any]] | None = None) -> int:
    """Run the benchmark from parsed arguments; exit status 1 when a run failed."""
    summary = run_benchmark(
        _split_names(args.scenes), _split_names(args.methods), parse_int_list(args.shots),
        parse_int_list(args.seeds), options_from_args(args), args.out, force=args.force,
        time_limit=args.time_limit, data_root=args.data_root,
        environment=environment() if environment is not None and not args.dry_run else None,
        dry_run=args.dry_run, stop_on_error=args.stop_on_error)
    return 1 if summary.failed else 0
