"""Bundled real datasets (small, public domain, with source and citation)."""

from ._datasets import challenger as challenger

__all__ = ["challenger"]
