"""The catalogue of classic hyperspectral benchmark scenes, with verified download and loading.

The scenes are those distributed as MATLAB files by the Computational Intelligence Group of the
University of the Basque Country (UPV/EHU), "Hyperspectral Remote Sensing Scenes":
https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes . Each entry knows the
canonical file names, their download addresses, byte sizes and sha256 (where published in
``shared/data/hsi/SOURCES.md``), the .mat variable names, the class names and the sensor preset
that gives the band wavelengths.

Files live flat in one folder: ``root`` argument, else ``$HSIZOO_DATA_DIR``, else
``~/.cache/hsizoo/data``. Downloads stream to a temporary file in that folder, are checked against
the catalogue's size and sha256, and only then renamed into place; a failed or interrupted
download leaves nothing behind. ``$HSIZOO_DATASET_URL`` (or ``base_url=``) points downloads at a
mirror that serves the files flat as ``<base_url>/<file name>``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .io.atomic import AtomicFile, file_sha256

if TYPE_CHECKING:
    from .io.scene import Scene

#: Address of the UPV/EHU GIC scenes page; the file URLs below are its MediaWiki uploads.
SOURCE_PAGE = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
_EHU = "http://www.ehu.eus/ccwintco/uploads/"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


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
        sensor: Name of the :mod:`hsizoo.sensors` preset with the band wavelengths.
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
    from .io.colors import default_palette

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


def default_root() -> Path:
    """Dataset folder: ``$HSIZOO_DATA_DIR``, else ``~/.cache/hsizoo/data``."""
    env = os.environ.get("HSIZOO_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hsizoo" / "data"


def verify_file(path: str | Path, info: FileInfo) -> bool:
    """Check a local file against the catalogue's size and sha256.

    Args:
        path: Local file.
        info: Its catalogue entry.

    Returns:
        True when verified, False when the catalogue has no checksum (a warning says so).

    Raises:
        ValueError: size or sha256 differ.
    """
    p = Path(path)
    size = p.stat().st_size
    if info.size is not None and size != info.size:
        raise ValueError(
            f"{p} has {size:,} bytes but the canonical {info.name} has {info.size:,}; the file is "
            f"truncated or a different version. Delete it and download again (download=True), or "
            "pass verify=False to use it anyway."
        )
    if info.sha256 is None:
        warnings.warn(f"No published sha256 for {info.name}; cannot verify {p}.", UserWarning,
                      stacklevel=2)
        return False
    digest = file_sha256(p)
    if digest != info.sha256:
        raise ValueError(
            f"sha256 of {p} is {digest}, expected {info.sha256} for the canonical {info.name}; the "
            "file is corrupt or a different version. Delete it and download again (download=True), "
            "or pass verify=False to use it anyway."
        )
    return True


def _file_url(info: FileInfo, base_url: str | None) -> str:
    base = base_url or os.environ.get("HSIZOO_DATASET_URL")
    return f"{base.rstrip('/')}/{info.name}" if base else info.url


def download_file(info: FileInfo, root: str | Path, base_url: str | None = None,
                  timeout: float = _TIMEOUT_S, progress: bool = True) -> Path:
    """Download one file into ``root`` atomically, verified against size and sha256.

    The bytes go to a temporary file in ``root``; only a complete, verified file is renamed to
    its final name. Any failure (HTTP error, timeout, dropped connection, short transfer, size or
    checksum mismatch, Ctrl-C) deletes the temporary file.

    Args:
        info: The file's catalogue entry.
        root: Target folder (created if missing).
        base_url: Mirror serving ``<base_url>/<name>``; default ``$HSIZOO_DATASET_URL``, else the
            canonical address.
        timeout: Seconds to wait for the server on connect and on each read.
        progress: Show a tqdm progress bar.

    Returns:
        The path of the downloaded file.
    """
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    from tqdm.auto import tqdm

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    target = root / info.name
    url = _file_url(info, base_url)
    part = AtomicFile(target, overwrite=True)  # hidden partial name, fsync, rename, umask
    tmp = part.tmp
    try:
        with open(tmp, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "hsizoo"})
            try:
                resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http(s) only)
            except urllib.error.HTTPError as err:
                raise OSError(f"Downloading {url} failed: HTTP {err.code} {err.reason}.") from err
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                raise OSError(f"Downloading {url} failed: {err}.") from err
            with resp:
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else info.size
                digest = hashlib.sha256()
                received = 0
                with tqdm(total=expected, unit="B", unit_scale=True, desc=info.name,
                          disable=not progress, leave=False) as bar:
                    try:
                        while True:
                            chunk = resp.read(_CHUNK)
                            if not chunk:
                                break
                            out.write(chunk)
                            digest.update(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
                    except (HTTPException, OSError, TimeoutError) as err:
                        raise OSError(
                            f"Downloading {url} broke off after {received:,} bytes: {err!r}."
                        ) from err
        if length and length.isdigit() and received != int(length):
            raise OSError(
                f"Downloading {url} broke off: received {received:,} of {int(length):,} bytes."
            )
        if info.size is not None and received != info.size:
            raise ValueError(
                f"Downloaded {url}: {received:,} bytes, but the canonical {info.name} has "
                f"{info.size:,}. The server sent a different file; nothing was saved."
            )
        if info.sha256 is not None and digest.hexdigest() != info.sha256:
            raise ValueError(
                f"Downloaded {url}: sha256 {digest.hexdigest()} differs from the catalogue's "
                f"{info.sha256} for {info.name}; the file is corrupt or was changed. Nothing was "
                "saved; try again or use another mirror (base_url= / HSIZOO_DATASET_URL)."
            )
        if info.sha256 is None:
            warnings.warn(f"No published sha256 for {info.name}; downloaded file not verified.",
                          UserWarning, stacklevel=2)
        part.commit()
    except BaseException:
        # also on KeyboardInterrupt: never leave a half file behind
        part.abort()
        raise
    return target


def dataset_paths(name: str, root: str | Path | None = None) -> dict[str, Path]:
    """Where the dataset's files are (or would be) on disk.

    Args:
        name: Dataset name.
        root: Dataset folder; default :func:`default_root`.

    Returns:
        ``{"cube": path, "gt": path}``.
    """
    info = get_dataset_info(name)
    folder = Path(root).expanduser() if root is not None else default_root()
    return {"cube": folder / info.cube.name, "gt": folder / info.gt.name}


def _wavelengths(info: DatasetInfo):  # noqa: ANN202 - returns (wavelengths, fwhm)
    from . import sensors

    try:
        preset = sensors.get_sensor(info.sensor)
        return preset.wavelengths, preset.fwhm
    except KeyError:
        # The 220-channel Indian Pines grid has no public preset yet; build it from the
        # sensors module's AVIRIS 220 grid, of which the 200-band preset is a subset.
        builder = getattr(sensors, "_aviris_220", None)
        if info.sensor == "aviris_indian_pines_220" and builder is not None:
            return builder()
        raise


def load_dataset(name: str, root: str | Path | None = None, download: bool = False, *,
                 base_url: str | None = None, verify: bool = True,
                 progress: bool = True) -> "Scene":
    """Load a catalogue scene with its labels, class names and wavelengths.

    Args:
        name: One of :func:`list_datasets`.
        root: Folder holding the files; default ``$HSIZOO_DATA_DIR``, else ``~/.cache/hsizoo/data``.
        download: Download missing files (verified, atomic).
        base_url: Mirror for downloads (``<base_url>/<file name>``); default
            ``$HSIZOO_DATASET_URL``, else the canonical UPV/EHU address.
        verify: Check local files' size and sha256 against the catalogue before reading.
        progress: Show a progress bar while downloading.

    Returns:
        A :class:`~hsizoo.io.Scene` with ``labels`` (0 = unlabelled, 1..K), ``class_names``,
        ``sensor`` and ``meta["dataset"]``, ``meta["class_colors"]``.

    Raises:
        FileNotFoundError: files missing and ``download`` is False (the message names the files,
            the folder and the download addresses).
        ValueError: a file fails verification.
    """
    from .io.readers import _read_mat, read_labels

    info = get_dataset_info(name)
    paths = dataset_paths(info.name, root)
    folder = paths["cube"].parent
    missing = [(fi, paths[role]) for role, fi in (("cube", info.cube), ("gt", info.gt))
               if not paths[role].is_file()]
    if missing and not download:
        listing = "; ".join(f"{fi.name} ({_file_url(fi, base_url)})" for fi, _ in missing)
        raise FileNotFoundError(
            f"Dataset {info.name!r} is not in {folder}: missing {listing}. Pass download=True to "
            f"fetch it, download the files into that folder yourself (see {SOURCE_PAGE}), or point "
            "root= / $HSIZOO_DATA_DIR at the folder that holds them."
        )
    for fi, _ in missing:
        download_file(fi, folder, base_url=base_url, progress=progress)
    verified = {}
    if verify:
        for role, fi in (("cube", info.cube), ("gt", info.gt)):
            verified[fi.name] = verify_file(paths[role], fi)
    wl, fwhm = _wavelengths(info)
    scene = _read_mat(paths["cube"], info.cube.variable, wl, None, None)
    labels = read_labels(paths["gt"], variable=info.gt.variable)
    if info.label_remap:
        remapped = labels.copy()
        for old, new in info.label_remap.items():
            remapped[labels == old] = new
        labels = remapped
    if labels.shape != scene.cube.shape[:2]:
        raise ValueError(f"{paths['gt']} has shape {labels.shape}, the cube {scene.cube.shape[:2]};"
                         " one of the files is not the canonical one.")
    if labels.max() > info.num_classes:
        raise ValueError(f"{paths['gt']} holds class id {labels.max()} but {info.name!r} has "
                         f"{info.num_classes} classes; the file is not the canonical one.")
    scene.labels = labels
    scene.class_names = list(info.class_names)
    scene.sensor = info.sensor
    scene.fwhm = None if fwhm is None else fwhm.astype("float64")
    scene.meta.update(dataset=info.name, title=info.title, class_colors=list(info.class_colors),
                      verified=verified, wavelength_source=f"sensor preset {info.sensor!r}")
    return scene
