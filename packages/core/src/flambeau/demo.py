"""The README demo: train a small model on scikit-learn's bundled digits on any device.

``flambeau demo --device cpu`` prints the devices found, the model's summary (computed
on the meta device, before any weight exists), trains with a progress bar and reports
test accuracy. Needs the ``demo`` extra (scikit-learn for the data set, tqdm).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _device
from .errors import FlambeauError


def load_digits_split(device: Any = None, test_fraction: float = 0.2, seed: int = 0) -> tuple:
    """The 8x8 digits as (x_train, y_train, x_test, y_test) tensors: images scaled to
    [0, 1] with shape (N, 1, 8, 8), int64 labels; a fixed shuffled split."""
    import flambeau

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise FlambeauError(
            'the demo needs scikit-learn for its data set: pip install "flambeau[demo]"'
        ) from None
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(images) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]

    def put(a: np.ndarray) -> Any:
        return flambeau.tensor(a, device=device)

    return put(images[train]), put(digits.target[train]), put(images[test]), \
        put(digits.target[test])


def make_mlp() -> Any:
    """Flatten, then a 64-unit hidden layer; layer sizes are inferred from the data."""
    from . import nn

    return nn.Sequential(nn.Flatten(), nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(10))


def make_lenet() -> Any:
    """A LeNet-style CNN sized for 8x8 images."""
    from . import nn

    return nn.Sequential(
        nn.LazyConv2d(8, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.LazyConv2d(16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(10),
    )


def train(model: Any, x: Any, y: Any, *, epochs: int = 15, lr: float = 0.01,
          batch_size: int = 64, progress: bool = False, seed: int = 0) -> list[float]:
    """Train ``model`` with Adam and cross-entropy on shuffled minibatches (a
    ``DataLoader`` whose generator is seeded with ``seed``); returns the mean loss of each
    epoch."""
    import flambeau
    from flambeau import nn, optim
    from flambeau.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=flambeau.Generator(seed))
    model(x[:1])  # materialise lazy layers before the optimizer sees the parameters
    optimizer = optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    bar = _progress(epochs * len(loader), progress)
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        model.train()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
            bar.update(1)
        history.append(total / count)
        bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.3f}", refresh=False)
    bar.close()
    return history


def accuracy(model: Any, x: Any, y: Any) -> float:
    """Fraction of ``x`` classified as ``y``, in eval mode without a graph."""
    import flambeau

    model.eval()
    with flambeau.no_grad():
        predicted = model(x).argmax(dim=1)
    return (predicted == y).float().mean().item()


class _Silent:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool) -> Any:
    if not show:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc="training", unit="batch", mininterval=0.5)


def run_demo(device_name: str | None = None, model_name: str = "mlp", epochs: int = 15) -> int:
    """Print the devices, then train and evaluate on ``device_name`` (default device)."""
    import flambeau
    from flambeau import nn

    from .__main__ import print_devices

    print_devices()
    try:
        dev = _device.device(device_name) if device_name else _device.get_default_device()
        if dev.type == "meta":
            raise FlambeauError("meta tensors carry shapes but no values, so there is no "
                                "data to train on; pick a real device, e.g. --device cpu")
        x_train, y_train, x_test, y_test = load_digits_split(dev)
    except FlambeauError as exc:
        print(f"\nerror: {exc}")
        return 1
    print(f"\ntraining a {model_name} on the digits data set ({len(x_train)} train, "
          f"{len(x_test)} test images) on {dev} ({dev.info.name})\n")
    flambeau.manual_seed(0)
    model = make_lenet() if model_name == "lenet" else make_mlp()
    nn.summary(model, (1, 1, 8, 8))
    history = train(model, x_train, y_train, epochs=epochs, progress=True)
    print(f"\nloss per epoch: {', '.join(f'{h:.3f}' for h in history)}")
    print(f"test accuracy: {accuracy(model, x_test, y_test):.1%}")
    return 0
