"""Register hsizoo's models with timm when timm is imported, so ``import hsizoo`` stays light.

``import hsizoo; timm.create_model("s2former_base")`` must work, but importing the model files
means importing torch and timm (about 5 s on a small machine), which ``hsizoo --help`` and
``hsizoo --version`` do not need. So ``import hsizoo`` registers the models right away when timm
is already imported, and otherwise adds a one-shot import hook that imports
:mod:`hsizoo.models` (whose ``@register_model`` decorators fill timm's registry) just after timm's
own ``__init__`` has run. Either way a program that imports hsizoo sees the models in timm's
registry the moment it can use timm.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

__all__ = ["register_with_timm"]


def _register() -> None:
    try:
        importlib.import_module("hsizoo.models")
    except Exception as err:  # timm itself stays usable; hsizoo's models are what is missing
        warnings.warn(f"hsizoo's models could not be registered with timm ({type(err).__name__}: "
                      f"{err}); `import hsizoo.models` shows the full error.", ImportWarning,
                      stacklevel=2)


class _AfterTimm(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``timm`` to register hsizoo's models after it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "timm":
            return None
        _remove()
        spec = importlib.util.find_spec("timm")  # the regular finders, this one removed
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _register()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _remove() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterTimm)]


def register_with_timm() -> None:
    """Register hsizoo's models now if timm is imported, else as soon as it is."""
    if "timm" in sys.modules:
        _register()
    elif not any(isinstance(f, _AfterTimm) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTimm())
