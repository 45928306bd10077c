"""The conformance kit, run on every installed device (cpu and the example plugin's)."""

from flambeau.testing.fused_checks import *  # noqa: F403
from flambeau.testing.kernel_checks import *  # noqa: F403
from flambeau.testing.op_checks import *  # noqa: F403
