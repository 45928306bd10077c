"""D2L's regression, MLP and recurrent models agree with PyTorch: chapters 3-5 (linear and
softmax regression from scratch and concise, MLPs with dropout) and 9-10 (RNN, GRU, LSTM,
deep and bidirectional RNNs from scratch and concise, the RNN language model and its
``predict``, the GRU encoder-decoder).

The book's cells are written once, in :func:`book`, as a function of the library, and
built with ``torch`` and with ``flambeau``. The book's ``d2l.Module`` framework (hyper-
parameter saving, progress plots) is left out: ``save_hyperparameters()`` is written out as
attribute assignments and the training step as ``Trainer.fit_epoch`` runs it. Each test
loads torch's weights into flambeau (after a first forward that materialises lazy
layers) and compares the outputs, the loss, every parameter gradient (after the book's
gradient clipping where it clips) and the parameters after one optimizer step.
"""

from __future__ import annotations

import collections
import functools
import re
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402

# float32 on both sides; sums over a few dozen terms may round differently.
RTOL, ATOL = 1e-4, 1e-5
VOCAB, HIDDEN, BATCH, STEPS = 7, 8, 3, 5
_rng = np.random.default_rng(15)


@functools.cache
def book(torch):
    """The book's cells with ``torch`` bound to either library."""
    nn = torch.nn
    F = nn.functional

    # --- 3.2-3.4 linear regression from scratch (the utility functions of sec_utils) ---
    def linreg(X, w, b):
        return torch.matmul(X, w) + b

    def squared_loss(y_hat, y):
        return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

    def sgd(params, lr, batch_size):
        with torch.no_grad():
            for param in params:
                param -= lr * param.grad / batch_size
                param.grad.zero_()

    class LinearRegressionScratch(nn.Module):
        def __init__(self, num_inputs, lr, sigma=0.01):
            super().__init__()
            self.num_inputs, self.lr, self.sigma = num_inputs, lr, sigma
            self.w = torch.normal(0, sigma, (num_inputs, 1), requires_grad=True)
            self.b = torch.zeros(1, requires_grad=True)

        def forward(self, X):
            return torch.matmul(X, self.w) + self.b

        def loss(self, y_hat, y):
            l = (y_hat - y) ** 2 / 2  # noqa: E741 - the book's name
            return l.mean()

        def configure_optimizers(self):
            return SGD([self.w, self.b], self.lr)

    class SGD:  # the book's minibatch SGD class (sec_linear_scratch)
        def __init__(self, params, lr):
            self.params, self.lr = params, lr

        def step(self):
            for param in self.params:
                param -= self.lr * param.grad

        def zero_grad(self):
            for param in self.params:
                if param.grad is not None:
                    param.grad.zero_()

    # --- 3.5 concise linear regression ----------------------------------------------------
    class LinearRegression(nn.Module):
        def __init__(self, lr):
            super().__init__()
            self.lr = lr
            self.net = nn.LazyLinear(1)
            self.net.weight.data.normal_(0, 0.01)
            self.net.bias.data.fill_(0)

        def forward(self, X):
            return self.net(X)

        def loss(self, y_hat, y):
            fn = nn.MSELoss()
            return fn(y_hat, y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), self.lr)

    # --- 3.7 weight decay ------------------------------------------------------------------
    def l2_penalty(w):
        return (w ** 2).sum() / 2

    class WeightDecayScratch(LinearRegressionScratch):
        def __init__(self, num_inputs, lambd, lr, sigma=0.01):
            super().__init__(num_inputs, lr, sigma)
            self.lambd = lambd

        def loss(self, y_hat, y):
            return (super().loss(y_hat, y) + self.lambd * l2_penalty(self.w))

    class WeightDecay(LinearRegression):
        def __init__(self, wd, lr):
            super().__init__(lr)
            self.wd = wd

        def configure_optimizers(self):
            return torch.optim.SGD([
                {"params": self.net.weight, "weight_decay": self.wd},
                {"params": self.net.bias}], lr=self.lr)

    # --- 4.3 the classifier base, 4.4 softmax regression from scratch --------------------
    class Classifier(nn.Module):
        def accuracy(self, Y_hat, Y, averaged=True):
            Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
            preds = Y_hat.argmax(axis=1).type(Y.dtype)
            compare = (preds == Y.reshape(-1)).type(torch.float32)
            return compare.mean() if averaged else compare

        def loss(self, Y_hat, Y, averaged=True):
            Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
            Y = Y.reshape((-1,))
            return F.cross_entropy(Y_hat, Y, reduction="mean" if averaged else "none")

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    def softmax(X):
        X_exp = torch.exp(X)
        partition = X_exp.sum(1, keepdims=True)
        return X_exp / partition

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[list(range(len(y_hat))), y]).mean()

    class SoftmaxRegressionScratch(Classifier):
        def __init__(self, num_inputs, num_outputs, lr, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_outputs, self.lr = num_inputs, num_outputs, lr
            self.W = torch.normal(0, sigma, size=(num_inputs, num_outputs),
                                  requires_grad=True)
            self.b = torch.zeros(num_outputs, requires_grad=True)

        def parameters(self):
            return [self.W, self.b]

        def forward(self, X):
            X = X.reshape((-1, self.W.shape[0]))
            return softmax(torch.matmul(X, self.W) + self.b)

        def loss(self, y_hat, y):
            return cross_entropy(y_hat, y)

    class SoftmaxRegression(Classifier):  # 4.5
        def __init__(self, num_outputs, lr):
            super().__init__()
            self.lr = lr
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

        def forward(self, X):
            return self.net(X)

    # --- 5.2 MLPs, 5.6 dropout ------------------------------------------------------------
    def relu(X):
        a = torch.zeros_like(X)
        return torch.max(X, a)

    class MLPScratch(Classifier):
        def __init__(self, num_inputs, num_outputs, num_hiddens, lr, sigma=0.01):
            super().__init__()
            self.num_inputs, self.lr = num_inputs, lr
            self.W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
            self.b1 = nn.Parameter(torch.zeros(num_hiddens))
            self.W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * sigma)
            self.b2 = nn.Parameter(torch.zeros(num_outputs))

        def forward(self, X):
            X = X.reshape((-1, self.num_inputs))
            H = relu(torch.matmul(X, self.W1) + self.b1)
            return torch.matmul(H, self.W2) + self.b2

    class MLP(Classifier):
        def __init__(self, num_outputs, num_hiddens, lr):
            super().__init__()
            self.lr = lr
            self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_hiddens), nn.ReLU(),
                                     nn.LazyLinear(num_outputs))

        def forward(self, X):
            return self.net(X)

    def dropout_layer(X, dropout):
        assert 0 <= dropout <= 1
        if dropout == 1:
            return torch.zeros_like(X)
        mask = (torch.rand(X.shape) > dropout).float()
        return mask * X / (1.0 - dropout)

    class DropoutMLPScratch(Classifier):
        def __init__(self, num_outputs, num_hiddens_1, num_hiddens_2, dropout_1, dropout_2,
                     lr):
            super().__init__()
            self.dropout_1, self.dropout_2, self.lr = dropout_1, dropout_2, lr
            self.lin1 = nn.LazyLinear(num_hiddens_1)
            self.lin2 = nn.LazyLinear(num_hiddens_2)
            self.lin3 = nn.LazyLinear(num_outputs)
            self.relu = nn.ReLU()

        def forward(self, X):
            H1 = self.relu(self.lin1(X.reshape((X.shape[0], -1))))
            if self.training:
                H1 = dropout_layer(H1, self.dropout_1)
            H2 = self.relu(self.lin2(H1))
            if self.training:
                H2 = dropout_layer(H2, self.dropout_2)
            return self.lin3(H2)

    class DropoutMLP(Classifier):
        def __init__(self, num_outputs, num_hiddens_1, num_hiddens_2, dropout_1, dropout_2,
                     lr):
            super().__init__()
            self.lr = lr
            self.net = nn.Sequential(
                nn.Flatten(), nn.LazyLinear(num_hiddens_1), nn.ReLU(), nn.Dropout(dropout_1),
                nn.LazyLinear(num_hiddens_2), nn.ReLU(), nn.Dropout(dropout_2),
                nn.LazyLinear(num_outputs))

        def forward(self, X):
            return self.net(X)

    # --- 9.2 text, 9.3 language model data (the text is given, not downloaded) -------------
    class TimeMachine:
        def __init__(self, raw_text, batch_size, num_steps, num_train, num_val):
            self.batch_size, self.num_steps = batch_size, num_steps
            self.num_train, self.num_val = num_train, num_val
            corpus, self.vocab = self.build(raw_text)
            array = torch.tensor([corpus[i:i + num_steps + 1]
                                  for i in range(len(corpus) - num_steps)])
            self.X, self.Y = array[:, :-1], array[:, 1:]

        def _preprocess(self, text):
            return re.sub("[^A-Za-z]+", " ", text).lower()

        def _tokenize(self, text):
            return list(text)

        def build(self, raw_text, vocab=None):
            tokens = self._tokenize(self._preprocess(raw_text))
            if vocab is None:
                vocab = Vocab(tokens)
            corpus = [vocab[token] for token in tokens]
            return corpus, vocab

        def val_dataloader(self):  # DataModule's
            return self.get_dataloader(train=False)

        def get_dataloader(self, train):
            idx = slice(0, self.num_train) if train else slice(
                self.num_train, self.num_train + self.num_val)
            return self.get_tensorloader([self.X, self.Y], train, idx)

        def get_tensorloader(self, tensors, train, indices=slice(0, None)):
            tensors = tuple(a[indices] for a in tensors)
            dataset = torch.utils.data.TensorDataset(*tensors)
            return torch.utils.data.DataLoader(dataset, self.batch_size, shuffle=train)

    # --- 9.5 RNN from scratch, the language model and gradient clipping --------------------
    class RNNScratch(nn.Module):
        def __init__(self, num_inputs, num_hiddens, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_hiddens, self.sigma = num_inputs, num_hiddens, sigma
            self.W_xh = nn.Parameter(torch.randn(num_inputs, num_hiddens) * sigma)
            self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
            self.b_h = nn.Parameter(torch.zeros(num_hiddens))

        def forward(self, inputs, state=None):
            if state is None:
                # Initial state with shape: (batch_size, num_hiddens)
                state = torch.zeros((inputs.shape[1], self.num_hiddens),
                                    device=inputs.device)
            else:
                state, = state
            outputs = []
            for X in inputs:  # Shape of inputs: (num_steps, batch_size, num_inputs)
                state = torch.tanh(torch.matmul(X, self.W_xh) +
                                   torch.matmul(state, self.W_hh) + self.b_h)
                outputs.append(state)
            return outputs, state

    class RNNLMScratch(Classifier):
        def __init__(self, rnn, vocab_size, lr=0.01):
            super().__init__()
            self.rnn, self.vocab_size, self.lr = rnn, vocab_size, lr
            self.init_params()

        def init_params(self):
            self.W_hq = nn.Parameter(
                torch.randn(self.rnn.num_hiddens, self.vocab_size) * self.rnn.sigma)
            self.b_q = nn.Parameter(torch.zeros(self.vocab_size))

        def one_hot(self, X):
            # Output shape: (num_steps, batch_size, vocab_size)
            return F.one_hot(X.T, self.vocab_size).type(torch.float32)

        def output_layer(self, rnn_outputs):
            outputs = [torch.matmul(H, self.W_hq) + self.b_q for H in rnn_outputs]
            return torch.stack(outputs, 1)

        def forward(self, X, state=None):
            embs = self.one_hot(X)
            rnn_outputs, _ = self.rnn(embs, state)
            return self.output_layer(rnn_outputs)

        def predict(self, prefix, num_preds, vocab, device=None):
            state, outputs = None, [vocab[prefix[0]]]
            for i in range(len(prefix) + num_preds - 1):
                X = torch.tensor([[outputs[-1]]], device=device)
                embs = self.one_hot(X)
                rnn_outputs, state = self.rnn(embs, state)
                if i < len(prefix) - 1:  # Warm-up period
                    outputs.append(vocab[prefix[i + 1]])
                else:  # Predict num_preds steps
                    Y = self.output_layer(rnn_outputs)
                    outputs.append(int(Y.argmax(axis=2).reshape(1)))
            return "".join([vocab.idx_to_token[i] for i in outputs])

    def clip_gradients(grad_clip_val, model):  # Trainer.clip_gradients
        params = [p for p in model.parameters() if p.requires_grad]
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
        if norm > grad_clip_val:
            for param in params:
                param.grad[:] *= grad_clip_val / norm

    # --- 9.6 concise RNN --------------------------------------------------------------------
    class RNN(nn.Module):
        def __init__(self, num_inputs, num_hiddens):
            super().__init__()
            self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
            self.rnn = nn.RNN(num_inputs, num_hiddens)

        def forward(self, inputs, H=None):
            return self.rnn(inputs, H)

    class RNNLM(RNNLMScratch):
        def init_params(self):
            self.linear = nn.LazyLinear(self.vocab_size)

        def output_layer(self, hiddens):
            return self.linear(hiddens).swapaxes(0, 1)

    # --- 10.1 LSTM, 10.2 GRU from scratch and concise ------------------------------------
    class LSTMScratch(nn.Module):
        def __init__(self, num_inputs, num_hiddens, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_hiddens, self.sigma = num_inputs, num_hiddens, sigma

            def init_weight(*shape):
                return nn.Parameter(torch.randn(*shape) * sigma)

            def triple():
                return (init_weight(num_inputs, num_hiddens),
                        init_weight(num_hiddens, num_hiddens),
                        nn.Parameter(torch.zeros(num_hiddens)))

            self.W_xi, self.W_hi, self.b_i = triple()  # Input gate
            self.W_xf, self.W_hf, self.b_f = triple()  # Forget gate
            self.W_xo, self.W_ho, self.b_o = triple()  # Output gate
            self.W_xc, self.W_hc, self.b_c = triple()  # Input node

        def forward(self, inputs, H_C=None):
            if H_C is None:
                # Initial state with shape: (batch_size, num_hiddens)
                H = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
                C = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
            else:
                H, C = H_C
            outputs = []
            for X in inputs:
                I = torch.sigmoid(torch.matmul(X, self.W_xi) +  # noqa: E741
                                  torch.matmul(H, self.W_hi) + self.b_i)
                F_ = torch.sigmoid(torch.matmul(X, self.W_xf) +
                                   torch.matmul(H, self.W_hf) + self.b_f)
                O = torch.sigmoid(torch.matmul(X, self.W_xo) +  # noqa: E741
                                  torch.matmul(H, self.W_ho) + self.b_o)
                C_tilde = torch.tanh(torch.matmul(X, self.W_xc) +
                                     torch.matmul(H, self.W_hc) + self.b_c)
                C = F_ * C + I * C_tilde
                H = O * torch.tanh(C)
                outputs.append(H)
            return outputs, (H, C)

    class LSTM(RNN):
        def __init__(self, num_inputs, num_hiddens):
            nn.Module.__init__(self)
            self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
            self.rnn = nn.LSTM(num_inputs, num_hiddens)

        def forward(self, inputs, H_C=None):
            return self.rnn(inputs, H_C)

    class GRUScratch(nn.Module):
        def __init__(self, num_inputs, num_hiddens, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_hiddens, self.sigma = num_inputs, num_hiddens, sigma

            def init_weight(*shape):
                return nn.Parameter(torch.randn(*shape) * sigma)

            def triple():
                return (init_weight(num_inputs, num_hiddens),
                        init_weight(num_hiddens, num_hiddens),
                        nn.Parameter(torch.zeros(num_hiddens)))

            self.W_xz, self.W_hz, self.b_z = triple()  # Update gate
            self.W_xr, self.W_hr, self.b_r = triple()  # Reset gate
            self.W_xh, self.W_hh, self.b_h = triple()  # Candidate hidden state

        def forward(self, inputs, H=None):
            if H is None:
                # Initial state with shape: (batch_size, num_hiddens)
                H = torch.zeros((inputs.shape[1], self.num_hiddens), device=inputs.device)
            outputs = []
            for X in inputs:
                Z = torch.sigmoid(torch.matmul(X, self.W_xz) +
                                  torch.matmul(H, self.W_hz) + self.b_z)
                R = torch.sigmoid(torch.matmul(X, self.W_xr) +
                                  torch.matmul(H, self.W_hr) + self.b_r)
                H_tilde = torch.tanh(torch.matmul(X, self.W_xh) +
                                     torch.matmul(R * H, self.W_hh) + self.b_h)
                H = Z * H + (1 - Z) * H_tilde
                outputs.append(H)
            return outputs, H

    class GRU(RNN):  # 10.2's concise GRU with 10.3's num_layers and dropout
        def __init__(self, num_inputs, num_hiddens, num_layers=1, dropout=0):
            nn.Module.__init__(self)
            self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
            self.num_layers, self.dropout = num_layers, dropout
            self.rnn = nn.GRU(num_inputs, num_hiddens, num_layers, dropout=dropout)

    # --- 10.3 deep RNNs, 10.4 bidirectional RNNs -------------------------------------------
    class StackedRNNScratch(nn.Module):
        def __init__(self, num_inputs, num_hiddens, num_layers, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
            self.num_layers, self.sigma = num_layers, sigma
            self.rnns = nn.Sequential(*[RNNScratch(
                num_inputs if i == 0 else num_hiddens, num_hiddens, sigma)
                for i in range(num_layers)])

        def forward(self, inputs, Hs=None):
            outputs = inputs
            if Hs is None:
                Hs = [None] * self.num_layers
            for i in range(self.num_layers):
                outputs, Hs[i] = self.rnns[i](outputs, Hs[i])
                outputs = torch.stack(outputs, 0)
            return outputs, Hs

    class BiRNNScratch(nn.Module):
        def __init__(self, num_inputs, num_hiddens, sigma=0.01):
            super().__init__()
            self.num_inputs, self.num_hiddens, self.sigma = num_inputs, num_hiddens, sigma
            self.f_rnn = RNNScratch(num_inputs, num_hiddens, sigma)
            self.b_rnn = RNNScratch(num_inputs, num_hiddens, sigma)
            self.num_hiddens *= 2  # The output dimension will be doubled

        def forward(self, inputs, Hs=None):
            f_H, b_H = Hs if Hs is not None else (None, None)
            f_outputs, f_H = self.f_rnn(inputs, f_H)
            b_outputs, b_H = self.b_rnn(reversed(inputs), b_H)
            outputs = [torch.cat((f, b), -1) for f, b in zip(
                f_outputs, reversed(b_outputs))]
            return outputs, (f_H, b_H)

    class BiGRU(RNN):
        def __init__(self, num_inputs, num_hiddens):
            nn.Module.__init__(self)
            self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
            self.rnn = nn.GRU(num_inputs, num_hiddens, bidirectional=True)
            self.num_hiddens *= 2

    # --- 10.6 encoder-decoder, 10.7 sequence to sequence ----------------------------------
    class EncoderDecoder(Classifier):
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder = encoder
            self.decoder = decoder

        def forward(self, enc_X, dec_X, *args):
            enc_all_outputs = self.encoder(enc_X, *args)
            dec_state = self.decoder.init_state(enc_all_outputs, *args)
            # Return decoder output only
            return self.decoder(dec_X, dec_state)[0]

        def predict_step(self, batch, device, num_steps, save_attention_weights=False):
            batch = [a.to(device) for a in batch]
            src, tgt, src_valid_len, _ = batch
            enc_all_outputs = self.encoder(src, src_valid_len)
            dec_state = self.decoder.init_state(enc_all_outputs, src_valid_len)
            outputs, attention_weights = [tgt[:, 0].unsqueeze(1), ], []
            for _ in range(num_steps):
                Y, dec_state = self.decoder(outputs[-1], dec_state)
                outputs.append(Y.argmax(2))
            return torch.cat(outputs[1:], 1), attention_weights

    def init_seq2seq(module):
        if type(module) == nn.Linear:  # noqa: E721 - the book's check
            nn.init.xavier_uniform_(module.weight)
        if type(module) == nn.GRU:  # noqa: E721
            for param in module._flat_weights_names:
                if "weight" in param:
                    nn.init.xavier_uniform_(module._parameters[param])

    class Seq2SeqEncoder(nn.Module):
        def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embed_size)
            self.rnn = GRU(embed_size, num_hiddens, num_layers, dropout)
            self.apply(init_seq2seq)

        def forward(self, X, *args):
            # X shape: (batch_size, num_steps)
            embs = self.embedding(X.t().type(torch.int64))
            # embs shape: (num_steps, batch_size, embed_size)
            outputs, state = self.rnn(embs)
            return outputs, state

    class Seq2SeqDecoder(nn.Module):
        def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embed_size)
            self.rnn = GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout)
            self.dense = nn.LazyLinear(vocab_size)
            self.apply(init_seq2seq)

        def init_state(self, enc_all_outputs, *args):
            return enc_all_outputs

        def forward(self, X, state):
            # embs shape: (num_steps, batch_size, embed_size)
            embs = self.embedding(X.t().type(torch.int32))
            enc_output, hidden_state = state
            # context shape: (batch_size, num_hiddens)
            context = enc_output[-1]
            # Broadcast context to (num_steps, batch_size, num_hiddens)
            context = context.repeat(embs.shape[0], 1, 1)
            # Concat at the feature dimension
            embs_and_context = torch.cat((embs, context), -1)
            outputs, hidden_state = self.rnn(embs_and_context, hidden_state)
            outputs = self.dense(outputs).swapaxes(0, 1)
            return outputs, [enc_output, hidden_state]

    class Seq2Seq(EncoderDecoder):
        def __init__(self, encoder, decoder, tgt_pad, lr):
            super().__init__(encoder, decoder)
            self.tgt_pad, self.lr = tgt_pad, lr

        def loss(self, Y_hat, Y):
            l = super().loss(Y_hat, Y, averaged=False)  # noqa: E741
            mask = (Y.reshape(-1) != self.tgt_pad).type(torch.float32)
            return (l * mask).sum() / mask.sum()

        def configure_optimizers(self):
            # Adam optimizer is used here
            return torch.optim.Adam(self.parameters(), lr=self.lr)

    return types.SimpleNamespace(**locals())


# --- the comparison -------------------------------------------------------------------

def as_lib(lib, array, device=None):
    return lib.tensor(array) if device is None else lib.tensor(array, device=device)


def host(t):
    return t.detach().cpu().numpy()


def close(got, want, what, rtol=RTOL, atol=ATOL):
    assert tuple(got.shape) == tuple(want.shape), what
    assert str(got.dtype).removeprefix("torch.") == str(want.dtype).removeprefix("torch."), what
    np.testing.assert_allclose(host(got), host(want), rtol=rtol, atol=atol, err_msg=what)


def flat(value):
    """Every tensor in a result (a tensor, or lists and tuples of them), in order."""
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in flat(item)]
    return [value]


def built_twins(build, materialise=None):
    """``build(lib)`` in both libraries; flambeau's model gets torch's weights (after a
    first forward by ``materialise(lib, model)`` that materialises lazy layers)."""
    built = {lib: build(lib) for lib in (flambeau, torch)}
    if materialise is not None:
        for lib, model in built.items():
            with lib.no_grad():
                materialise(lib, model)
    state = {k: flambeau.tensor(host(v)) for k, v in built[torch].state_dict().items()}
    built[flambeau].load_state_dict(state)
    return built[flambeau], built[torch]


def twins(name, *args, materialise=None, **kwargs):
    """The book's model ``name`` in both libraries, with torch's weights."""
    return built_twins(lambda lib: getattr(book(lib), name)(*args, **kwargs), materialise)


def named(model):
    """The parameters by name (by position where the book overrides ``parameters()``; the
    linear regression from scratch keeps plain tensors ``w`` and ``b``)."""
    return (dict(model.named_parameters()) or dict(enumerate(model.parameters()))
            or {"w": model.w, "b": model.b})


def train_step(lib, model, inputs, target, clip=0.0, optimizer=None, device=None):
    """``Trainer.fit_epoch`` on one batch (on ``device``, as ``prepare_model`` and
    ``prepare_batch`` move them): loss, backward, clipping, one optimizer step. Returns
    the output, the loss, the gradients (after clipping) and the parameters."""
    if device is not None:
        model.to(device)
    model.train()
    out = model(*[as_lib(lib, a, device) for a in inputs])
    loss = model.loss(out, as_lib(lib, target, device))
    optim = optimizer(model) if optimizer else model.configure_optimizers()
    optim.zero_grad()
    with lib.no_grad():
        loss.backward()
        if clip > 0:
            book(lib).clip_gradients(clip, model)
        grads = {k: None if p.grad is None else p.grad.clone() for k, p in named(model).items()}
        optim.step()
    params = {k: p.detach().clone() for k, p in named(model).items()}
    return out, loss, grads, params


def compare_training(f_model, t_model, inputs, target, clip=0.0, optimizer=None,
                     rtol=RTOL, atol=ATOL, device=None):
    """One training step of each model (flambeau's on ``device``), compared."""
    got = train_step(flambeau, f_model, inputs, target, clip, optimizer, device)
    want = train_step(torch, t_model, inputs, target, clip, optimizer)
    close(got[0], want[0], "output", rtol, atol)
    close(got[1], want[1], "loss", rtol, atol)
    assert list(got[2]) == list(want[2]) and want[2], "parameter names"
    for name in want[2]:
        if want[2][name] is None:  # e.g. behind a dropout with p=1
            assert got[2][name] is None, f"{name} got a gradient, torch gives none"
        else:
            close(got[2][name], want[2][name], f"gradient of {name}", rtol, atol)
        close(got[3][name], want[3][name], f"{name} after the step", rtol, atol)
    return got, want


def configured_once():
    """An ``optimizer`` argument for :func:`compare_training` over several steps: each
    model's ``configure_optimizers()`` once, as ``Trainer.fit`` calls it (Adam and
    momentum keep state between steps)."""
    optimizers = {}
    return lambda model: optimizers.setdefault(id(model), model.configure_optimizers())


def images(n=4, shape=(1, 4, 4)):
    return _rng.standard_normal((n, *shape)).astype(np.float32)


def labels(n=4, classes=5):
    return _rng.integers(0, classes, n).astype(np.int64)


def tokens(*shape):
    return _rng.integers(0, VOCAB, shape).astype(np.int64)


# --- chapter 3: linear regression -------------------------------------------------------

def test_linear_regression_from_scratch_with_the_utility_functions():
    true_w, true_b, batch_size, lr = np.array([2, -3.4], np.float32), 4.2, 10, 0.03
    X = _rng.standard_normal((30, 2)).astype(np.float32)
    y = (X @ true_w + true_b + _rng.normal(0, 0.01, 30)).astype(np.float32).reshape(-1, 1)
    w0 = _rng.normal(0, 0.01, (2, 1)).astype(np.float32)
    seen = {}
    for lib in (flambeau, torch):
        B = book(lib)
        w = lib.normal(0, 0.01, size=(2, 1), requires_grad=True)
        b = lib.zeros(1, requires_grad=True)
        assert w.requires_grad and tuple(w.shape) == (2, 1)
        with lib.no_grad():
            w.copy_(lib.tensor(w0))
        net, loss = B.linreg, B.squared_loss
        steps = []
        for i in range(0, 30, batch_size):
            Xb, yb = lib.tensor(X[i:i + batch_size]), lib.tensor(y[i:i + batch_size])
            l = loss(net(Xb, w, b), yb)  # noqa: E741
            l.sum().backward()
            grads = (w.grad.clone(), b.grad.clone())
            B.sgd([w, b], lr, batch_size)
            assert not w.grad.abs().sum().item() and not b.grad.abs().sum().item()
            steps.append((l, *grads, w.detach().clone(), b.detach().clone()))
        seen[lib] = steps
    for step, (got, want) in enumerate(zip(seen[flambeau], seen[torch])):
        for what, g, t in zip(("loss", "w.grad", "b.grad", "w", "b"), got, want):
            close(g, t, f"step {step}: {what}")


@pytest.mark.parametrize("name, args", [("LinearRegressionScratch", (3, 0.1)),
                                        ("WeightDecayScratch", (3, 3.0, 0.1))])
def test_linear_regression_scratch_classes_with_the_book_sgd(name, args):
    X, y = _rng.standard_normal((8, 3)).astype(np.float32), images(8, (1,))
    f_model, t_model = (getattr(book(lib), name)(*args, sigma=0.5) for lib in (flambeau,
                                                                               torch))
    with flambeau.no_grad():
        f_model.w.copy_(flambeau.tensor(host(t_model.w)))
    for _ in range(3):  # the book's SGD keeps no state: zero_grad, backward, step
        compare_training(f_model, t_model, [X], y)


def test_concise_linear_regression_initialises_lazy_weights_through_data():
    X, y = _rng.standard_normal((16, 2)).astype(np.float32), images(16, (1,))
    f_model, t_model = twins("LinearRegression", 0.03,
                             materialise=lambda lib, m: m(lib.zeros(1, 2)))
    fresh = book(flambeau).LinearRegression(0.03)
    fresh(flambeau.zeros(1, 2))
    # Unlike PyTorch (which discards them), flambeau applies .data initialisers at
    # materialisation: N(0, 0.01) weights, zero bias.
    assert fresh.net.bias.item() == 0 and fresh.net.weight.abs().max().item() < 0.06
    compare_training(f_model, t_model, [X], y)


def test_concise_weight_decay_on_the_weight_group_only():
    X, y = _rng.standard_normal((16, 2)).astype(np.float32), images(16, (1,))
    f_model, t_model = twins("WeightDecay", 3.0, 0.03,
                             materialise=lambda lib, m: m(lib.zeros(1, 2)))
    for _ in range(3):
        compare_training(f_model, t_model, [X], y)
    assert [g["weight_decay"] for g in f_model.configure_optimizers().param_groups] == [3, 0]


# --- chapter 4: softmax regression ------------------------------------------------------

def test_softmax_regression_from_scratch():
    X, y = images(6), labels(6)
    f_model, t_model = (book(lib).SoftmaxRegressionScratch(16, 5, lr=0.1)
                        for lib in (flambeau, torch))
    W = host(t_model.W) * 30  # the book's 0.01 leaves every output within atol of 1/5
    for lib, model in ((flambeau, f_model), (torch, t_model)):
        with lib.no_grad():
            model.W.copy_(lib.tensor(W))
    got, want = compare_training(f_model, t_model, [X], y)
    np.testing.assert_allclose(host(got[0]).sum(1), 1, rtol=1e-6)
    for model, lib in ((f_model, flambeau), (t_model, torch)):
        acc = model.accuracy(model(lib.tensor(X)), lib.tensor(y))
        assert acc.dtype == lib.float32
    assert f_model.accuracy(got[0], flambeau.tensor(y)).item() == pytest.approx(
        t_model.accuracy(want[0], torch.tensor(y)).item())


def test_concise_softmax_regression():
    X, y = images(6), labels(6)
    f_model, t_model = twins("SoftmaxRegression", 5, lr=0.1,
                             materialise=lambda lib, m: m(lib.zeros(1, 1, 4, 4)))
    got, want = compare_training(f_model, t_model, [X], y)
    per_example = [m.loss(out, lib.tensor(y), averaged=False) for m, out, lib in (
        (f_model, got[0], flambeau), (t_model, want[0], torch))]
    close(*per_example, "unaveraged loss")
    close(f_model.accuracy(got[0], flambeau.tensor(y), averaged=False),
          t_model.accuracy(want[0], torch.tensor(y), averaged=False), "accuracy")


# --- chapter 5: MLPs and dropout --------------------------------------------------------

def test_mlp_from_scratch_and_concise():
    X, y = images(6), labels(6)
    f_model, t_model = twins("MLPScratch", 16, 5, 12, lr=0.1, sigma=0.5)
    compare_training(f_model, t_model, [X], y)
    f_model, t_model = twins("MLP", 5, 12, lr=0.1,
                             materialise=lambda lib, m: m(lib.zeros(1, 1, 4, 4)))
    compare_training(f_model, t_model, [X], y)


DROPOUT_MLPS = ["DropoutMLPScratch", "DropoutMLP"]


def dropout_twins(name, p1, p2):
    return twins(name, 5, 12, 10, p1, p2, lr=0.1,
                 materialise=lambda lib, m: m(lib.zeros(1, 1, 4, 4)))


@pytest.mark.parametrize("name", DROPOUT_MLPS)
@pytest.mark.parametrize("p", [0.0, 1.0])
def test_dropout_mlp_in_training_with_p_zero_or_one(name, p):
    f_model, t_model = dropout_twins(name, p, p)
    compare_training(f_model, t_model, [images(6)], labels(6))


@pytest.mark.parametrize("name", DROPOUT_MLPS)
def test_dropout_mlp_in_eval_mode(name):
    f_model, t_model = dropout_twins(name, 0.5, 0.3)
    X = images(6)
    for model in (f_model, t_model):
        model.eval()
    close(f_model(flambeau.tensor(X)), t_model(torch.tensor(X)), "eval output")


def test_dropout_keeps_scaled_entries_and_routes_gradients_only_through_them():
    x = flambeau.tensor(_rng.uniform(0.5, 1.5, (64, 50)).astype(np.float32),
                        requires_grad=True)
    for drop in (lambda t: flambeau.nn.Dropout(0.3)(t),
                 lambda t: book(flambeau).dropout_layer(t, 0.3)):
        x.grad = None
        y = drop(x)
        w = flambeau.tensor(_rng.standard_normal((64, 50)).astype(np.float32))
        (y * w).sum().backward()
        out, kept = host(y), host(y) != 0
        assert 0.6 < kept.mean() < 0.8
        np.testing.assert_allclose(out[kept], host(x)[kept] / 0.7, rtol=1e-6)
        grad = host(x.grad)
        assert (grad[~kept] == 0).all()
        np.testing.assert_allclose(grad[kept], host(w)[kept] / 0.7, rtol=1e-6)


@pytest.mark.parametrize("p, training", [(0.4, True), (1.0, True), (0.0, True),
                                         (0.4, False)])
def test_dropout_takes_pytorchs_inplace_argument(p, training):
    """``F.dropout(x, p, training, inplace)`` (PyTorch's signature) and
    ``nn.Dropout(inplace=True)`` write into ``x`` and return it."""
    want = ({1.0} if not training or p == 0 else {0.0} if p == 1 else
            {0.0, float(np.float32(1 / (1 - p)))})
    for lib in (flambeau, torch):
        for drop in (lambda x, lib=lib: lib.nn.functional.dropout(x, p, training, True),
                     lambda x, lib=lib: lib.nn.Dropout(p, inplace=True).train(training)(x)):
            x = lib.ones(400)
            out = drop(x)
            assert out is x and set(x.tolist()) == want
            leaf = lib.ones(3, requires_grad=True)
            if training and p > 0:
                with pytest.raises(RuntimeError, match="leaf"):  # flambeau's AutogradError too
                    drop(leaf)
    h = flambeau.ones(5, requires_grad=True) * 2
    flambeau.nn.functional.dropout(h, 0.5, True, True).sum().backward()  # the graph follows


def test_dropout_mlp_in_training_matches_torch_with_flambeaus_masks():
    """In train mode the masks are flambeau's (its RNG is not torch's); torch replays them
    through forward hooks on its Dropout layers, and the whole step must agree."""
    f_model, t_model = dropout_twins("DropoutMLP", 0.5, 0.3)
    masks = []
    for layer in f_model.net:
        if isinstance(layer, flambeau.nn.Dropout):
            layer.register_forward_hook(
                lambda m, inputs, out: masks.append((host(out) != 0, m.p)))
    t_drops = [m for m in t_model.net if isinstance(m, torch.nn.Dropout)]
    for i, layer in enumerate(t_drops):
        def replay(module, inputs, out, i=i):
            kept, p = masks[i]
            return inputs[0] * torch.tensor(kept.astype(np.float32)) / (1 - p)
        layer.register_forward_hook(replay)
    compare_training(f_model, t_model, [images(6)], labels(6))
    assert len(masks) == 2 and all(0 < kept.mean() < 1 for kept, _ in masks)


def test_the_activation_function_cells():
    """5.1's plots: each activation's gradient by ``y.backward(ones_like(x))``."""
    seen = []
    for lib in (flambeau, torch):
        x = lib.arange(-8.0, 8.0, 0.1, requires_grad=True)
        grads = []
        for i, fn in enumerate((lib.relu, lib.sigmoid, lib.tanh)):
            y = fn(x)
            if i:
                x.grad.data.zero_()
            y.backward(lib.ones_like(x), retain_graph=True)
            grads.append(x.grad.clone())
        seen.append((x, grads))
    (f_x, f_grads), (t_x, t_grads) = seen
    # torch's arange gives 4.4e-16 for the 81st value (-8 + 80 * 0.1 with a fused
    # multiply-add), flambeau the exactly rounded 0; relu's gradient differs there only.
    close(f_x, t_x, "x", rtol=0, atol=1e-6)
    away = np.abs(host(t_x)) > 1e-6
    close(f_grads[0][away], t_grads[0][away], "relu gradient")
    close(f_grads[1], t_grads[1], "sigmoid gradient")
    close(f_grads[2], t_grads[2], "tanh gradient")


# --- chapter 9.1: an autoregressive model -----------------------------------------------

def test_autoregressive_one_step_multistep_and_k_step_predictions():
    T, tau, num_train = 60, 4, 40
    x = (np.sin(0.01 * np.arange(1, T + 1)) + _rng.standard_normal(T) * 0.2).astype(
        np.float32)
    f_model, t_model = twins("LinearRegression", 0.01,
                             materialise=lambda lib, m: m(lib.zeros(1, tau)))
    seen = []
    for lib, model in ((flambeau, f_model), (torch, t_model)):
        data_x = lib.tensor(x)
        features = [data_x[i: T - tau + i] for i in range(tau)]
        features = lib.stack(features, 1)
        labels = data_x[tau:].reshape((-1, 1))
        onestep_preds = model(features).detach()
        multistep_preds = lib.zeros(T)
        multistep_preds[:] = data_x
        for i in range(num_train + tau, T):
            multistep_preds[i] = model(multistep_preds[i - tau:i].reshape((1, -1)))
        assert multistep_preds.requires_grad

        def k_step_pred(k, data_x=data_x, model=model, lib=lib):
            features = []
            for i in range(tau):
                features.append(data_x[i: i + T - tau - k + 1])
            # The (i+tau)-th element stores the (i+1)-step-ahead predictions
            for i in range(k):
                preds = model(lib.stack(features[i: i + tau], 1))
                features.append(preds.reshape(-1))
            return features[tau:]

        seen.append([labels, onestep_preds, multistep_preds.detach(), *k_step_pred(16)])
    for i, (got, want) in enumerate(zip(*seen)):
        close(got, want, f"prediction {i}")


# --- chapters 9-10: recurrent networks --------------------------------------------------

class Vocab:
    """Vocabulary for text (9.2; it uses no tensors)."""

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        # Flatten a 2D list if needed
        if tokens and isinstance(tokens[0], list):
            tokens = [token for line in tokens for token in line]
        # Count token frequencies
        counter = collections.Counter(tokens)
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        # The list of unique tokens
        self.idx_to_token = sorted({"<unk>", *reserved_tokens, *[
            token for token, freq in self.token_freqs if freq >= min_freq]})
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        if hasattr(indices, "__len__") and len(indices) > 1:
            return [self.idx_to_token[int(index)] for index in indices]
        return self.idx_to_token[indices]

    @property
    def unk(self):  # Index for the unknown token
        return self.token_to_idx["<unk>"]


TEXT = """The Time Traveller (for so it will be convenient to speak of him) was expounding a
recondite matter to us. His grey eyes shone and twinkled, and his usually pale face was
flushed and animated. The fire burned brightly, and the soft radiance of the incandescent
lights in the lilies of silver caught the bubbles that flashed and passed in our glasses."""

SIGMA = 0.5  # the book's 0.01 leaves every output within atol of zero
# (name, args): the recurrent part; the language model wraps it.
SCRATCH_RNNS = {
    "rnn_scratch": ("RNNScratch", (VOCAB, HIDDEN, SIGMA)),
    "gru_scratch": ("GRUScratch", (VOCAB, HIDDEN, SIGMA)),
    "lstm_scratch": ("LSTMScratch", (VOCAB, HIDDEN, SIGMA)),
    "stacked_rnn_scratch": ("StackedRNNScratch", (VOCAB, HIDDEN, 2, SIGMA)),
    "bi_rnn_scratch": ("BiRNNScratch", (VOCAB, HIDDEN, SIGMA)),
}
CONCISE_RNNS = {
    "rnn": ("RNN", (VOCAB, HIDDEN)),
    "gru": ("GRU", (VOCAB, HIDDEN)),
    "lstm": ("LSTM", (VOCAB, HIDDEN)),
    "deep_gru": ("GRU", (VOCAB, HIDDEN, 2)),
    "bi_gru": ("BiGRU", (VOCAB, HIDDEN)),
}


def language_models(case):
    """Torch's and flambeau's language model (with torch's weights) for ``case``."""
    scratch = case in SCRATCH_RNNS
    name, args = SCRATCH_RNNS[case] if scratch else CONCISE_RNNS[case]

    def build(lib):  # the scratch output layer is drawn with the rnn's sigma
        B = book(lib)
        return (B.RNNLMScratch if scratch else B.RNNLM)(getattr(B, name)(*args), VOCAB, lr=1)

    return built_twins(build, lambda lib, m: m(lib.zeros((1, 2), dtype=lib.int64)))


@pytest.mark.parametrize("case", [*SCRATCH_RNNS, *CONCISE_RNNS])
def test_recurrent_network_outputs_and_states(case):
    f_model, t_model = language_models(case)
    X = tokens(BATCH, STEPS)
    results = []
    for lib, model in ((flambeau, f_model), (torch, t_model)):
        outputs, state = model.rnn(model.one_hot(lib.tensor(X)))
        results.append(flat([outputs, state]))
    assert len(results[0]) == len(results[1])
    for i, (got, want) in enumerate(zip(*results)):
        close(got, want, f"output or state {i}")


@pytest.mark.parametrize("case", [*SCRATCH_RNNS, *CONCISE_RNNS])
def test_language_model_training_step_with_gradient_clipping(case):
    f_model, t_model = language_models(case)
    X, Y = tokens(BATCH, STEPS), tokens(BATCH, STEPS)
    clip = 0.1
    loss = t_model.loss(t_model(torch.tensor(X)), torch.tensor(Y))
    loss.backward()
    norm = sum((p.grad ** 2).sum() for p in t_model.parameters()).sqrt().item()
    t_model.zero_grad(set_to_none=True)
    assert norm > clip, "the test must clip"
    compare_training(f_model, t_model, [X], Y, clip=clip)


def test_a_few_training_steps_of_the_gru_language_model():
    f_model, t_model = language_models("deep_gru")
    for _ in range(3):
        compare_training(f_model, t_model, [tokens(BATCH, STEPS)], tokens(BATCH, STEPS),
                         clip=1.0)


def test_an_epoch_on_the_time_machine_data():
    """9.3's data pipeline (Vocab, TensorDataset, DataLoader) feeding 10.3's deep GRU
    language model for an epoch of clipped SGD, and 9.5's perplexity and ``to_tokens``."""
    data = {lib: book(lib).TimeMachine(TEXT, batch_size=16, num_steps=8, num_train=200,
                                       num_val=120) for lib in (flambeau, torch)}
    f_data, t_data = data.values()
    assert f_data.vocab.idx_to_token == t_data.vocab.idx_to_token
    assert f_data.X.tolist() == t_data.X.tolist() and f_data.Y.tolist() == t_data.Y.tolist()
    size = len(t_data.vocab)
    f_model, t_model = built_twins(
        lambda lib: book(lib).RNNLM(book(lib).GRU(size, 16, num_layers=2), size, lr=1),
        lambda lib, model: model(data[lib].X[:1]))
    loaders = [f_data.val_dataloader(), t_data.val_dataloader()]  # not shuffled
    sgd = configured_once()
    batches = 0
    for (f_X, _), (t_X, t_Y) in zip(*loaders):
        assert f_X.tolist() == t_X.tolist()
        got, want = compare_training(f_model, t_model, [host(t_X)], host(t_Y), clip=1.0,
                                     optimizer=sgd)
        batches += 1
    assert batches == 8
    close(flambeau.exp(got[1]), torch.exp(want[1]), "perplexity")
    tokens_ = [f_data.vocab.to_tokens(f_data.X[0]), t_data.vocab.to_tokens(t_data.X[0])]
    assert tokens_[0] == tokens_[1] and len(tokens_[0]) == 8


def test_clipping_with_an_initial_state_passed_in():
    f_model, t_model = language_models("lstm_scratch")
    X, Y = tokens(BATCH, STEPS), tokens(BATCH, STEPS)
    seen = []
    for lib, model in ((flambeau, f_model), (torch, t_model)):
        state = (lib.zeros(BATCH, HIDDEN), lib.zeros(BATCH, HIDDEN))
        l = model.loss(model(lib.tensor(X), state), lib.tensor(Y))  # noqa: E741
        l.backward()
        book(lib).clip_gradients(0.1, model)
        seen.append([p.grad for p in model.parameters()])
    for got, want in zip(*seen):
        close(got, want, "clipped gradient")
    total = np.sqrt(sum((host(g).astype(np.float64) ** 2).sum() for g in seen[0]))
    assert total == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("case", [*SCRATCH_RNNS, "rnn", "lstm", "deep_gru", "bi_gru"])
def test_language_model_predict(case):
    f_model, t_model = language_models(case)
    vocab = Vocab(list("abcdef"))  # <unk> and six letters: VOCAB tokens
    got = f_model.predict("abc", 12, vocab)
    want = t_model.predict("abc", 12, vocab)
    assert got == want and got.startswith("abc")


@pytest.mark.parametrize("case", ["gru_scratch", "stacked_rnn_scratch", "lstm", "bi_gru"])
def test_language_model_on_every_device(case, device):
    """The book moves the model and each batch to the GPU (Trainer with num_gpus=1) and
    predicts with ``device=d2l.try_gpu()``."""
    f_model, t_model = language_models(case)
    compare_training(f_model, t_model, [tokens(BATCH, STEPS)], tokens(BATCH, STEPS),
                     clip=0.1, device=device)
    vocab = Vocab(list("abcdef"))
    assert f_model.predict("ab", 6, vocab, device) == t_model.predict("ab", 6, vocab)


def test_bidirectional_scratch_matches_the_bidirectional_layer():
    """BiRNNScratch with nn.RNN(bidirectional=True)'s weights computes the same thing."""
    f_bi, t_bi = (book(lib).BiRNNScratch(VOCAB, HIDDEN, SIGMA) for lib in (flambeau, torch))
    layer = torch.nn.RNN(VOCAB, HIDDEN, bidirectional=True)
    weights = {}
    for direction, suffix in (("f_rnn", ""), ("b_rnn", "_reverse")):
        get = dict(layer.named_parameters()).__getitem__
        weights[f"{direction}.W_xh"] = host(get("weight_ih_l0" + suffix)).T
        weights[f"{direction}.W_hh"] = host(get("weight_hh_l0" + suffix)).T
        weights[f"{direction}.b_h"] = host(get("bias_ih_l0" + suffix) + get(
            "bias_hh_l0" + suffix))
    f_bi.load_state_dict({k: flambeau.tensor(np.ascontiguousarray(v))
                          for k, v in weights.items()})
    x = _rng.standard_normal((STEPS, BATCH, VOCAB)).astype(np.float32)
    outputs, (f_H, b_H) = f_bi(flambeau.tensor(x))
    want, h_n = layer(torch.tensor(x))
    close(flambeau.stack(outputs), want, "outputs")
    close(flambeau.stack([f_H, b_H]), h_n, "final states")
    assert t_bi.num_hiddens == 2 * HIDDEN


def test_dropout_between_gru_layers_matches_torch_with_flambeaus_mask(monkeypatch):
    """10.3's ``GRU(..., num_layers=2, dropout)`` in train mode: flambeau's mask between
    the layers, recorded, replayed in torch between two one-layer GRUs holding the same
    weights; outputs, final states and every gradient agree."""
    masks = []
    dropout = flambeau.nn.functional.dropout

    def recording(x, p=0.5, training=True, inplace=False):
        out = dropout(x, p, training, inplace)
        masks.append((host(out) != 0, p))
        return out

    monkeypatch.setattr(flambeau.nn.functional, "dropout", recording)
    f_model = book(flambeau).GRU(VOCAB, HIDDEN, num_layers=2, dropout=0.3)
    layers = [torch.nn.GRU(VOCAB, HIDDEN), torch.nn.GRU(HIDDEN, HIDDEN)]
    f_model.rnn.load_state_dict({
        name.replace("l0", f"l{i}"): flambeau.tensor(host(p))
        for i, layer in enumerate(layers) for name, p in layer.named_parameters()})
    x = _rng.standard_normal((STEPS, BATCH, VOCAB)).astype(np.float32)
    f_x, t_x = flambeau.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    f_out, f_h = f_model(f_x)
    assert len(masks) == 1 and 0 < masks[0][0].mean() < 1
    kept, p = masks[0]
    middle, h0 = layers[0](t_x)
    t_out, h1 = layers[1](middle * torch.tensor(kept.astype(np.float32)) / (1 - p))
    t_h = torch.stack([h0[0], h1[0]])
    weights = np.cos(np.arange(t_out.numel())).reshape(t_out.shape).astype(np.float32)
    (f_out * flambeau.tensor(weights)).sum().backward()
    (t_out * torch.tensor(weights)).sum().backward()
    close(f_out, t_out, "output")
    close(f_h, t_h, "final states")
    close(f_x.grad, t_x.grad, "input gradient")
    f_grads = dict(f_model.rnn.named_parameters())
    for i, layer in enumerate(layers):
        for name, param in layer.named_parameters():
            close(f_grads[name.replace("l0", f"l{i}")].grad, param.grad, name + f" layer {i}")


# --- chapter 10: the GRU encoder-decoder ------------------------------------------------

def seq2seq_twins(dropout=0):
    def materialise(lib, model):
        model(lib.zeros((1, 2), dtype=lib.int64), lib.zeros((1, 2), dtype=lib.int64))

    def build(lib):
        B = book(lib)
        encoder = B.Seq2SeqEncoder(VOCAB, 6, HIDDEN, num_layers=2, dropout=dropout)
        decoder = B.Seq2SeqDecoder(VOCAB, 6, HIDDEN, num_layers=2, dropout=dropout)
        return B.Seq2Seq(encoder, decoder, tgt_pad=0, lr=0.005)

    return built_twins(build, materialise)


def test_seq2seq_encoder_outputs_and_state():
    f_model, t_model = seq2seq_twins()
    X = tokens(BATCH, STEPS)
    got = f_model.encoder(flambeau.tensor(X))
    want = t_model.encoder(torch.tensor(X))
    close(got[0], want[0], "encoder outputs")
    close(got[1], want[1], "encoder state")
    assert tuple(got[1].shape) == (2, BATCH, HIDDEN)


@pytest.mark.parametrize("dropout", [0.0, 1.0])  # dropout between the GRU layers
def test_seq2seq_training_steps_with_the_masked_loss_and_adam(dropout):
    f_model, t_model = seq2seq_twins(dropout)
    src, tgt = tokens(BATCH, STEPS), tokens(BATCH, STEPS)
    tgt[:, -2:] = 0  # padding the loss masks out
    label = np.roll(tgt, -1, axis=1)
    adam = configured_once()
    for _ in range(3):
        compare_training(f_model, t_model, [src, tgt], label, clip=1.0, optimizer=adam)


def test_seq2seq_with_dropout_in_eval_mode_and_the_valid_lengths():
    f_model, t_model = seq2seq_twins(dropout=0.2)
    src, tgt = tokens(BATCH, STEPS), tokens(BATCH, STEPS)
    src[0, -2:] = 0
    seen = []
    for lib, model in ((flambeau, f_model), (torch, t_model)):
        model.eval()
        array = lib.tensor(src)
        valid_len = (array != 0).type(lib.int32).sum(1)  # 10.5's reduce_sum(astype(...))
        seen.append([model(array, lib.tensor(tgt), valid_len), valid_len])
    close(*[s[0] for s in seen], "eval output")
    assert seen[0][1].tolist() == seen[1][1].tolist()
    assert str(seen[0][1].dtype) == "int64" and seen[1][1].dtype == torch.int64


def test_seq2seq_on_every_device_and_its_predict_step(device):
    f_model, t_model = seq2seq_twins()
    src, tgt = tokens(BATCH, STEPS), tokens(BATCH, STEPS)
    compare_training(f_model, t_model, [src, tgt], np.roll(tgt, -1, axis=1), clip=1.0,
                     device=device)
    valid = np.full(BATCH, STEPS)
    batches = [[lib.tensor(a) for a in (src, tgt, valid, tgt)] for lib in (flambeau, torch)]
    got, _ = f_model.predict_step(batches[0], device, 6)
    want, _ = t_model.predict_step(batches[1], "cpu", 6)
    assert got.device == device
    assert got.tolist() == want.tolist() and tuple(got.shape) == (BATCH, 6)
