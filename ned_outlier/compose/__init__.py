"""Compositing a rendered face into its frame: feathered masks and Laplacian pyramid blending."""

from ned_outlier.compose.blend import blend_region, hull_mask, laplacian_blend

__all__ = ["blend_region", "hull_mask", "laplacian_blend"]
