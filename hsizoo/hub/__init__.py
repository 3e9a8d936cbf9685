"""The weights hub: where checkpoints come from, how they are verified, saved and described.

:mod:`.cfg` (timm's PretrainedCfg plus the pins hsizoo verifies), :mod:`.verify` (sha256 and
config checks of a checkpoint folder), :mod:`.shipped` (checkpoints inside the package),
:mod:`.fetch` (the Hugging Face cache and Hub through huggingface_hub), :mod:`.load`
(offline-first lookup and safetensors loading), :mod:`.download` (fetch ahead of time),
:mod:`.save` (a Hub-ready folder, checked, then uploaded) and :mod:`.card` (model cards).
"""
