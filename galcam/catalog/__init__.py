"""Astronomer-facing results: `GalaxyCatalog`, region files, figures, cross-match.

`GalaxyCatalog` turns a prediction (`~galcam.inference.SegmentationResult`) and the images
it was made on into a `~astropy.table.QTable` with units (flux densities, angular sizes,
position angles, sky positions of centroids and hosts), DS9 and CRTF region files, an
overview figure, and a cross-match of the hosts with a user's infrared catalogue. Column
definitions are in `galcam.catalog.columns`. Torch-free.
"""

from .catalog import (
    OUTPUT_FILES,
    TABLE_FORMATS,
    TABLE_WRITERS,
    GalaxyCatalog,
    mask_photometry,
    table_format,
    write_table,
)
from .columns import (
    BRIGHTNESS_UNIT,
    CATALOG_COLUMNS,
    MATCH_COLUMNS,
    CatalogColumn,
    class_column_name,
    column_definition,
)
from .crossmatch import catalog_positions, match_positions
from .plotting import ir_norm, plot_catalog
from .regions import (
    CLASS_COLORS,
    REGION_FORMATS,
    class_color,
    mask_polygons,
    serialize_regions,
    write_region_file,
)

__all__ = [
    "BRIGHTNESS_UNIT",
    "CATALOG_COLUMNS",
    "CLASS_COLORS",
    "CatalogColumn",
    "GalaxyCatalog",
    "MATCH_COLUMNS",
    "OUTPUT_FILES",
    "REGION_FORMATS",
    "TABLE_FORMATS",
    "TABLE_WRITERS",
    "mask_photometry",
    "table_format",
    "write_table",
    "catalog_positions",
    "class_color",
    "class_column_name",
    "column_definition",
    "ir_norm",
    "mask_polygons",
    "match_positions",
    "plot_catalog",
    "serialize_regions",
    "write_region_file",
]
