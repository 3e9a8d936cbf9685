"""A class map's legend as GDAL reads it: category names and a raster attribute table.

TIFF has no place for class names, so GDAL keeps a band's category names and raster attribute
table (RAT) in a PAM sidecar, ``<map>.tif.aux.xml``, which GDAL, rasterio and QGIS read with the
map (QGIS builds its legend from the RAT or the category names; rasterio offers no API to write
either). hsizoo writes that sidecar itself, beside the map and committed with it (both renamed
into place together, :mod:`hsizoo.io.commit`): category ``i`` is the name of class id ``i``
(0 = unclassified), and the thematic RAT has one row per id with its name and colour.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["legend_xml", "sidecar_path", "write_legend"]

# GDAL's GDALRATFieldType and GDALRATFieldUsage codes, as they appear in .aux.xml files.
_INTEGER, _STRING = 0, 2
_MINMAX, _NAME, _RED, _GREEN, _BLUE, _ALPHA = 5, 2, 6, 7, 8, 9


def sidecar_path(map_path: str | Path) -> Path:
    """The PAM sidecar GDAL reads with ``map_path``: ``map.tif`` -> ``map.tif.aux.xml``."""
    p = Path(map_path)
    return p.with_name(p.name + ".aux.xml")


def legend_xml(class_names: Sequence[str], colors: Sequence[Sequence[int]],
               nodata: int = 0, unclassified: str = "unclassified") -> str:
    """The PAM XML holding band 1's category names and thematic raster attribute table.

    Args:
        class_names: Names of classes 1..K.
        colors: One (r, g, b) per class.
        nodata: The id of unclassified pixels (0, or above K).
        unclassified: Name given to ``nodata``.

    Returns:
        The text of a ``.aux.xml`` file.
    """
    k = len(class_names)
    names = {i + 1: str(n) for i, n in enumerate(class_names)}
    rgba = {i + 1: (*map(int, c[:3]), 255) for i, c in enumerate(colors)}
    names[nodata], rgba[nodata] = unclassified, (0, 0, 0, 0)
    top = max(k, nodata)
    # category i names pixel value i: every value up to the largest id gets an entry
    cats = [f"      <Category>{escape(names.get(i, ''))}</Category>" for i in range(top + 1)]
    fields = [("Value", _INTEGER, _MINMAX), ("Class", _STRING, _NAME), ("Red", _INTEGER, _RED),
              ("Green", _INTEGER, _GREEN), ("Blue", _INTEGER, _BLUE), ("Alpha", _INTEGER, _ALPHA)]
    out = ['<PAMDataset>', '  <PAMRasterBand band="1">', '    <CategoryNames>', *cats,
           '    </CategoryNames>', '    <GDALRasterAttributeTable tableType="thematic">']
    out += [f'      <FieldDefn index="{i}">\n        <Name>{n}</Name>\n        <Type>{t}</Type>\n'
            f'        <Usage>{u}</Usage>\n      </FieldDefn>' for i, (n, t, u) in enumerate(fields)]
    for row, value in enumerate(sorted(names)):
        r, g, b, a = rgba[value]
        out.append(f'      <Row index="{row}"><F>{value}</F><F>{escape(names[value])}</F>'
                   f'<F>{r}</F><F>{g}</F><F>{b}</F><F>{a}</F></Row>')
    out += ['    </GDALRasterAttributeTable>', '  </PAMRasterBand>', '</PAMDataset>', '']
    return "\n".join(out)


def write_legend(map_path: str | Path, class_names: Sequence[str],
                 colors: Sequence[Sequence[int]], nodata: int = 0, *,
                 overwrite: bool = True) -> Path:
    """Write the legend sidecar of a class map (atomically; staged in a running transaction).

    Args:
        map_path: The class map the legend belongs to.
        class_names: Names of classes 1..K.
        colors: One (r, g, b) per class.
        nodata: Id of unclassified pixels.
        overwrite: Replace an existing sidecar.

    Returns:
        The sidecar's path.
    """
    from hsizoo.io.atomic import write_atomic

    return write_atomic(sidecar_path(map_path),
                        legend_xml(class_names, colors, nodata).encode("utf-8"),
                        overwrite=overwrite)
