# Sphinx configuration for galcam, on top of the sphinx-astropy defaults.
import os
import sys
from datetime import datetime, timezone
from importlib import metadata

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403

project = "galcam"
author = "galcam developers"
copyright = f"2026-{datetime.now(timezone.utc).year}, {author}"
try:
    release = metadata.version("galcam")
except metadata.PackageNotFoundError:  # building from a source tree that is not installed
    sys.path.insert(0, os.path.abspath(".."))
    release = "unknown"
version = ".".join(release.split(".")[:2])

# The docs are built offline (CI and the developers' machines reach no web site), so the
# inventories of other projects are not fetched unless asked for with
# GALCAM_DOCS_INTERSPHINX=1. Cross-references to numpy/astropy then render as plain text.
if os.environ.get("GALCAM_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping.update(  # noqa: F405
        {
            "astropy": ("https://docs.astropy.org/en/stable/", None),
            "photutils": ("https://photutils.readthedocs.io/en/stable/", None),
            "regions": ("https://astropy-regions.readthedocs.io/en/stable/", None),
            "torch": ("https://pytorch.org/docs/stable/", None),
        }
    )
else:
    intersphinx_mapping = {}

html_title = f"galcam {release}"
html_theme_options.update(  # noqa: F405
    {"github_url": "https://github.com/galcam/galcam", "use_edit_page_button": False}
)
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["config.cache"]
# keep the docs build quiet and reproducible: no plots executed at build time
plot_include_source = False
