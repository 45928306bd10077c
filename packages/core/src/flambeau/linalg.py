"""``flambeau.linalg``: norms and ``matmul``, with ``torch.linalg``'s names.

>>> import flambeau
>>> flambeau.linalg.vector_norm(flambeau.tensor([3.0, 4.0]))
tensor(5.)
"""

from __future__ import annotations

from ._ops.linalg import matmul
from ._ops.norms import linalg_norm as norm
from ._ops.norms import matrix_norm, vector_norm

__all__ = ["matmul", "matrix_norm", "norm", "vector_norm"]
