"""The models of D2L's CNN chapters (7 and 8), built from the book's PyTorch cells once with
``torch`` and once with ``flambeau``, agree with PyTorch.

Each builder takes the module namespace ``lib`` (``torch`` or ``flambeau``) so the cell
text is written once. PyTorch's weights are loaded into the flambeau model (after one
forward has materialised the lazy layers), then the forward output, the cross-entropy
loss, every parameter gradient, the parameters after one ``optim.SGD`` step and the
batch-norm running statistics are compared, in train mode and in eval mode.

Departures from the book, all of them for speed or determinism: inputs are smaller than
the book's 224x224 / 96x96 images where the architecture allows it; ``d2l.Classifier`` is
reduced to its ``forward`` (``self.net(X)``) and ``save_hyperparameters`` is left out; and
dropout layers get ``p=0`` in train mode, because the two libraries draw different random
masks (eval mode runs them with the book's ``p``, where they are the identity).
"""

from __future__ import annotations

import numpy as np
import pytest

import flambeau

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")

# float32 through a deep network: each library sums convolutions and matmuls in its own
# order, and the differences grow with depth (as in the existing reference tests, looser
# for the deep residual and dense nets, see their cases).
RTOL, ATOL = 1e-4, 1e-5


# --- the book's cells, written once for both libraries ---------------------------------


def init_cnn(lib):
    def init(module):  # d2l.init_cnn
        if type(module) == lib.nn.Linear or type(module) == lib.nn.Conv2d:  # noqa: E721
            lib.nn.init.xavier_uniform_(module.weight)
    return init


def classifier(lib):
    """``d2l.Classifier`` as far as a forward pass goes: ``self.net(X)``."""

    class Classifier(lib.nn.Module):
        def forward(self, X):
            return self.net(X)

    return Classifier


def lenet(lib, num_classes=10):
    nn = lib.nn

    class LeNet(classifier(lib)):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))

    return LeNet(num_classes=num_classes)


def alexnet(lib, num_classes=10):
    nn = lib.nn

    class AlexNet(classifier(lib)):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
                nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
                nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
                nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
                nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
                nn.LazyLinear(num_classes))
            self.net.apply(init_cnn(lib))

    return AlexNet(num_classes=num_classes)


def vgg(lib, arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), num_classes=10):
    nn = lib.nn

    def vgg_block(num_convs, out_channels):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        return nn.Sequential(*layers)

    class VGG(classifier(lib)):
        def __init__(self, arch, lr=0.1, num_classes=10):
            super().__init__()
            conv_blks = []
            for (num_convs, out_channels) in arch:
                conv_blks.append(vgg_block(num_convs, out_channels))
            self.net = nn.Sequential(
                *conv_blks, nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(num_classes))
            self.net.apply(init_cnn(lib))

    return VGG(arch, num_classes=num_classes)


def nin(lib, num_classes=10):
    nn = lib.nn

    def nin_block(out_channels, kernel_size, strides, padding):
        return nn.Sequential(
            nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
            nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
            nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())

    class NiN(classifier(lib)):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nin_block(96, kernel_size=11, strides=4, padding=0),
                nn.MaxPool2d(3, stride=2),
                nin_block(256, kernel_size=5, strides=1, padding=2),
                nn.MaxPool2d(3, stride=2),
                nin_block(384, kernel_size=3, strides=1, padding=1),
                nn.MaxPool2d(3, stride=2),
                nn.Dropout(0.5),
                nin_block(num_classes, kernel_size=3, strides=1, padding=1),
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten())
            self.net.apply(init_cnn(lib))

    return NiN(num_classes=num_classes)


def googlenet(lib, num_classes=10):
    nn, F = lib.nn, lib.nn.functional

    class Inception(nn.Module):
        # c1--c4 are the number of output channels for each branch
        def __init__(self, c1, c2, c3, c4, **kwargs):
            super().__init__(**kwargs)
            self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
            self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
            self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
            self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
            self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
            self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
            self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

        def forward(self, x):
            b1 = F.relu(self.b1_1(x))
            b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
            b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
            b4 = F.relu(self.b4_2(self.b4_1(x)))
            return lib.cat((b1, b2, b3, b4), dim=1)

    class GoogleNet(classifier(lib)):
        def b1(self):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def b2(self):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
                nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def b3(self):
            return nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                                 Inception(128, (128, 192), (32, 96), 64),
                                 nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def b4(self):
            return nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                                 Inception(160, (112, 224), (24, 64), 64),
                                 Inception(128, (128, 256), (24, 64), 64),
                                 Inception(112, (144, 288), (32, 64), 64),
                                 Inception(256, (160, 320), (32, 128), 128),
                                 nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def b5(self):
            return nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                                 Inception(384, (192, 384), (48, 128), 128),
                                 nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())

        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(),
                                     self.b5(), nn.LazyLinear(num_classes))
            self.net.apply(init_cnn(lib))

    return GoogleNet(num_classes=num_classes)


def bn_lenet_scratch(lib, num_classes=10):
    nn = lib.nn

    def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
        # Use is_grad_enabled to determine whether we are in training mode
        if not lib.is_grad_enabled():
            # In prediction mode, use mean and variance obtained by moving average
            X_hat = (X - moving_mean) / lib.sqrt(moving_var + eps)
        else:
            assert len(X.shape) in (2, 4)
            if len(X.shape) == 2:
                mean = X.mean(dim=0)
                var = ((X - mean) ** 2).mean(dim=0)
            else:
                mean = X.mean(dim=(0, 2, 3), keepdim=True)
                var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
            X_hat = (X - mean) / lib.sqrt(var + eps)
            moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
            moving_var = (1.0 - momentum) * moving_var + momentum * var
        Y = gamma * X_hat + beta  # Scale and shift
        return Y, moving_mean.data, moving_var.data

    class BatchNorm(nn.Module):
        def __init__(self, num_features, num_dims):
            super().__init__()
            if num_dims == 2:
                shape = (1, num_features)
            else:
                shape = (1, num_features, 1, 1)
            self.gamma = nn.Parameter(lib.ones(shape))
            self.beta = nn.Parameter(lib.zeros(shape))
            self.moving_mean = lib.zeros(shape)
            self.moving_var = lib.ones(shape)

        def forward(self, X):
            if self.moving_mean.device != X.device:
                self.moving_mean = self.moving_mean.to(X.device)
                self.moving_var = self.moving_var.to(X.device)
            Y, self.moving_mean, self.moving_var = batch_norm(
                X, self.gamma, self.beta, self.moving_mean,
                self.moving_var, eps=1e-5, momentum=0.1)
            return Y

    class BNLeNetScratch(classifier(lib)):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5), BatchNorm(6, num_dims=4),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), BatchNorm(16, num_dims=4),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(), nn.LazyLinear(120),
                BatchNorm(120, num_dims=2), nn.Sigmoid(), nn.LazyLinear(84),
                BatchNorm(84, num_dims=2), nn.Sigmoid(),
                nn.LazyLinear(num_classes))

    return BNLeNetScratch(num_classes=num_classes)


def bn_lenet(lib, num_classes=10):
    nn = lib.nn

    class BNLeNet(classifier(lib)):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
                nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
                nn.Sigmoid(), nn.LazyLinear(num_classes))

    return BNLeNet(num_classes=num_classes)


def residual(lib):
    nn, F = lib.nn, lib.nn.functional

    class Residual(nn.Module):
        """The Residual block of ResNet models."""

        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                       stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                           stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)

    return Residual


def resnet18(lib, num_classes=10):
    nn = lib.nn
    Residual = residual(lib)

    class ResNet(classifier(lib)):
        def b1(self):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def block(self, num_residuals, num_channels, first_block=False):
            blk = []
            for i in range(num_residuals):
                if i == 0 and not first_block:
                    blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
                else:
                    blk.append(Residual(num_channels))
            return nn.Sequential(*blk)

        def __init__(self, arch, lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(self.b1())
            for i, b in enumerate(arch):
                self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i == 0)))
            self.net.add_module('last', nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                nn.LazyLinear(num_classes)))
            self.net.apply(init_cnn(lib))

    class ResNet18(ResNet):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)),
                             lr, num_classes)

    return ResNet18(num_classes=num_classes)


def resnext_net(lib, num_classes=10):
    """The book's ResNeXt block (as tried on a 4-D input), with a classifier head."""
    nn, F = lib.nn, lib.nn.functional

    class ResNeXtBlock(nn.Module):
        """The ResNeXt block."""

        def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False,
                     strides=1):
            super().__init__()
            bot_channels = int(round(num_channels * bot_mul))  # noqa: RUF046 - the book's cell
            self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
            self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3,
                                       stride=strides, padding=1,
                                       groups=bot_channels//groups)
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()
            self.bn3 = nn.LazyBatchNorm2d()
            if use_1x1conv:
                self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1,
                                           stride=strides)
                self.bn4 = nn.LazyBatchNorm2d()
            else:
                self.conv4 = None

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = F.relu(self.bn2(self.conv2(Y)))
            Y = self.bn3(self.conv3(Y))
            if self.conv4:
                X = self.bn4(self.conv4(X))
            return F.relu(Y + X)

    class Net(classifier(lib)):
        def __init__(self):
            super().__init__()
            # The book's checks: ResNeXtBlock(32, 16, 1) keeps the shape of a 32-channel
            # input; with use_1x1conv and strides=2 it changes channels and halves it.
            self.net = nn.Sequential(
                ResNeXtBlock(32, 16, 1), ResNeXtBlock(64, 16, 1, use_1x1conv=True, strides=2),
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes))

    return Net()


def densenet(lib, num_classes=10):
    nn = lib.nn

    def conv_block(num_channels):
        return nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, kernel_size=3, padding=1))

    class DenseBlock(nn.Module):
        def __init__(self, num_convs, num_channels):
            super().__init__()
            layer = []
            for i in range(num_convs):  # noqa: B007 - the book's cell
                layer.append(conv_block(num_channels))
            self.net = nn.Sequential(*layer)

        def forward(self, X):
            for blk in self.net:
                Y = blk(X)
                # Concatenate input and output of each block along the channels
                X = lib.cat((X, Y), dim=1)
            return X

    def transition_block(num_channels):
        return nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, kernel_size=1),
            nn.AvgPool2d(kernel_size=2, stride=2))

    class DenseNet(classifier(lib)):
        def b1(self):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def __init__(self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4),
                     lr=0.1, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(self.b1())
            for i, num_convs in enumerate(arch):
                self.net.add_module(f'dense_blk{i+1}', DenseBlock(num_convs,
                                                                  growth_rate))
                num_channels += num_convs * growth_rate
                if i != len(arch) - 1:
                    num_channels //= 2
                    self.net.add_module(f'tran_blk{i+1}', transition_block(
                        num_channels))
            self.net.add_module('last', nn.Sequential(
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                nn.LazyLinear(num_classes)))
            self.net.apply(init_cnn(lib))

    return DenseNet(num_classes=num_classes)


# --- the comparison --------------------------------------------------------------------


def _same(got, want, what, rtol=RTOL, atol=ATOL):
    """``got`` (flambeau) matches ``want`` (torch); a float64 reference stands for float32,
    and its tolerance grows with the tensor's largest entry (float32 rounding in a deep net
    is relative to the magnitudes summed, not to each result)."""
    want_dtype = str(want.dtype).removeprefix("torch.").replace("float64", "float32")
    assert tuple(got.shape) == tuple(want.shape), what
    assert str(got.dtype) == want_dtype, what
    expected = want.detach().numpy()
    if want.dtype == torch.float64 and expected.size:
        atol = max(atol, rtol * float(np.abs(expected).max()))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=rtol, atol=atol,
                               err_msg=what)


def _state(lib, model) -> dict:
    """Parameters, buffers, and the scratch batch norm's moving statistics (plain
    attributes in the book, so in no state dict)."""
    state = dict(model.state_dict())
    for name, module in model.named_modules():
        for attr in ("moving_mean", "moving_var"):
            if isinstance(getattr(module, attr, None), lib.Tensor):
                state[f"{name}.{attr}"] = getattr(module, attr)
    return state


def _compare_states(ours, theirs, when, rtol, atol):
    ours_state, theirs_state = _state(flambeau, ours), _state(torch, theirs)
    assert ours_state.keys() == theirs_state.keys()
    for name, value in theirs_state.items():
        _same(ours_state[name], value, f"{name} {when}", rtol, atol)


def _set_dropout(model, lib, p):
    for module in model.modules():
        if isinstance(module, lib.nn.Dropout):
            module.p = p


def build_pair(build, x, *, reference="float32"):
    """``build(flambeau)`` holding the weights of ``build(torch)``; both materialised by
    one forward on ``x``; torch's model converted to ``reference`` afterwards."""
    theirs, ours = build(torch), build(flambeau)
    theirs(torch.tensor(x))
    ours(flambeau.tensor(x))
    ours_state = _state(flambeau, ours)
    for name, value in _state(torch, theirs).items():
        assert tuple(ours_state[name].shape) == tuple(value.shape), name
        ours_state[name].data.copy_(flambeau.tensor(value.detach().numpy()))
    return ours, theirs.to(getattr(torch, reference))


def _run(lib, model, x, y, dtype, sgd=None):
    """Forward, cross-entropy loss, backward (and an SGD step when ``sgd`` is given)."""
    model.zero_grad()
    out = model(lib.tensor(x).to(dtype))
    loss = lib.nn.functional.cross_entropy(out, lib.tensor(y))
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    if sgd is not None:
        lib.optim.SGD(model.parameters(), **sgd).step()
    return out, loss, grads


def compare(build, shape, *, sgd=None, rtol=RTOL, atol=ATOL, classes=10, seed=0,
            reference="float32"):
    """Build ``build(lib)`` in both libraries with torch's weights; compare a training step
    (train mode: batch statistics, running statistics updated), then an evaluation pass
    with its gradients (eval mode).

    ``reference="float64"`` runs torch's model in float64 (from the same float32 weights):
    for the deep batch-norm nets on small batches, float32 results of either library stray
    from the exact ones by more than the tolerance (in probes, torch's float32 gradients
    came up to 3e-2 of a tensor's largest entry from its float64 ones, flambeau's up to
    3e-4), so the exact result is the fair reference.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, classes, shape[0])
    ours, theirs = build_pair(build, x, reference=reference)
    dtypes = {flambeau: flambeau.float32, torch: getattr(torch, reference)}
    for mode in ("train", "eval"):
        if mode == "eval":
            # One SGD step leaves the float32 libraries a rounding apart, and eval mode
            # (running statistics of a 2-sample batch) amplifies that: evaluate one state.
            theirs_state = _state(torch, theirs)
            for name, value in _state(flambeau, ours).items():
                theirs_state[name].data.copy_(torch.tensor(value.numpy()))
            x = rng.standard_normal(shape).astype(np.float32)
            predicted = []
            for model, lib in ((ours, flambeau), (theirs, torch)):
                _set_dropout(model, lib, 0.5)  # the book's p: eval mode makes it the identity
                model.eval()
                with lib.no_grad():  # the scratch batch norm tells prediction by grad mode
                    predicted.append(model(lib.tensor(x).to(dtypes[lib])))
            _same(*predicted, "eval output without grad", rtol, atol)
        else:
            for model, lib in ((theirs, torch), (ours, flambeau)):
                _set_dropout(model, lib, 0.0)  # the libraries draw different masks
        step = (sgd or {"lr": 0.1}) if mode == "train" else None
        want = _run(torch, theirs, x, y, dtypes[torch], step)
        got = _run(flambeau, ours, x, y, flambeau.float32, step)
        _same(got[0], want[0], f"{mode} output", rtol, atol)
        _same(got[1], want[1], f"{mode} loss", rtol, atol)
        assert got[2].keys() == want[2].keys()
        for name, grad in want[2].items():
            _same(got[2][name], grad, f"{mode} gradient of {name}", rtol, atol)
        _compare_states(ours, theirs, f"after the {mode} pass", rtol, atol)
    return ours, theirs


# --- the chapters' models --------------------------------------------------------------


def test_lenet():
    ours, _ = compare(lenet, (4, 1, 28, 28))
    assert [type(m).__name__ for m in ours.net] == [
        "Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d", "Flatten",
        "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]


def test_alexnet_forward_at_the_books_input_size():
    x = np.random.default_rng(1).standard_normal((1, 1, 224, 224)).astype(np.float32)
    ours, theirs = build_pair(alexnet, x)
    ours.eval(), theirs.eval()
    with flambeau.no_grad(), torch.no_grad():
        _same(ours(flambeau.tensor(x)), theirs(torch.tensor(x)), "output at 224x224")


def test_alexnet_training_step_on_a_reduced_input():
    # The smallest input the book's layers take (67x67: 1x1 after the last pooling), so the
    # first fully connected layer has 256 inputs rather than 6400 (a 26M-weight gradient).
    compare(alexnet, (2, 1, 67, 67), sgd={"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})


def test_vgg_with_the_books_small_arch():
    compare(vgg, (2, 1, 32, 32))


def test_nin():
    compare(nin, (2, 1, 67, 67))


def test_googlenet():
    compare(googlenet, (2, 1, 32, 32), sgd={"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4})


def test_batch_norm_from_scratch_in_lenet():
    compare(bn_lenet_scratch, (4, 1, 28, 28))


def test_concise_batch_norm_lenet():
    compare(bn_lenet, (4, 1, 28, 28), sgd={"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4})


def test_resnet18():
    compare(resnet18, (4, 1, 32, 32), reference="float64")


def test_resnext_block():
    compare(resnext_net, (2, 32, 8, 8), reference="float64")


def test_densenet():
    compare(densenet, (4, 1, 32, 32), reference="float64")
