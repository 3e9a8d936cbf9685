"""The catalogue of classic hyperspectral benchmark scenes: what each scene is and where it lives.

The scenes are those distributed as MATLAB files by the Computational Intelligence Group of the
University of the Basque Country (UPV/EHU), "Hyperspectral Remote Sensing Scenes":
https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes . Each entry knows the
canonical file names, their download addresses, byte sizes and sha256 (where published in
``shared/data/hsi/SOURCES.md``), the .mat variable names, the class names and the sensor preset
that gives the band wavelengths. Fetching and loading them is :mod:`hsizoo.data.download`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from hsizoo.io.scene import Scene

#: Address of the UPV/EHU GIC scenes page; the file URLs below are its MediaWiki uploads.
SOURCE_PAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
_EHU = "http://www.ehu.eus/ccwintco/uploads/"


@dataclass(frozen=True)
class FileInfo:
    """One file of a dataset.

    Attributes:
        name: Canonical file name.
        url: Canonical download address.
        variable: Name of the array inside the .mat file.
        size: Size in bytes, or None when unknown.
        sha256: Hex digest, or None when no checksum is published (verification then warns).
    """

    name: str
    url: str
    variable: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A catalogue entry.

    Attributes:
        name: Catalogue key, e.g. "indian_pines".
        title: Human-readable name.
        cube: The (H, W, B) cube file.
        gt: The (H, W) ground-truth file.
        shape: (H, W, B) of the cube.
        sensor: Name of the :mod:`hsizoo.spectral.sensors` preset with the band wavelengths.
        class_names: Names of classes 1..K.
        class_colors: One (r, g, b) per class.
        description: Scene, sensor, resolution.
        label_remap: Map from the ids stored in the gt file to 1..K, where they differ.
    """

    name: str
    title: str
    cube: FileInfo
    gt: FileInfo
    shape: tuple[int, int, int]
    sensor: str
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    description: str = ""
    label_remap: dict[int, int] = field(default_factory=dict)

    @property
    def files(self) -> tuple[FileInfo, FileInfo]:
        return (self.cube, self.gt)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _f(path: str, variable: str, size: int | None = None, sha256: str | None = None) -> FileInfo:
    return FileInfo(name=path.rsplit("/", 1)[-1], url=_EHU + path, variable=variable, size=size,
                    sha256=sha256)


def _palette(n: int) -> tuple[tuple[int, int, int], ...]:
    from hsizoo.io.colors import default_palette

    return tuple(default_palette(n))


_IP_CLASSES = ("Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
               "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
               "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives",
               "Stone-Steel-Towers")
_IP_COLORS = _palette(16)
_PAVIA_U_CLASSES = ("Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil",
                    "Bitumen", "Self-Blocking Bricks", "Shadows")
# Pavia colours by cover type (vegetation green, water blue, built surfaces grey/red).
_PAVIA_U_COLORS = ((192, 192, 192), (0, 255, 0), (0, 255, 255), (0, 128, 0), (255, 0, 255),
                   (165, 82, 41), (128, 0, 128), (255, 0, 0), (255, 255, 0))
_PAVIA_C_CLASSES = ("Water", "Trees", "Asphalt", "Self-Blocking Bricks", "Bitumen", "Tiles",
                    "Shadows", "Meadows", "Bare Soil")
_PAVIA_C_COLORS = ((0, 0, 255), (0, 128, 0), (192, 192, 192), (255, 0, 0), (128, 0, 128),
                   (255, 128, 0), (255, 255, 0), (0, 255, 0), (165, 82, 41))
_SALINAS_CLASSES = ("Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow",
                    "Fallow_smooth", "Stubble", "Celery", "Grapes_untrained",
                    "Soil_vinyard_develop", "Corn_senesced_green_weeds", "Lettuce_romaine_4wk",
                    "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk",
                    "Vinyard_untrained", "Vinyard_vertical_trellis")
_KSC_CLASSES = ("Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock",
                "Slash pine", "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh",
                "Spartina marsh", "Cattail marsh", "Salt marsh", "Mud flats", "Water")
_BOTSWANA_CLASSES = ("Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2",
                     "Reeds", "Riparian", "Firescar", "Island interior", "Acacia woodlands",
                     "Acacia shrublands", "Acacia grasslands", "Short mopane", "Mixed mopane",
                     "Exposed soils")
# SalinasA keeps the Salinas class ids of its six classes in the gt file.
_SALINAS_A_IDS = (1, 10, 11, 12, 13, 14)

_IP_GT = _f("c/c4/Indian_pines_gt.mat", "indian_pines_gt", 1_125,
            "65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c")
_SALINAS_GT = _f("f/fa/Salinas_gt.mat", "salinas_gt", 4_277,
                 "ecfab4d31ef5553f097943235d8ea502038eb4a2067b2ad10b33e37c949955e2")

_CATALOGUE: dict[str, DatasetInfo] = {
    d.name: d for d in (
        DatasetInfo(
            "indian_pines", "Indian Pines (corrected, 200 bands)",
            _f("6/67/Indian_pines_corrected.mat", "indian_pines_corrected", 5_953_527,
               "ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939"),
            _IP_GT, (145, 145, 200), "aviris_indian_pines", _IP_CLASSES, _IP_COLORS,
            "AVIRIS, 1992, Purdue Indian Pines test site (Indiana), 20 m; 220 channels less the "
            "20 water-absorption channels 104-108, 150-163 and 220."),
        DatasetInfo(
            "indian_pines_220", "Indian Pines (original, 220 bands)",
            _f("2/22/Indian_pines.mat", "indian_pines", 6_296_374,
               "fd6498950de76fb68680e335d30dae63f2337be8ba4b3ab8aa8dbb7b36cff273"),
            _IP_GT, (145, 145, 220), "aviris_indian_pines_220", _IP_CLASSES, _IP_COLORS,
            "AVIRIS, 1992, Purdue Indian Pines test site (Indiana), 20 m; all 220 channels."),
        DatasetInfo(
            "pavia_university", "Pavia University",
            _f("e/ee/PaviaU.mat", "paviaU", 34_806_917,
               "28447fa87f7a5797845e9a189c0da85e23b1d06a4ba7361e5ff44efbf834d2fb"),
            _f("5/50/PaviaU_gt.mat", "paviaU_gt", 11_005,
               "23f6a426928f9b32984adffe659e29f554f9fb6c93b5a107528d308d5087a829"),
            (610, 340, 103), "rosis", _PAVIA_U_CLASSES, _PAVIA_U_COLORS,
            "ROSIS-03, 2003, University of Pavia (Italy), 1.3 m; 103 bands 430-860 nm."),
        DatasetInfo(
            "pavia_centre", "Pavia Centre",
            _f("e/e3/Pavia.mat", "pavia", 129_624_657,
               "b60341da323fd271cd97dd6d7a69514d385ccd7fdfc5a60c4ff5994b047f152e"),
            _f("5/53/Pavia_gt.mat", "pavia_gt", 34_887,
               "7eb54ab81b404dd3ae572e6d0ec211595029e5a847bec2cfb8f9e72d07066b69"),
            (1096, 715, 102), "rosis_pavia_centre", _PAVIA_C_CLASSES, _PAVIA_C_COLORS,
            "ROSIS-03, 2003, Pavia city centre (Italy), 1.3 m; 102 bands 430-860 nm."),
        DatasetInfo(
            "salinas", "Salinas",
            _f("a/a3/Salinas_corrected.mat", "salinas_corrected", 26_552_770,
               "5ec1c0d22f56d18ecd336f8e35735863c0f160682e04e0c18ef3f89a3334d87d"),
            _SALINAS_GT, (512, 217, 204), "aviris_salinas", _SALINAS_CLASSES, _palette(16),
            "AVIRIS, 1998, Salinas Valley (California), 3.7 m; 224 channels less 108-112, "
            "154-167 and 224."),
        DatasetInfo(
            "salinas_a", "SalinasA",
            _f("1/1a/SalinasA_corrected.mat", "salinasA_corrected", 1_539_086,
               "d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721"),
            _f("a/aa/SalinasA_gt.mat", "salinasA_gt"),
            (86, 83, 204), "aviris_salinas",
            tuple(_SALINAS_CLASSES[i - 1] for i in _SALINAS_A_IDS),
            tuple(_palette(16)[i - 1] for i in _SALINAS_A_IDS),
            "An 86 x 83 subscene of Salinas (AVIRIS, 3.7 m) with 6 classes; the gt file keeps the "
            "Salinas ids 1, 10-14, which load_dataset maps to 1..6.",
            {old: new for new, old in enumerate(_SALINAS_A_IDS, start=1)}),
        DatasetInfo(
            "ksc", "Kennedy Space Center",
            _f("2/26/KSC.mat", "KSC", 56_824_624,
               "b1ad011cfdb65c853e4f9f6108ca4774467d87f90a5c23b74ff3a2984a3b4786"),
            _f("a/a6/KSC_gt.mat", "KSC_gt"),
            (512, 614, 176), "aviris_ksc", _KSC_CLASSES, _palette(13),
            "AVIRIS, 1996, Kennedy Space Center (Florida), 18 m; 176 bands after removing "
            "water-absorption and low-SNR bands."),
        DatasetInfo(
            "botswana", "Botswana",
            _f("7/72/Botswana.mat", "Botswana", 78_911_133,
               "f1603903c844cdc2980550b0180688e8e1a72d4292595d1120e1dec2a80a91c7"),
            _f("5/58/Botswana_gt.mat", "Botswana_gt"),
            (1476, 256, 145), "hyperion_botswana", _BOTSWANA_CLASSES, _palette(14),
            "EO-1 Hyperion, 2001-2004, Okavango Delta (Botswana), 30 m; 145 of 242 channels."),
    )
}


def list_datasets() -> list[str]:
    """Names of the catalogue's datasets.

    Returns:
        Sorted dataset names accepted by :func:`load_dataset`.
    """
    return sorted(_CATALOGUE)


def get_dataset_info(name: str) -> DatasetInfo:
    """Look up a catalogue entry.

    Args:
        name: Dataset name (case-insensitive; "-" and spaces count as "_").

    Returns:
        The :class:`DatasetInfo`.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _CATALOGUE:
        raise KeyError(f"Unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}.")
    return _CATALOGUE[key]


def sensor_for_file(file_name: str, num_bands: int) -> str | None:
    """The sensor preset of the catalogue cube file with this name and band count, if any."""
    for info in _CATALOGUE.values():
        if info.cube.name.lower() == file_name.lower() and info.shape[2] == num_bands:
            return info.sensor
    return None
