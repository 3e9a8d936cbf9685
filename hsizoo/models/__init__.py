"""hsizoo's model families; importing this registers them in timm's registry."""
from hsizoo.models import s2former  # noqa: F401  (registers the S2Former variants)
from hsizoo.models import hybridsn  # noqa: F401  (registers the HybridSN baseline)
from hsizoo.models.s2former import S2Former
from hsizoo.hub.hf_names import install_timm_fallback

# timm.create_model("hf-hub:<an hsizoo repository>") gets the offline fallback of hsizoo's own
# factory (hsizoo.hub.hf_names): the models and the fallback arrive together.
install_timm_fallback()

__all__ = ["S2Former"]
