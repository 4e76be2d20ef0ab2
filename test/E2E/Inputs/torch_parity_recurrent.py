"""PyTorch parity for test/E2E/Inputs/recurrent.nn: nnc's lstm, gru
(bidirectional) and rnn (reverse) against torch.nn.LSTM, GRU and RNN with the
same weights: init CKPT | check CKPT GRADS, as in parity.py.

Gate layouts: nnc stores w_ih [F, G*H] and w_hh [H, G*H], the transposes of
PyTorch's weight_ih_l0 [G*H, F] and weight_hh_l0 [G*H, H], with the gates in
PyTorch's order along G*H (LSTM i, f, g, o; GRU r, z, n); b_ih and b_hh are
PyTorch's bias_ih_l0 and bias_hh_l0. A bidirectional layer's directions are
<instance>.forward.* and <instance>.backward.* (PyTorch's *_l0 and
*_l0_reverse). A reversed rnn is PyTorch's RNN over the time-flipped input."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402


def cell_shapes(prefix, f, h, gates):
    return {f"{prefix}.w_ih": (f, gates * h), f"{prefix}.w_hh": (h, gates * h), f"{prefix}.b_ih": (gates * h,),
            f"{prefix}.b_hh": (gates * h,)}


SHAPES = {**cell_shapes("a", 8, 6, 4), **cell_shapes("b.forward", 6, 5, 3), **cell_shapes("b.backward", 6, 5, 3),
          **cell_shapes("c", 10, 4, 1), "logits.w": (4, 10), "logits.b": (10,)}

# A cell's tensors: nnc's name, PyTorch's (plus "_reverse" for a backward direction).
CELL = (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0"))


def init(path):
    parity.random_init(path, SHAPES, seed=3, scale=0.4)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads, requires_grad=["logits.w", "logits.b"])
    x, y = parity.batch(g)
    lstm = torch.nn.LSTM(8, 6, batch_first=True).double()
    gru = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True).double()
    rnn = torch.nn.RNN(10, 4, batch_first=True).double()
    # Each nnc instance (or direction): its torch module and parameter suffix.
    cells = {"a": (lstm, ""), "b.forward": (gru, ""), "b.backward": (gru, "_reverse"), "c": (rnn, "")}
    for prefix, (module, suffix) in cells.items():
        for ours, theirs in CELL:
            t = w[f"{prefix}.{ours}"]
            setattr(module, theirs + suffix, torch.nn.Parameter(t.T.contiguous() if t.dim() == 2 else t.clone()))
    a, _ = lstm(x.reshape(-1, 8, 8))
    b, _ = gru(a)
    _, hn = rnn(torch.flip(b, [1]))
    logits = hn[0] @ w["logits.w"] + w["logits.b"]
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    # The reference gradient of a cell tensor is its torch parameter's, back
    # in nnc's layout.
    for prefix, (module, suffix) in cells.items():
        for ours, theirs in CELL:
            gr = getattr(module, theirs + suffix).grad
            w[f"{prefix}.{ours}"].grad = gr.T if gr.dim() == 2 else gr
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
