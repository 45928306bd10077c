"""``flambeau.utils``: helpers around models, as ``torch.utils`` (``data`` so far)."""

from __future__ import annotations

from . import data

__all__ = ["data"]
