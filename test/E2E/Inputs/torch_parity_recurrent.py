"""PyTorch parity for test/E2E/Inputs/recurrent.nn: nnc's lstm, gru
(bidirectional) and rnn (reverse) against torch.nn.LSTM, GRU and RNN with the
same weights: init CKPT | check CKPT GRADS, as in torch_parity.py.

Gate layouts: nnc stores w_ih [F, G*H] and w_hh [H, G*H], the transposes of
PyTorch's weight_ih_l0 [G*H, F] and weight_hh_l0 [G*H, H], with the gates in
PyTorch's order along G*H (LSTM i, f, g, o; GRU r, z, n); b_ih and b_hh are
PyTorch's bias_ih_l0 and bias_hh_l0. A bidirectional layer's directions are
<instance>.forward.* and <instance>.backward.* (PyTorch's *_l0 and
*_l0_reverse). A reversed rnn is PyTorch's RNN over the time-flipped input."""
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402


def cell_shapes(prefix, f, h, gates):
    return {f"{prefix}.w_ih": (f, gates * h), f"{prefix}.w_hh": (h, gates * h), f"{prefix}.b_ih": (gates * h,),
            f"{prefix}.b_hh": (gates * h,)}


SHAPES = {**cell_shapes("a", 8, 6, 4), **cell_shapes("b.forward", 6, 5, 3), **cell_shapes("b.backward", 6, 5, 3),
          **cell_shapes("c", 10, 4, 1), "logits.w": (4, 10), "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(3)
    write_safetensors(path, {k: (rng.standard_normal(s) * 0.4).astype(np.float32) for k, s in SHAPES.items()})


def load(module, w, prefix, suffix=""):
    for ours, theirs in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                         ("b_hh", "bias_hh_l0")):
        t = w[f"{prefix}.{ours}"]
        setattr(module, theirs + suffix, torch.nn.Parameter(t.T.contiguous() if t.dim() == 2 else t.clone()))


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    lstm = torch.nn.LSTM(8, 6, batch_first=True).double()
    gru = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True).double()
    rnn = torch.nn.RNN(10, 4, batch_first=True).double()
    load(lstm, w, "a")
    load(gru, w, "b.forward")
    load(gru, w, "b.backward", "_reverse")
    load(rnn, w, "c")
    lw = w["logits.w"].clone().requires_grad_(True)
    lb = w["logits.b"].clone().requires_grad_(True)
    a, _ = lstm(x.reshape(-1, 8, 8))
    b, _ = gru(a)
    _, hn = rnn(torch.flip(b, [1]))
    logits = hn[0] @ lw + lb
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()

    def grad_of(module, prefix, suffix=""):
        out = []
        for ours, theirs in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                             ("b_hh", "bias_hh_l0")):
            gr = getattr(module, theirs + suffix).grad
            out.append((f"grad.{prefix}.{ours}", g[f"grad.{prefix}.{ours}"], gr.T.numpy() if gr.dim() == 2 else gr.numpy()))
        return out

    pairs = [("loss", g["loss"], loss.detach().numpy())]
    pairs += grad_of(lstm, "a") + grad_of(gru, "b.forward") + grad_of(gru, "b.backward", "_reverse") + grad_of(rnn, "c")
    pairs += [("grad.logits.w", g["grad.logits.w"], lw.grad.numpy()), ("grad.logits.b", g["grad.logits.b"], lb.grad.numpy())]
    return report(pairs)


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
