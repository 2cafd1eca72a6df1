"""``pictor addon-zip``: the Blender add-on as a zip Blender installs."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Annotated

import typer

from node.cli.console import err_console, out_console

ADDON_SOURCE = Path(__file__).resolve().parents[1] / "blender_addon" / "pictor_addon.py"
MODULE = "pictor_addon"


def build_addon_zip(out: Path) -> Path:
    """Write the add-on as ``pictor_addon/__init__.py`` in ``out`` (fixed timestamps, so
    the same source always gives the same bytes)."""
    data = ADDON_SOURCE.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"{MODULE}/__init__.py", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)
    return out


def addon_zip(
    out: Annotated[
        Path, typer.Argument(dir_okay=False, help="Where to write the zip (e.g. pictor_addon.zip).")
    ] = Path("pictor_addon.zip"),
) -> None:
    """Build the Blender add-on zip: install it in Blender with Edit › Preferences ›
    Add-ons › Install…, then enable "Render: Pictor" (docs/CLIENT.md)."""
    try:
        build_addon_zip(out)
    except OSError as exc:
        err_console().print(f"[red]cannot write {out}: {exc.strerror}[/]", highlight=False)
        raise typer.Exit(1) from None
    out_console().print(
        f"wrote {out}: in Blender, Edit › Preferences › Add-ons › Install… › {out.name}, "
        "then enable \"Render: Pictor\" (it needs a running node: `pictor node run`)",
        highlight=False,
    )
