"""Renderer backends (Blender executable, bpy module, POV-Ray, Docker), the sandbox
they run in, the GPU probe and the benchmark score."""
