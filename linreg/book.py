"""D2L §3.2's training script as the text writes it: the plain loop the benchmarks measure the project against.

    features, labels = synthetic_data(true_w, 4.2, 1000)
    w, b = train(features, labels, batch_size=10, num_epochs=3)   # prints "epoch 1, loss 0.036131", ...

Its functions (synthetic_data, linreg, squared_loss, sgd) are linreg.functions; this adds the text's
`data_iter`, a shuffled Python list cut into batches, and its loop. `tensor_order=True` takes each epoch's
order from `torch.randperm` instead (the benchmark's `book-tensor` path). Used by `linreg-benchmark`, in
its loop table and in its whole processes. tests/test_oracle.py keeps a transcription of its own, so that
the proof of fidelity leans on nothing here.
"""

import random

import torch

from linreg.functions import linreg, sgd, squared_loss


def data_iter(batch_size, features, labels):
    """The text's data_iter: every example once per call, in a fresh random order, the last batch short."""
    num_examples = len(features)
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i : min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]


def tensor_data_iter(batch_size, features, labels):
    """The same with the order made by torch.randperm on the data's device, sliced per batch."""
    indices = torch.randperm(len(features), device=features.device)
    for i in range(0, len(features), batch_size):
        batch_indices = indices[i : i + batch_size]
        yield features[batch_indices], labels[batch_indices]


def train(features, labels, batch_size: int, num_epochs: int, lr: float = 0.03, tensor_order: bool = False):
    """The text's initialization and loop; prints the whole-set loss after each epoch. Returns (w, b)."""
    w = torch.normal(0, 0.01, size=(features.shape[1], 1), requires_grad=True, device=features.device)
    b = torch.zeros(1, requires_grad=True, device=features.device)
    net, loss = linreg, squared_loss
    batches = tensor_data_iter if tensor_order else data_iter
    for epoch in range(num_epochs):
        for X, y in batches(batch_size, features, labels):
            l = loss(net(X, w, b), y)  # X和y的小批量损失
            l.sum().backward()
            sgd([w, b], lr, batch_size)  # 使用参数的梯度更新参数
        with torch.no_grad():
            train_l = loss(net(features, w, b), labels)
            print(f"epoch {epoch + 1}, loss {float(train_l.mean()):f}")
    return w, b
