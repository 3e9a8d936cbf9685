"""Reading hyperspectral scenes and writing class maps."""
from .scene import Scene

__all__ = ["Scene"]
