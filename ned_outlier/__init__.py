"""NED facial-expression editing with CLIP-based outlier suppression."""

__version__ = "0.1.0"
