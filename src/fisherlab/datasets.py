"""Bundled real datasets (small, public domain, with source and citation)."""

from .data._datasets import challenger as challenger

__all__ = ["challenger"]
