"""Materials of simulated scenes: the endmember spectra and material mix of every class.

One job: choose, from the spectral library (:mod:`hsizoo.data.spectral_library`), the spectra each
class of a simulated scene mixes. A class follows a *recipe* (picked from its name by keyword, or
in turn for unnamed classes) of 1-3 material *slots* drawn by earthlib cover type (vegetation,
soil, non-photosynthetic vegetation, dark and bright urban surfaces, char; water is a synthetic
analytic spectrum since the library has none), with class-specific Dirichlet proportions and a
brightness gain. Each slot holds a few similar spectra (the chosen one and its nearest
neighbours of the same cover type). How pixels mix them is done in :mod:`hsizoo.data.simulate`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hsizoo.data.spectral_library import SpectralLibrary


# Material groups by earthlib LEVEL_3 cover type.
_GROUPS: dict[str, tuple[str, ...]] = {
    "vegetation": ("canopy",),
    "soil": ("soil", "dirt", "sand"),
    "npv": ("litter", "npv", "bark", "wood"),
    "built_dark": ("asphalt", "road", "parking_lot", "comp_shingle", "concrete_tile"),
    "built_bright": ("sidewalk", "driveway", "paint", "metal", "tile", "bridge", "manhole",
                     "gravel", "wood_shingle", "other"),
    "char": ("char",),
}

# Recipes (slot groups, Dirichlet concentration of the proportions, brightness gain). The first
# slot dominates; the others give the realistic confusion (soil under crops, weeds in fallow).
_RECIPES: dict[str, tuple[tuple[str, ...], tuple[float, ...], float]] = {
    "crop": (("vegetation", "soil", "npv"), (6.0, 2.5, 1.0), 1.0),
    "grass": (("vegetation", "vegetation", "soil"), (6.0, 3.0, 1.0), 1.0),
    "trees": (("vegetation", "npv"), (8.0, 1.5), 1.0),
    "soil": (("soil", "npv", "vegetation"), (8.0, 1.5, 1.0), 1.0),
    "senescent": (("npv", "vegetation", "soil"), (5.0, 2.5, 2.0), 1.0),
    "dark_urban": (("built_dark", "built_dark", "soil"), (6.0, 2.0, 1.0), 1.0),
    "bright_urban": (("built_bright", "built_dark"), (8.0, 1.5), 1.0),
    "shadow": (("built_dark", "vegetation"), (4.0, 2.0), 0.22),
    "water": (("water",), (1.0,), 1.0),
    "marsh": (("vegetation", "water", "soil"), (5.0, 2.0, 1.5), 1.0),
    "background": (("soil", "vegetation", "npv"), (3.0, 3.0, 1.5), 1.0),
}
# Recipes of unnamed classes, in turn (vegetation-heavy, as most benchmark scenes are).
_PALETTE = ("crop", "grass", "soil", "trees", "dark_urban", "crop", "senescent", "bright_urban",
            "grass", "crop", "soil", "trees")
# Class-name keywords -> recipe, first match wins.
_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("shadow",), "shadow"),
    (("water",), "water"),
    (("marsh", "swamp"), "marsh"),
    (("asphalt", "bitumen", "road", "drive", "parking"), "dark_urban"),
    (("brick", "metal", "sheet", "roof", "tile", "building", "tower", "steel", "concrete",
      "gravel", "urban"), "bright_urban"),
    (("stubble", "senesced", "litter", "hay", "npv"), "senescent"),
    (("soil", "fallow", "mud", "bare", "plow", "sand"), "soil"),
    (("tree", "wood", "pine", "hammock", "forest", "scrub"), "trees"),
    (("grass", "meadow", "pasture", "lawn"), "grass"),
)
_VARIANTS = 4  # similar spectra per slot (within-class endmember variability)


def _recipe_for(name: str | None, index: int) -> str:
    if name is not None:
        low = name.lower()
        for words, recipe in _KEYWORDS:
            if any(wd in low for wd in words):
                return recipe
        if not re.fullmatch(r"class_?\d+", low):
            return "crop"  # a named crop or plant
    return _PALETTE[index % len(_PALETTE)]


def _water_spectra(wl: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic inland-water reflectance (the library has none): a low, green-peaked visible
    reflectance that vanishes in the near infrared, with turbidity varying between variants."""
    out = []
    for _ in range(n):
        turbid = rng.uniform(0.5, 1.5)
        vis = 0.015 + 0.035 * turbid * np.exp(-0.5 * ((wl - 560.0) / 70.0) ** 2)
        nir = np.exp(-np.clip(wl - 700.0, 0, None) / (40.0 + 30.0 * turbid))
        out.append(vis * nir + 0.002)
    return np.asarray(out, dtype=np.float32)


@dataclass
class _ClassMix:
    slots: list[np.ndarray]  # rows of the endmember table, one array of variants per slot
    proportions: np.ndarray  # (S,) mean slot proportions
    gain: float
    recipe: str
    ids: list[str]


class _Materials:
    """Endmember table of one simulation and the material mix of every class."""

    def __init__(self, lib: SpectralLibrary, rng: np.random.Generator,
                 pool: dict[str, int] | None = None) -> None:
        self.lib, self.rng = lib, rng
        # At most pool[group] distinct picks per cover type; later classes reuse one of them
        # (crops on the same soils: classes then differ by proportions, not by materials).
        self.pool = dict(pool or {})
        self.picked: dict[str, list[np.ndarray]] = {}
        self.rows: list[np.ndarray] = []  # library-wavelength spectra of the table
        self.ids: list[str] = []
        level3 = np.char.lower(lib.metadata["LEVEL_3"].astype(str))
        self.group_rows = {g: np.flatnonzero(np.isin(level3, v)) for g, v in _GROUPS.items()}
        self.chosen: dict[str, list[int]] = {g: [] for g in _GROUPS}

    def _add(self, spectra: np.ndarray, ids: list[str]) -> np.ndarray:
        start = len(self.rows)
        self.rows.extend(spectra)
        self.ids.extend(ids)
        return np.arange(start, len(self.rows))

    def _pick(self, group: str) -> np.ndarray:
        done = self.picked.setdefault(group, [])
        if group in self.pool and len(done) >= self.pool[group]:
            return done[int(self.rng.integers(len(done)))]
        rows = self._pick_new(group)
        done.append(rows)
        return rows

    def _pick_new(self, group: str) -> np.ndarray:
        if group == "water":
            return self._add(_water_spectra(self.lib.wavelengths, self.rng, _VARIANTS),
                             ["synthetic:water"] * _VARIANTS)
        rows = self.group_rows[group]
        spectra = self.lib.spectra[rows]
        # Of a few random candidates, take the one farthest from the spectra this group already
        # gave other classes: classes of one cover type stay distinct yet alike.
        cands = self.rng.choice(rows.size, size=min(6, rows.size), replace=False)
        if self.chosen[group]:
            prev = self.lib.spectra[self.chosen[group]]
            d = ((spectra[cands, None, :] - prev[None]) ** 2).sum(-1).min(1)
            base = int(cands[np.argmax(d)])
        else:
            base = int(cands[0])
        self.chosen[group].append(int(rows[base]))
        # Variants: the base and its nearest neighbours within the group.
        d = ((spectra - spectra[base]) ** 2).sum(1)
        near = np.argsort(d, kind="stable")[:_VARIANTS]
        return self._add(spectra[near], [self.lib.names[int(rows[i])] for i in near])

    def mix(self, recipe: str) -> _ClassMix:
        groups, conc, gain = _RECIPES[recipe]
        # Classes use 1-3 of the recipe's slots; the dominant slot always.
        n = int(self.rng.integers(1, len(groups) + 1)) if len(groups) > 1 else 1
        n = max(n, min(2, len(groups)))  # at least two slots where the recipe has two
        slots = [self._pick(g) for g in groups[:n]]
        props = self.rng.dirichlet(np.asarray(conc[:n]) * 2.0)
        props = np.sort(props)[::-1]  # the recipe's first slot dominates
        ids = [self.ids[s[0]] for s in slots]
        return _ClassMix(slots, props, gain * float(self.rng.uniform(0.9, 1.1)), recipe, ids)

    def table(self) -> np.ndarray:
        return np.asarray(self.rows, dtype=np.float64)
