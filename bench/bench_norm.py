"""Normalisation forward + backward: ``normalize_op`` (one node, closed-form gradient) vs
the plain composition of mean/var ops, with torch for scale.

Run: python bench/bench_norm.py   (prints medians of paired rounds, and ratios)
"""

from __future__ import annotations

import _harness  # first: pins BLAS/torch threads before they load

import flambeau
from flambeau._ops import elementwise as ew
from flambeau._ops import reduction
from flambeau._ops.normalization import normalize_op


def _composition(x, axes):
    mean = reduction.mean(x, axes, keepdim=True)
    centered = x - mean
    var = reduction.mean(centered * centered, axes, keepdim=True)
    return centered * ew.rsqrt(var + 1e-5)


def main(number: int = 30, repeats: int = 5) -> None:
    torch = _harness.torch_or_none()
    for title, shape, axes in [("layer norm (128, 512) over the last axis", (128, 512), (1,)),
                               ("batch norm (32, 32, 16, 16) per channel", (32, 32, 16, 16),
                                (0, 2, 3))]:
        x = flambeau.randn(*shape, requires_grad=True)
        candidates = {
            "flambeau normalize_op": lambda x=x, axes=axes: normalize_op(
                x, None, None, axes, 1e-5)[0].sum().backward(),
            "flambeau composition": lambda x=x, axes=axes: _composition(
                x, axes).sum().backward(),
        }
        if torch is not None:
            tx = torch.randn(*shape, requires_grad=True)
            if len(shape) == 2:
                candidates["torch layer_norm"] = lambda tx=tx, n=shape[1:]: (
                    torch.nn.functional.layer_norm(tx, n).sum().backward())
            else:
                candidates["torch batch_norm"] = lambda tx=tx: torch.nn.functional.batch_norm(
                    tx, None, None, training=True).sum().backward()
        _harness.report(title + ", forward + backward",
                        _harness.paired(candidates, number, repeats), "flambeau composition",
                        unit="ms")


if __name__ == "__main__":
    main()
