"""A typical user script, type-checked by mypy in tests/test_typing.py (not run there).

Written the way a reader of Dive into Deep Learning writes PyTorch code, with
``import flambeau as torch``: Tensor methods, properties and operators, modules, lazy
layers, optimizers, losses, devices, ``no_grad`` and checkpoints. It must stay free of
``# type: ignore`` and casts: anything mypy cannot see here, a user cannot either.
It also runs: ``python tests/typing/user_script.py``.
"""

from __future__ import annotations

import os
import tempfile

import flambeau
import flambeau as torch
from flambeau import nn
from flambeau.nn import functional as F


class MLP(nn.Module):
    """A custom module: lazy layers, a parameter of its own and a forward."""

    def __init__(self, num_hiddens: int, num_outputs: int) -> None:
        super().__init__()
        self.hidden = nn.LazyLinear(num_hiddens)
        self.out = nn.LazyLinear(num_outputs)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(X))) * self.scale


def try_gpu(i: int = 0) -> torch.Device:
    """The i-th GPU if there is one, else the CPU (D2L's ``try_gpu``)."""
    if torch.device_count("cuda") >= i + 1:
        return torch.device(f"cuda:{i}")
    return flambeau.device("cpu")


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows whose largest logit is the label."""
    preds = y_hat.argmax(dim=1)
    return float((preds == y).float().mean().item())


def linreg_from_scratch() -> torch.Tensor:
    """D2L's linear regression from scratch: tensors, autograd and a hand-written SGD."""
    true_w, true_b = torch.tensor([2.0, -3.4]), 4.2
    X = torch.normal(0, 1, (100, 2))
    y = (X @ true_w + true_b).reshape((-1, 1))
    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(3):
        loss = ((X @ w + b - y) ** 2 / 2).mean()
        loss.backward()
        with torch.no_grad():
            for param in (w, b):
                assert param.grad is not None
                param -= 0.03 * param.grad
                param.grad.zero_()
    return w.detach()


def train(device: torch.Device) -> nn.Module:
    """A concise training loop: Sequential of lazy layers, a custom module, two optimizers."""
    torch.manual_seed(0)
    X = torch.randn(64, 20, device=device)
    y = torch.randint(0, 10, (64,), device=device)

    net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    net.to(device)
    model = MLP(32, 10).to(device)
    net(X)
    model(X)
    print(net[0].weight.shape, net[2].bias.data.shape)

    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(2):
        for optimizer, m in ((sgd, net), (adam, model)):
            m.train()
            optimizer.zero_grad()
            y_hat = m(X)
            loss = F.cross_entropy(y_hat, y) + 0.0 * loss_fn(y_hat, y)
            loss.backward()
            optimizer.step()
            print(epoch, f"{loss.item():.3f}", accuracy(y_hat, y))

    for name, param in net.named_parameters():
        grad = param.grad
        print(name, tuple(param.shape), param.requires_grad,
              None if grad is None else grad.abs().sum().item())
    return model


def tensor_tour(device: torch.Device) -> None:
    """Arithmetic, reductions, shapes, indexing and conversions."""
    A = torch.arange(12, dtype=torch.float32).reshape(3, 4).to(device)
    B = torch.ones(4, 2, device=device)
    C = A @ B
    D = (A + 1) * 2 - A / 3 + 2 ** A.neg()
    E = 1 - A.T.sum(dim=0, keepdim=True)
    row: torch.Tensor = A[0]
    corner = A[1:, :2]
    A[0, 0] = 5.0
    A += 1
    mask = A > 3
    print(C.shape, D.mean().item(), E.numel(), row.tolist(), corner.size(0), int(mask.sum()))
    print(A.exp().log().clamp(min=0.0).amax(), A.unsqueeze(0).squeeze(0).flatten().view(-1, 2))
    print(A.to(torch.float64).dtype, A.detach().numpy().shape, A.cpu().device, -A, abs(A))
    print(torch.cat([A, A], dim=0).shape, torch.stack((A, A)).shape, A.mT.shape, A.ndim)
    print(A.masked_fill(mask, 0.0).std(), F.softmax(A, dim=-1).sum(dim=1))
    X, Y = A.chunk(2, dim=1)
    print(X.shape, Y.shape, len(A), [t.shape for t in A.unbind(0)])


def checkpoint(model: nn.Module) -> None:
    """Save a state dict with flambeau.save and load it back into a fresh model."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mlp.params")
        torch.save(model.state_dict(), path)
        clone = MLP(32, 10)
        result = clone.load_state_dict(torch.load(path))
        print(result.missing_keys, result.unexpected_keys, clone.eval())


if __name__ == "__main__":
    device = try_gpu()
    print(linreg_from_scratch())
    model = train(device)
    tensor_tour(device)
    checkpoint(model.cpu())
