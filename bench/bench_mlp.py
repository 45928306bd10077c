"""A 784-256-10 MLP training step (forward, backward, SGD) at batch 256 and 32:
flambeau-cpu vs the same math written by hand in numpy vs torch, in paired rounds.

Run: python bench/bench_mlp.py
"""

from __future__ import annotations

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau

LR = 0.01


def _data(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    w1 = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((256, 10)) * 0.05).astype(np.float32)
    return x, y, [w1, np.zeros(256, np.float32), w2, np.zeros(10, np.float32)]


def numpy_step(x, y, params):
    """Hand-written forward, backward and SGD update."""
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    h = np.maximum(pre, 0)
    logits = h @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(len(y)), y]).mean()
    dlogits = probs
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dw2, db2 = h.T @ dlogits, dlogits.sum(axis=0)
    dh = dlogits @ w2.T
    dh[pre <= 0] = 0
    dw1, db1 = x.T @ dh, dh.sum(axis=0)
    for p, g in zip(params, (dw1, db1, dw2, db2)):
        p -= LR * g
    return loss


def flambeau_step(x, y, params, optimizer=None):
    """Forward, backward and SGD; with ``optimizer``, its ``step()`` (flambeau.optim.SGD)."""
    w1, b1, w2, b2 = params
    logits = flambeau.relu(x @ w1 + b1) @ w2 + b2
    loss = flambeau.nn.functional.cross_entropy(logits, y)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad()
        return loss
    with flambeau.no_grad():
        for p in params:
            p -= LR * p.grad
            p.grad = None  # what optimizers' zero_grad() does by default, in both libraries
    return loss


def torch_step(torch, x, y, params, optimizer=None):
    w1, b1, w2, b2 = params
    logits = torch.relu(x @ w1 + b1) @ w2 + b2
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad()
        return loss
    with torch.no_grad():
        for p in params:
            p -= LR * p.grad
            p.grad = None
    return loss


def main(repeats: int = 7) -> None:
    torch = _harness.torch_or_none()
    for batch in (256, 32):
        x, y, params = _data(batch)
        fx, fy = flambeau.tensor(x), flambeau.tensor(y)
        fparams = [flambeau.tensor(p, requires_grad=True) for p in params]
        nparams = [p.copy() for p in params]
        sgd = flambeau.optim.SGD(fparams, lr=LR)
        candidates = {
            "numpy by hand": lambda x=x, y=y, p=nparams: numpy_step(x, y, p),
            "flambeau-cpu": lambda x=fx, y=fy, p=fparams: flambeau_step(x, y, p),
            "flambeau-cpu optim.SGD": lambda x=fx, y=fy, p=fparams, o=sgd: flambeau_step(
                x, y, p, o),
        }
        if torch is not None:
            tx, ty = torch.tensor(x), torch.tensor(y)
            tparams = [torch.tensor(p, requires_grad=True) for p in params]
            tsgd = torch.optim.SGD(tparams, lr=LR)
            candidates["torch"] = lambda x=tx, y=ty, p=tparams: torch_step(torch, x, y, p)
            candidates["torch optim.SGD"] = lambda x=tx, y=ty, p=tparams, o=tsgd: torch_step(
                torch, x, y, p, o)
        number = 20 if batch == 256 else 100
        _harness.report(f"MLP 784-256-10 training step, batch {batch}",
                        _harness.paired(candidates, number, repeats), "numpy by hand")
    _check_same_math()


def _check_same_math() -> None:
    """The three steps compute the same loss (so the timings compare like with like)."""
    x, y, params = _data(64, seed=1)
    loss_np = numpy_step(x, y, [p.copy() for p in params])
    fparams = [flambeau.tensor(p, requires_grad=True) for p in params]
    loss_fl = flambeau_step(flambeau.tensor(x), flambeau.tensor(y), fparams).item()
    assert abs(loss_np - loss_fl) < 1e-4, (loss_np, loss_fl)
    print(f"\nsame loss in numpy and flambeau: {loss_np:.6f} vs {loss_fl:.6f}")


if __name__ == "__main__":
    main()
