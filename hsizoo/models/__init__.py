"""hsizoo's model families; importing this registers them in timm's registry."""
from hsizoo.models import s2former  # noqa: F401  (registers the S2Former variants)
from hsizoo.models import hybridsn  # noqa: F401  (registers the HybridSN baseline)
from hsizoo.models.s2former import S2Former

__all__ = ["S2Former"]
