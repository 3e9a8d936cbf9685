"""Rasters read over the network through GDAL's virtual file systems.

``https://host/scene.tif``, ``http://...`` and ``/vsicurl/https://...`` are read with GDAL's
``/vsicurl/``, and ``s3://bucket/key`` (or ``/vsis3/bucket/key``) with ``/vsis3/``: GDAL fetches
only the byte ranges a read needs (HTTP range requests), so a window of a Cloud-Optimized GeoTIFF
costs its tiles, not the file. Such paths must not go through :class:`pathlib.Path` (which turns
``https://`` into ``https:/``) nor be checked with ``Path.exists()``; :class:`RemotePath` carries
them to rasterio unchanged. Credentials and endpoints are GDAL's own configuration
(``AWS_ACCESS_KEY_ID``, ``AWS_NO_SIGN_REQUEST``, ``AWS_S3_ENDPOINT``, ``GDAL_HTTP_*``, ...).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["RemotePath", "is_remote", "remote_env", "remote_open_error"]

# GDAL's network file systems (read through libcurl); /vsizip/ etc. on local files are not remote.
_VSI_NETWORK = ("/vsicurl/", "/vsicurl_streaming/", "/vsis3/", "/vsis3_streaming/", "/vsigs/",
                "/vsiaz/", "/vsiadls/", "/vsioss/", "/vsiswift/", "/vsiwebhdfs/", "/vsihdfs/")
_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/",
            "az": "/vsiaz/"}
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_remote(path: Any) -> bool:
    """Whether ``path`` names a raster on the network (a URL or a GDAL network VSI path)."""
    if isinstance(path, RemotePath):
        return True
    if not isinstance(path, str):
        return False
    m = _SCHEME_RE.match(path)
    if m:
        return m.group(1).lower() in _SCHEMES
    return path.startswith(_VSI_NETWORK)


def _gdal_path(path: str) -> str:
    """The GDAL name of a URL: ``https://h/x.tif`` -> ``/vsicurl/https://h/x.tif``,
    ``s3://b/k.tif`` -> ``/vsis3/b/k.tif``; VSI paths are kept as they are."""
    m = _SCHEME_RE.match(path)
    if not m:
        return path
    scheme = m.group(1).lower()
    prefix = _SCHEMES[scheme]
    if prefix == "/vsicurl/":
        return prefix + path
    return prefix + path[m.end():]


class RemotePath(os.PathLike):
    """A raster path on the network, kept as written (no ``//`` collapsed, no existence check).

    ``str()`` gives the path as the user wrote it (for messages), ``os.fspath()`` the GDAL name
    rasterio opens; ``name`` and ``suffix`` work as for :class:`pathlib.Path` so that the readers'
    format checks (``.mat``, ``.hdr``) apply to URLs too.
    """

    def __init__(self, path: str) -> None:
        self.given = str(path)
        self.gdal = _gdal_path(self.given)

    def __fspath__(self) -> str:
        return self.gdal

    def __str__(self) -> str:
        return self.given

    def __repr__(self) -> str:
        return f"RemotePath({self.given!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.gdal == self.gdal

    def __hash__(self) -> int:
        return hash(self.gdal)

    @property
    def name(self) -> str:
        # the last path component, without a query string (?token=...)
        return self.given.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix


def remote_env() -> dict[str, str]:
    """GDAL options for reading over the network, unless the user set them already.

    ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`` stops GDAL from listing the remote folder (one
    request, often a refused one) when it opens a file; ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS`` is left
    alone. Retries make a flaky connection survivable without hiding a dead one for long.
    """
    defaults = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "2",
                "GDAL_HTTP_RETRY_DELAY": "0.5", "GDAL_HTTP_TIMEOUT": "60"}
    return {k: v for k, v in defaults.items() if k not in os.environ}


def remote_open_error(path: RemotePath, err: Exception) -> ValueError:
    """The error for a remote raster GDAL could not open: what was tried and what to check."""
    s3 = path.gdal.startswith(("/vsis3/", "/vsis3_streaming/"))
    what = ("the bucket and key, and the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "or AWS_PROFILE, AWS_NO_SIGN_REQUEST=YES for a public bucket, AWS_S3_ENDPOINT for "
            "another S3 service" if s3 else
            "that the URL is right and reachable from this machine (proxy: GDAL_HTTP_PROXY), that "
            "the server answers HTTP range requests, and any token the URL needs")
    return ValueError(
        f"Could not open the remote raster {path} (GDAL path {path.gdal}): {err}. Check {what}; "
        "or download the file and read the local copy.")
