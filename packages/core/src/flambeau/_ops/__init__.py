"""Operations on tensors, written once against the kernel contract, gradients beside them."""
