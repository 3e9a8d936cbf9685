"""Outputs people load: Cloud-Optimized GeoTIFFs and one GDAL VRT mosaic per CRS.

A class map written by :func:`hsizoo.io.writers.write_class_map` (tiled, compressed, colour
table, class names, nodata, CRS and transform) becomes a Cloud-Optimized GeoTIFF through GDAL's
``COG`` driver, which adds overviews (the mode for classes, average for confidence) and
orders the file so that a reader over HTTP fetches only the tiles it needs. Flight lines of one
campaign are then tied together by a VRT per CRS: a small XML file GDAL, QGIS and rasterio open
as one raster, pointing at the scenes' files (relative paths, so the folder can be moved).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

__all__ = ["to_cog", "write_vrt_mosaics"]


def to_cog(src: str | Path, dst: str | Path, *, categorical: bool = True) -> Path:
    """Copy a GeoTIFF to a Cloud-Optimized GeoTIFF at ``dst`` (which must not exist yet).

    Args:
        src: A tiled GeoTIFF (its colour table, tags, nodata, CRS and transform are kept).
        dst: The COG to write; the caller renames it into place (see :mod:`hsizoo.io.atomic`).
        categorical: Class ids (overviews take the most frequent class, GDAL's MODE) rather
            than values (average).

    Returns:
        ``dst``.
    """
    import rasterio.shutil

    with rasterio.open(src) as ds:
        small = max(ds.width, ds.height) <= 256
    options = dict(compress="DEFLATE", blocksize=256, bigtiff="IF_SAFER",
                   overview_resampling="MODE" if categorical else "AVERAGE",
                   overviews="NONE" if small else "AUTO")
    rasterio.shutil.copy(str(src), str(dst), driver="COG", **options)
    return Path(dst)


def _group_by_crs(paths: Sequence[Path]) -> dict[str, list[tuple[Path, Any]]]:
    import rasterio

    groups: dict[str, list[tuple[Path, Any]]] = {}
    for p in paths:
        with rasterio.open(p) as ds:
            if ds.crs is None or ds.transform.is_identity:
                continue  # nothing to place on a map
            if ds.transform.b != 0 or ds.transform.d != 0:
                continue  # rotated grids cannot share a north-up VRT
            key = ds.crs.to_string()
            groups.setdefault(key, []).append((p, dict(
                width=ds.width, height=ds.height, transform=ds.transform, dtype=ds.dtypes[0],
                nodata=ds.nodata, colormap=_colormap(ds), tags=ds.tags(), crs_wkt=ds.crs.to_wkt(),
                block=ds.block_shapes[0])))
    return groups


def _colormap(ds: Any) -> dict[int, tuple[int, ...]] | None:
    try:
        return ds.colormap(1)
    except ValueError:
        return None


def _class_names(tags: dict[str, str]) -> list[str] | None:
    """Class names 1..K of a class map written by hsizoo (its CLASS_NAMES tag), or None."""
    import json

    try:
        names = json.loads(tags.get("CLASS_NAMES", "null"))
    except ValueError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _crs_slug(crs: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in crs).strip("_").lower() or "crs"


def vrt_xml(entries: list[tuple[Path, dict[str, Any]]], folder: Path) -> str:
    """The VRT of scenes sharing one CRS, on the finest pixel size among them."""
    res_x = min(abs(m["transform"].a) for _, m in entries)
    res_y = min(abs(m["transform"].e) for _, m in entries)
    lefts, rights, tops, bottoms = [], [], [], []
    for _, m in entries:
        t, w, h = m["transform"], m["width"], m["height"]
        xs, ys = (t.c, t.c + t.a * w), (t.f, t.f + t.e * h)
        lefts.append(min(xs)), rights.append(max(xs)), tops.append(max(ys)), bottoms.append(min(ys))
    left, top = min(lefts), max(tops)
    width = int(round((max(rights) - left) / res_x))
    height = int(round((top - min(bottoms)) / res_y))
    first = entries[0][1]
    nodata = first["nodata"]
    out = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
           f"  <SRS>{escape(first['crs_wkt'])}</SRS>",
           f"  <GeoTransform>{left!r}, {res_x!r}, 0.0, {top!r}, 0.0, {-res_y!r}</GeoTransform>"]
    if first["tags"]:
        out.append("  <Metadata>")
        out += [f'    <MDI key="{escape(k)}">{escape(str(v))}</MDI>'
                for k, v in sorted(first["tags"].items())]
        out.append("  </Metadata>")
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}[first["dtype"]]
    out.append(f'  <VRTRasterBand dataType="{gdal_type}" band="1">')
    if nodata is not None:
        out.append(f"    <NoDataValue>{nodata!r}</NoDataValue>")
    names = _class_names(first["tags"])
    if names:  # the legend of the class maps (hsizoo.io.legend), read by GDAL and QGIS
        out.append("    <CategoryNames>")
        out += [f"      <Category>{escape(n)}</Category>" for n in ["unclassified", *names]]
        out.append("    </CategoryNames>")
    if first["colormap"]:
        out.append("    <ColorInterp>Palette</ColorInterp>\n    <ColorTable>")
        cmap = first["colormap"]
        out += [f'      <Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>'
                for r, g, b, a in (tuple(cmap.get(i, (0, 0, 0, 0))) for i in range(max(cmap) + 1))]
        out.append("    </ColorTable>")
    for path, m in entries:
        t = m["transform"]
        x0 = (min(t.c, t.c + t.a * m["width"]) - left) / res_x
        y0 = (top - max(t.f, t.f + t.e * m["height"])) / res_y
        w = m["width"] * abs(t.a) / res_x
        h = m["height"] * abs(t.e) / res_y
        rel = os.path.relpath(path, folder)
        kind = "ComplexSource" if nodata is not None else "SimpleSource"
        out += [f"    <{kind}>",
                f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
                "      <SourceBand>1</SourceBand>",
                f'      <SourceProperties RasterXSize="{m["width"]}" RasterYSize="{m["height"]}" '
                f'DataType="{gdal_type}" BlockXSize="{m["block"][1]}" '
                f'BlockYSize="{m["block"][0]}"/>',
                f'      <SrcRect xOff="0" yOff="0" xSize="{m["width"]}" ySize="{m["height"]}"/>',
                f'      <DstRect xOff="{x0!r}" yOff="{y0!r}" xSize="{w!r}" ySize="{h!r}"/>']
        if nodata is not None:
            out.append(f"      <NODATA>{nodata!r}</NODATA>")
        out.append(f"    </{kind}>")
    out += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    return "\n".join(out)


def write_vrt_mosaics(paths: Sequence[str | Path], folder: str | Path, name: str = "mosaic",
                      overwrite: bool = True) -> list[Path]:
    """One VRT per CRS over georeferenced rasters (class maps or confidence maps).

    Args:
        paths: The scenes' rasters (one band each, same data type within a CRS).
        folder: Where the VRTs go; sources are referenced relative to it.
        name: File name stem: ``<name>.vrt`` when there is one CRS, else
            ``<name>_<crs>.vrt`` per CRS (for example ``mosaic_epsg_32633.vrt``).
        overwrite: Replace existing VRTs (they are derived files, rebuilt at each run).

    Returns:
        The VRTs written, sorted.
    """
    from hsizoo.io.atomic import AtomicFile

    folder = Path(folder)
    groups = _group_by_crs([Path(p) for p in paths])
    written = []
    for crs, entries in sorted(groups.items()):
        target = folder / (f"{name}.vrt" if len(groups) == 1 else f"{name}_{_crs_slug(crs)}.vrt")
        xml = vrt_xml(sorted(entries, key=lambda e: str(e[0])), folder)
        with AtomicFile(target, overwrite=overwrite) as out:
            out.tmp.write_text(xml)
        written.append(target)
    return sorted(written)
