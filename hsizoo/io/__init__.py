"""Reading hyperspectral scenes and writing class maps.

Readers: GeoTIFF / ENVI (rasterio) and MATLAB .mat (scipy, h5py), with band wavelengths found in
the file's metadata or a sensor preset. Writers: tiled, compressed, colour-mapped class maps and
confidence maps on the scene's grid, whole or window by window. Quicklook PNGs for a first look.
"""
from hsizoo.io.colors import default_palette
from hsizoo.io.limits import SceneTooLargeError
from hsizoo.io.quicklook import save_quicklook
from hsizoo.io.readers import SceneInfo, iter_windows, read_labels, read_scene, read_scene_info
from hsizoo.io.scene import Scene
from hsizoo.io.validity import valid_mask
from hsizoo.io.windows import WindowBlock, plan_windows
from hsizoo.io.xarray import from_xarray, to_xarray
from hsizoo.io.writers import (
    open_class_map_writer,
    open_confidence_map_writer,
    read_class_map_metadata,
    write_class_map,
    write_confidence_map,
)

__all__ = [
    "Scene",
    "SceneInfo",
    "SceneTooLargeError",
    "WindowBlock",
    "default_palette",
    "from_xarray",
    "iter_windows",
    "open_class_map_writer",
    "open_confidence_map_writer",
    "plan_windows",
    "read_class_map_metadata",
    "read_labels",
    "read_scene",
    "read_scene_info",
    "save_quicklook",
    "to_xarray",
    "valid_mask",
    "write_class_map",
    "write_confidence_map",
]
