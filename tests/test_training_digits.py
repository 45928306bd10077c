"""Training works for real: an MLP and a LeNet-style CNN on scikit-learn's digits."""

from __future__ import annotations

import pytest

import flambeau
from flambeau import demo

pytest.importorskip("sklearn", reason="scikit-learn provides the digits data set")


@pytest.fixture(scope="module")
def digits():
    return demo.load_digits_split("cpu")


@pytest.mark.parametrize(("make", "epochs"), [(demo.make_mlp, 15), (demo.make_lenet, 10)],
                         ids=["mlp", "lenet"])
def test_reaches_95_percent_test_accuracy(digits, make, epochs):
    x_train, y_train, x_test, y_test = digits
    flambeau.manual_seed(0)
    model = make()
    history = demo.train(model, x_train, y_train, epochs=epochs)
    assert history[-1] < history[0] / 5, history
    assert demo.accuracy(model, x_test, y_test) >= 0.95


def test_training_on_a_third_party_backend_matches_cpu(digits):
    x_train, y_train, _, _ = digits
    results = []
    for device in ("cpu", "boxed:0"):
        flambeau.manual_seed(1)
        model = demo.make_mlp().to(device)
        history = demo.train(model, x_train[:256].to(device), y_train[:256].to(device),
                             epochs=2)
        results.append(history)
    assert results[0] == pytest.approx(results[1], rel=1e-4)
