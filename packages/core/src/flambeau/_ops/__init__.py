"""Operations on tensors, written once against the kernel contract, gradients beside them.

Tensor ops: ``elementwise``, ``reduction``, ``linalg`` (with ``linear``), ``shape``,
``indexing``, ``inplace``. The functions behind ``nn.functional``: ``activation``,
``softmax``, ``attention``, ``conv``, ``pooling``, ``sampling`` (interpolate, padding
modes), ``normalization``, ``embedding``, ``loss``. Optimizer
updates: ``optim_steps``. Shared by all: ``_common`` (the internal API) and
``_dispatch`` (a backend's fused kernel or the reference composition).
"""
