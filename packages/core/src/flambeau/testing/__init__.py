"""The conformance kit: checks any backend's device against numpy references.

Run it on one device (extra arguments go to pytest)::

    python -m flambeau.testing cpu
    python -m flambeau.testing opencl:0 -x -q

or inside your own pytest suite, on every available device (or the ones named with
``--flambeau-device``)::

    # conftest.py
    pytest_plugins = ["flambeau.testing.plugin"]
    # test_conformance.py
    from flambeau.testing.kernel_checks import *  # noqa: F403
    from flambeau.testing.op_checks import *  # noqa: F403
    from flambeau.testing.fused_checks import *  # noqa: F403

``kernel_checks`` calls each kernel directly; ``op_checks`` checks the tensor operations
built on them (values, dtypes and gradients); ``fused_checks`` compares the optional fused
kernels a device has with the core's compositions. ``python -m flambeau.testing DEVICE
--ranks 2`` runs ``collective_checks`` instead, on two processes under MPI: every
collective of ``flambeau.distributed`` against numpy, bitwise equal across ranks (it
needs ``flambeau[mpi]``). The kit needs pytest
(``pip install "flambeau[testing]"``). Its helpers (:func:`check_op`, :func:`check_fused`,
:func:`assert_close`, :func:`tolerance`) are importable for backends' own tests.
"""

from __future__ import annotations

from ._compare import assert_close, tolerance
from ._opcheck import check_fused, check_op

#: The modules of checks the kit runs, in order (``op_checks`` is a package: its modules).
CHECK_MODULES = (
    "flambeau.testing.kernel_checks",
    "flambeau.testing.op_checks.elementwise",
    "flambeau.testing.op_checks.reductions",
    "flambeau.testing.op_checks.shapes",
    "flambeau.testing.op_checks.inplace",
    "flambeau.testing.op_checks.conversions",
    "flambeau.testing.fused_checks",
)

#: The modules of checks that run on several processes, under MPI
#: (``python -m flambeau.testing DEVICE --ranks N``).
RANK_CHECK_MODULES = ("flambeau.testing.collective_checks",)

__all__ = ["CHECK_MODULES", "RANK_CHECK_MODULES", "assert_close", "check_fused", "check_op",
           "tolerance"]
