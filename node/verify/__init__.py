"""The checker's work: re-render a frame's tiles and judge the worker's image.

``verify_result`` (for a node's checker role) and ``check_frame`` (for the
``pictor verify`` command) drive the pure rules of :mod:`protocol.verification`
with real pixels: :mod:`node.verify.images` reads images,
:mod:`node.verify.blender_tiles` re-renders tiles with the rendering helper's
Blender build and pinning, :mod:`node.verify.checker` puts them together.
"""
