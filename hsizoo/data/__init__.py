"""Scene data: the catalogue of benchmark scenes, simulated scenes, label splits, patches, metrics.

:mod:`.catalogue` (verified download and loading of the classic scenes), :mod:`.simulate`
(simulated scenes from a real spectral library; its parts in :mod:`.spectral_library`,
:mod:`.layouts` and :mod:`.materials`), :mod:`.splits` (few-shot train/test splits),
:mod:`.patches` (the one patch extractor) and :mod:`.metrics` (OA, AA, kappa of a class map).
"""
