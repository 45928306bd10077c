"""``flambeau.utils.hooks``: where PyTorch code imports ``RemovableHandle`` from
(``torch.utils.hooks``); the hook machinery itself is ``flambeau._hooks``."""

from __future__ import annotations

from .._hooks import RemovableHandle

__all__ = ["RemovableHandle"]
