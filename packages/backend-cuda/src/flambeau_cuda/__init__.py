"""flambeau-cuda: the CUDA backend (device type ``cuda``), NVIDIA GPUs through cupy.

Install with the cupy wheel of your CUDA: ``pip install "flambeau-cuda[cuda12]"`` (or
``[cuda13]``). Then ``flambeau.device("cuda:0")``, ``x.cuda()`` and
``flambeau.cuda.device_count()`` work as in PyTorch. Importing this package never needs
cupy or a GPU.

>>> import flambeau_cuda
>>> flambeau_cuda.tf32_enabled()  # TF32 matrix products are opt-in
False
"""

from ._config import TF32_VAR, set_tf32, tf32_enabled
from .backend import CudaBackend, empty_cache

__all__ = ["TF32_VAR", "CudaBackend", "empty_cache", "set_tf32", "tf32_enabled"]
