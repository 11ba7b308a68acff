"""The real Korat boundaries, shipped as package data (``kuekan/data/korat``, see its SOURCE.md)."""

from __future__ import annotations

from kuekan.kit.resources import korat_data_dir

__all__ = ["korat_data_dir"]
