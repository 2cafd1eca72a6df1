"""The Pictor Blender add-on lives in ``pictor_addon.py`` (installed into Blender, not imported here)."""
