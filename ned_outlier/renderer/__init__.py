"""Rendering the edited face: the `warp` backend moves the source frame's pixels along the face mesh."""

from ned_outlier.renderer.mesh import anchor_rings, face_oval, skirted_points, skirted_triangles
from ned_outlier.renderer.warp import (
    folded,
    max_safe_fraction,
    safe_fraction,
    signed_areas,
    triangle_affines,
    warp_face,
    warp_triangles,
)

__all__ = [
    "anchor_rings",
    "face_oval",
    "folded",
    "max_safe_fraction",
    "safe_fraction",
    "signed_areas",
    "skirted_points",
    "skirted_triangles",
    "triangle_affines",
    "warp_face",
    "warp_triangles",
]
