"""Layer packages: one file carrying layers and profiles (with their probes) to share.

A package is a TOML file::

    [package]
    format = "cabot-package/1"
    name = "kids-safe"            # a name like a layer's
    version = "1.2.0"
    author = "Ada"
    license = "CC-BY-4.0"
    description = "What it is for."
    sha256 = "…"                  # the content hash (below)

    [layers.family-friendly]      # one table per layer: a layer file's fields, minus name
    description = "…"
    prompt = "…"
    [layers.family-friendly.rules]
    banned = ["…"]

    [profiles.kids]               # as in a profiles file
    layers = ["base", "family-friendly"]

The content hash is the SHA-256 of the layers and profiles as canonical JSON (keys
sorted, no spaces, defaults left out, layers and profiles by name): editing a packaged
layer by hand changes it, reformatting the file does not. Importing checks it, refuses a
package whose profiles or ``requires`` name a layer it neither contains nor finds among
the target's layers (naming every missing one), and never replaces a layer or profile of
the same name silently: :func:`plan_import` says what would change, and the caller needs
a confirmation (``replace``) or new names (``renames``).
"""

from profiles.packages.files import (
    check_layer_source,
    layer_source,
    package_toml,
    parse_package,
    profiles_source,
)
from profiles.packages.importing import (
    ImportItem,
    ImportPlan,
    ItemStatus,
    describe_changes,
    parse_renames,
    plan_import,
)
from profiles.packages.model import (
    FORMAT,
    Package,
    PackageInfo,
    build_package,
    check_complete,
    missing_layers,
)

__all__ = [
    "FORMAT",
    "ImportItem",
    "ImportPlan",
    "ItemStatus",
    "Package",
    "PackageInfo",
    "build_package",
    "check_complete",
    "check_layer_source",
    "describe_changes",
    "layer_source",
    "missing_layers",
    "package_toml",
    "parse_package",
    "parse_renames",
    "plan_import",
    "profiles_source",
]
