"""Few-shot fine-tuning: ``hsizoo.finetune(scene, labels, shots=10)`` to a georeferenced class map.

Transductive DAFT, the method as this project reads it (DESIGN.md, "DAFT"), tuned for a CPU and a
handful of labels per class:

The settings of a run are one documented object, :class:`~.recipe.FinetuneRecipe`; the run
reads as the method's stages:

1. Inputs (:mod:`.prepare`, :mod:`.inputs`): the scene is standardised per band with its own
   statistics, the label map is checked and the shots drawn, the backbone built from the
   self-supervised weights that suit the scene, adapted to it without labels first when they
   were not pretrained on its sensor (:mod:`hsizoo.pretrain.adapt`, ``adapt_steps``).
2. Teacher and transduction (:mod:`.pseudo`): label propagation from the shots over a k-NN graph
   of all valid pixels (spectra and position) gives the teacher's first pseudo-labels,
   class-balanced (:mod:`hsizoo.method.transduction`).
3. Student (:mod:`.training`, :mod:`.student`): head warm-up on frozen features, then full
   fine-tuning with layer-wise learning-rate decay on class-balanced shots and pseudo-labels,
   with DAFT's diffusion-noised feature alignment and prediction agreement against an EMA teacher
   (:mod:`hsizoo.method.daft`); the improved teacher refreshes the pseudo-labels.
4. Refinement (:mod:`.result`): on the training scene, the student's spatially regularised
   probabilities propagated over the scene's graph; on other scenes, the student alone.

Every part is switchable (``daft=``, ``transduction=``, ``pseudo_rounds=``); ``daft=False`` is
plain fine-tuning on the shots. No test label is ever used: the only labels are the shots.
"""
from __future__ import annotations

import sys
import time
import types
from typing import Any, Sequence

from hsizoo.finetune.inputs import prepare_labels, weights_know_scene
from hsizoo.finetune.prepare import prepare
from hsizoo.finetune.pseudo import PseudoLabels, SceneGraph
from hsizoo.finetune.recipe import AUTO_ADAPT_STEPS, FinetuneRecipe
from hsizoo.finetune.result import FineTuned, load_finetuned
from hsizoo.finetune.student import scene_embeddings, train_student
from hsizoo.finetune.training import fit_head
from hsizoo.method.transduction import TransductionConfig

__all__ = ["FineTuned", "FinetuneRecipe", "TransductionConfig", "finetune", "load_finetuned",
           "prepare_labels"]


def finetune(scene_or_cube: Any, labels: Any = None, shots: int | None = 10,
             model: str | None = None, pretrained: bool | None = None, seed: int | None = None,
             wavelengths: Sequence[float] | None = None, *, sensor: str | None = None,
             class_names: Sequence[str] | None = None, recipe: FinetuneRecipe | None = None,
             nodata: float | None = None, **settings: Any) -> FineTuned:
    """Fine-tune an S2Former on a few labelled pixels of a scene (DAFT by default).

    Args:
        scene_or_cube: A :class:`~hsizoo.io.Scene`, a raster / .mat path, or an (H, W, B) array
            (then give ``wavelengths`` or ``sensor``).
        labels: (H, W) label map (0 = unlabelled, 1..K), a file holding one, or None for the
            scene's own labels. A full map gives ``shots`` pixels per class drawn with ``seed``;
            with ``shots=None`` it is a sparse map whose labelled pixels are all used.
        shots: Training pixels per class, or None for every labelled pixel.
        model, pretrained, seed: Recipe settings, also accepted by position (see
            :class:`FinetuneRecipe`).
        wavelengths: Band centres in nm (override the scene's).
        sensor: Sensor preset naming the bands of an array or a file without wavelengths.
        class_names: Names of classes 1..K (default the scene's, else "class k").
        recipe: A :class:`FinetuneRecipe`; keyword settings override its fields.
        nodata: The cube's fill value (pixels with it in any band are invalid: not trained on,
            not classified), for an array or a file that does not declare one. Pixels holding
            one value in every band are refused unless declared this way.
        **settings: Any field of :class:`FinetuneRecipe` (``steps=``, ``daft=``, ``device=``, ...).

    Returns:
        A :class:`FineTuned`.

    Raises:
        TypeError: an unknown setting.
        ValueError: an invalid setting, bad labels or shots, a sensor the model cannot use,
            missing weights with ``pretrained=True``.
    """
    recipe = FinetuneRecipe.resolve(recipe, model=model, pretrained=pretrained, seed=seed,
                                    **settings)
    marks = {"start": time.perf_counter()}
    inputs = prepare(scene_or_cube, labels, shots, recipe, wavelengths, sensor, class_names,
                     nodata)
    history: dict[str, Any] = {**recipe.as_history(), **inputs.history(), "shots": shots}
    marks["prepare"] = time.perf_counter()
    adapt_steps, history["adapt_rule"] = _adapt_steps(inputs, recipe)
    if adapt_steps > 0:
        history["adapt"] = _scene_adapt(inputs, recipe, adapt_steps)
    marks["adapt"] = time.perf_counter()

    # Teacher and transduction: the first pseudo-labels come from propagation over the scene.
    graph = None
    if recipe.uses_graph:
        embeddings = None
        tcfg = recipe.transduction
        if tcfg.embedding_view or tcfg.view_refresh:  # the backbone as it starts (after adaptation)
            embeddings = scene_embeddings(inputs.net, inputs.padded, inputs.scene.valid,
                                          inputs.wavelengths, inputs.precision).numpy()
        graph = SceneGraph(inputs.std_cube, inputs.scene.valid, inputs.train,
                           inputs.num_classes, recipe.transduction, embeddings)
    if graph is not None and graph.cv is not None:
        history["graph_cv"] = graph.cv
    pseudo = None
    if recipe.daft.enabled and recipe.daft.pseudo_weight > 0 and inputs.unlabelled[0].size > 0 \
            and (graph is not None or recipe.pseudo_rounds > 0):
        pseudo = PseudoLabels(inputs, recipe.transduction, graph,
                              history.setdefault("pseudo_counts", []))
        if graph is not None:
            pseudo.set(graph.probs)
    marks["graph"] = time.perf_counter()

    # Student: head warm-up on frozen features, then DAFT against the teacher.
    if recipe.head_steps > 0:
        history["head_loss"] = fit_head(inputs.net, inputs.x_lab, inputs.y, inputs.wavelengths,
                                        recipe.head_steps, 1e-2, recipe.label_smoothing,
                                        inputs.precision)
    marks["head"] = time.perf_counter()
    history.update(train_student(inputs, recipe, pseudo, marks["start"]))
    marks["finetune"] = time.perf_counter()
    names = list(marks)
    history["seconds"] = {b: marks[b] - marks[a] for a, b in zip(names, names[1:])}
    history["seconds"]["total"] = marks["finetune"] - marks["start"]

    # Refinement: the result carries the graph refiner of its own scene.
    return FineTuned(model=inputs.net, stats=inputs.stats, wavelengths=inputs.wavelengths,
                     class_names=inputs.class_names, train_labels=inputs.train,
                     scene=inputs.scene, history=history, smooth_sigma=float(recipe.smooth_sigma),
                     precision=inputs.precision,
                     refiner=graph.refiner() if graph is not None else None)


def _adapt_steps(inputs: Any, recipe: FinetuneRecipe) -> tuple[int, str]:
    """How many scene-adaptation steps to run, and why (recorded in the history)."""
    if recipe.adapt_steps is not None:
        return recipe.adapt_steps, "set by the recipe"
    knows = weights_know_scene(inputs.net, inputs.weights, inputs.scene.sensor,
                               inputs.wavelengths)
    if knows is False:
        return AUTO_ADAPT_STEPS, ("auto: the published weights were not pretrained on this "
                                  "scene's sensor")
    if knows:
        return 0, "auto: the weights were pretrained on this scene's sensor"
    return 0, "auto: not published weights (random, a checkpoint file or a saved model)"


def _scene_adapt(inputs: Any, recipe: FinetuneRecipe, steps: int) -> dict[str, Any]:
    """Scene-adaptive self-supervised steps (the weights' pretraining objective) on the unlabelled
    cube."""
    from hsizoo.pretrain.adapt import adapt_to_scene

    return dict(adapt_to_scene(inputs.net, inputs.scene, steps=steps, seed=recipe.seed,
                               progress=recipe.progress) or {})


class _CallableModule(types.ModuleType):
    """``hsizoo.finetune`` is both this package and its main function: whichever of the two the
    package attribute holds (it depends on import order), calling it fine-tunes."""

    def __call__(self, *args: Any, **kwargs: Any) -> FineTuned:
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
