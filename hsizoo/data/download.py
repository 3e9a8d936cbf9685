"""Verified download and loading of the catalogue's scenes (:mod:`hsizoo.data.catalogue`).

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
from pathlib import Path
from typing import TYPE_CHECKING

from hsizoo.data.catalogue import SOURCE_PAGE, DatasetInfo, FileInfo, get_dataset_info
from hsizoo.io.atomic import AtomicFile, file_sha256

if TYPE_CHECKING:
    from hsizoo.io.scene import Scene

__all__ = ["dataset_paths", "default_root", "download_file", "load_dataset", "verify_file"]

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


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

    from hsizoo.runtime.progress import progress_bar

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
                with progress_bar(total=expected, unit="B", unit_scale=True, desc=info.name,
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
    from hsizoo.spectral import sensors

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
        name: One of :func:`hsizoo.data.catalogue.list_datasets`.
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
    from hsizoo.io.matlab import _read_mat
    from hsizoo.io.readers import read_labels

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
