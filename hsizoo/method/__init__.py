"""The method of arXiv 2601.18088 as hsizoo implements it, one part per module.

Pretraining: :mod:`.objective` (S2Former with light decoders, masked reconstruction) and
:mod:`.losses` (pixel-domain reconstruction and FDC, the frequency-domain constraint).
Fine-tuning: :mod:`.daft` (DAFT's teacher, noise schedule and distillation losses),
:mod:`.transduction` (label propagation over a k-NN graph of the whole scene; its graph
primitives in :mod:`.graph`), :mod:`.views` (the embedding graph as a second view),
:mod:`.graph_cv` (graph settings by cross-validation on the shots) and :mod:`.smoothing`
(spatial regularisation of probability maps). Judging a backbone: :mod:`.probe` (linear and
graph probes on frozen features).

The runs that use these parts live in :mod:`hsizoo.pretrain` and :mod:`hsizoo.finetune`.
"""
