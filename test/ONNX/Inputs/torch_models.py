"""PyTorch models exported with torch.onnx.export (opset 17, a dynamic batch
axis), with inputs and PyTorch's outputs for them, for nnc import's round
trip.

    torch_models.py KIND OUT    (KIND: mlp | cnn | lstm | gru | embed | lstm-dynamic)

lstm-dynamic is the LSTM with its sequence length dynamic too, which nnc
import refuses.

Writes OUT/model.onnx, OUT/inputs.npz (the graph's inputs by name) and
OUT/torch.npz (its outputs by name), and prints a line naming them.
"""
import os
import sys

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = x.view(x.size(0), 1, 16, 16)
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
        x = torch.tanh(self.c2(x))
        x = nn.functional.avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(12, 20, batch_first=True)
        self.fc = nn.Linear(20, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(12, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        _, h = self.rnn(x)
        return torch.log_softmax(self.fc(h[0]), dim=-1)


class Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, ids):
        return self.fc(self.norm(self.emb(ids))).sigmoid()


def main(kind, out):
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    model, x = {
        "mlp": (MLP, lambda: torch.rand(6, 64) * 4),
        "cnn": (CNN, lambda: torch.rand(6, 256)),
        "lstm": (LSTM, lambda: torch.randn(6, 7, 12)),
        "gru": (GRU, lambda: torch.randn(6, 7, 12)),
        "embed": (Embed, lambda: torch.randint(0, 30, (6, 5))),
        "lstm-dynamic": (LSTM, lambda: torch.randn(6, 7, 12)),
    }[kind]
    m = model()
    if kind == "cnn":  # running statistics that are not the initial ones
        m.train()
        with torch.no_grad():
            for _ in range(3):
                m(torch.rand(32, 256))
    m.eval()
    x = x()
    with torch.no_grad():
        y = m(x)
    path = os.path.join(out, "model.onnx")
    torch.onnx.export(m, (x,), path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 1: "seq"} if kind == "lstm-dynamic" else {0: "batch"},
                                    "y": {0: "batch"}})
    np.savez(os.path.join(out, "inputs.npz"), x=x.numpy())
    np.savez(os.path.join(out, "torch.npz"), y=y.numpy())
    print(f"exported {kind}: x {list(x.shape)} -> y {list(y.shape)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
