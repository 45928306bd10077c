"""Checks of the tensor operations on the device under test, against numpy.

Where ``kernel_checks`` calls one kernel at a time, these go through the public API:
operators, functions and methods, PyTorch's type promotion, broadcasting, indexing,
in-place updates, device copies, random numbers and autograd. Most checks are one
:func:`~flambeau.testing.check_op` call: values, dtype and shape against a numpy
reference, and, for float inputs, gradients against finite differences of that reference.

One module per kind of operation: ``elementwise``, ``reductions``, ``shapes`` (and
indexing), ``inplace``, ``conversions`` (and random numbers). This package re-exports all
their checks, so ``from flambeau.testing.op_checks import *`` brings in every one;
:data:`flambeau.testing.CHECK_MODULES` names the modules one by one for runs by file.

Test names must differ across these modules and from ``kernel_checks``' and
``fused_checks``' ones: suites star-import them all.
"""

from .conversions import *  # noqa: F403
from .elementwise import *  # noqa: F403
from .inplace import *  # noqa: F403
from .reductions import *  # noqa: F403
from .shapes import *  # noqa: F403
