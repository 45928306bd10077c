"""D2L's concise linear regression (section 3.5 / 3.3 of the PyTorch edition) with
``torch`` -> ``flambeau``: ``load_array`` on ``data.TensorDataset`` and ``data.DataLoader``,
then three epochs of SGD that recover the true weights.

Statements are the book's, in order, with assertions on what the book prints.
"""

from __future__ import annotations

import pytest

import flambeau as torch  # the name swap the book is written for
from flambeau import nn
from flambeau.utils import data


def synthetic_data(w, b, num_examples):
    """Generate y = Xw + b + noise."""
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def load_array(data_arrays, batch_size, is_train=True):
    """Construct a PyTorch data iterator."""
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train)


@pytest.mark.parametrize("lazy", [False, True], ids=["Linear", "LazyLinear"])
def test_concise_linear_regression_recovers_the_weights(lazy):
    torch.manual_seed(0)
    true_w = torch.tensor([2, -3.4])
    true_b = 4.2
    features, labels = synthetic_data(true_w, true_b, 1000)

    batch_size = 10
    data_iter = load_array((features, labels), batch_size)
    X, y = next(iter(data_iter))
    assert X.shape == (10, 2) and y.shape == (10, 1)

    net = nn.Sequential(nn.LazyLinear(1) if lazy else nn.Linear(2, 1))
    if lazy:
        net(X)  # materialise the lazy layer before the optimizer sees it
    net[0].weight.data.normal_(0, 0.01)
    net[0].bias.data.fill_(0)
    loss = nn.MSELoss()
    trainer = torch.optim.SGD(net.parameters(), lr=0.03)

    num_epochs = 3
    for _epoch in range(num_epochs):
        for X, y in data_iter:
            l = loss(net(X), y)  # noqa: E741  (the book's name)
            trainer.zero_grad()
            l.backward()
            trainer.step()
        l = loss(net(features), labels)  # noqa: E741
    assert l.item() < 2e-4  # the book prints ~0.0001

    w = net[0].weight.data
    b = net[0].bias.data
    assert (true_w - w.reshape(true_w.shape)).abs().max().item() < 0.01
    assert abs(true_b - b.item()) < 0.01
    assert len(data_iter) == 100
