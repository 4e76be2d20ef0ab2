"""PyTorch parity of GAN training steps (test/GAN/torch-parity-*.test).

  gan_parity.py init pair|gp DIR    write DIR/w0.safetensors (initial weights,
                                    nnc's names and layouts) and the batches
                                    DIR/pair.npz or DIR/gp.npz
  gan_parity.py check pair|gp DIR   compare DIR/w1.safetensors, the weights
                                    `nnc train --load w0 --save w1` ends with,
                                    with the same steps in PyTorch (float64)

pair: a discriminator step (SGD) on batch 1, then a generator step on batch 2
through the updated discriminator; the discriminator's weights must not move
in the generator step. gp: one WGAN-GP critic step on one batch, the penalty's
gradient taken with create_graph=True (only the critic steps: the round's
generator step would need a second batch).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "E2E", "Inputs"))
import parity  # noqa: E402

SHAPES = {"G.h.w": (3, 16), "G.h.b": (16,), "G.out.w": (16, 2), "G.out.b": (2,),
          "D.h.w": (2, 16), "D.h.b": (16,), "D.out.w": (16, 1), "D.out.b": (1,)}
LR = 0.5


def gen(w, z):
    return torch.relu(z @ w["G.h.w"] + w["G.h.b"]) @ w["G.out.w"] + w["G.out.b"]


def critic(w, x):
    return torch.tanh(x @ w["D.h.w"] + w["D.h.b"]) @ w["D.out.w"] + w["D.out.b"]


def bce(logits, target):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def init(kind, d):
    parity.random_init(os.path.join(d, "w0.safetensors"), SHAPES, seed=7, scale=0.6)
    rng = np.random.default_rng(11)
    rows = 64 if kind == "pair" else 32
    arrays = {"x": rng.normal(size=(rows, 2)).astype(np.float32),
              "z": rng.normal(size=(rows, 3)).astype(np.float32)}
    if kind == "gp":
        arrays["e"] = rng.uniform(size=(rows, 1)).astype(np.float32)
    np.savez(os.path.join(d, kind + ".npz"), **arrays)


def sgd(w, loss, names):
    grads = torch.autograd.grad(loss, [w[n] for n in names])
    with torch.no_grad():
        for n, g in zip(names, grads):
            w[n] -= LR * g


def check(kind, d):
    w0 = parity.read_safetensors(os.path.join(d, "w0.safetensors"))
    w1 = parity.read_safetensors(os.path.join(d, "w1.safetensors"))
    data = np.load(os.path.join(d, kind + ".npz"))
    w = {n: torch.tensor(w0[n], dtype=torch.float64, requires_grad=True) for n in SHAPES}
    t = {k: torch.tensor(data[k], dtype=torch.float64) for k in data.files}
    dn = [n for n in SHAPES if n.startswith("D.")]
    gn = [n for n in SHAPES if n.startswith("G.")]
    if kind == "pair":
        x1, z1, x2, z2 = t["x"][:32], t["z"][:32], t["x"][32:], t["z"][32:]
        fake = gen(w, z1)
        d_loss = bce(critic(w, x1), 1.0) + bce(critic(w, fake.detach()), 0.0)
        sgd(w, d_loss, dn)
        d_after = {n: w[n].detach().clone() for n in dn}
        g_loss = bce(critic(w, gen(w, z2)), 1.0)
        sgd(w, g_loss, gn)
        for n in dn:  # the generator step leaves the discriminator alone
            assert torch.equal(w[n].detach(), d_after[n])
    else:
        x, z, e = t["x"], t["z"], t["e"]
        fake = gen(w, z).detach()
        x_hat = (e * x + (1 - e) * fake).requires_grad_(True)
        g = torch.autograd.grad(critic(w, x_hat).sum(), x_hat, create_graph=True)[0]
        gp = ((g.norm(dim=1) - 1) ** 2).mean()
        loss = critic(w, fake).mean() - critic(w, x).mean() + 10 * gp
        print(f"gradient penalty {gp.item():.4f}")
        sgd(w, loss, dn)
    ok = True
    for n in SHAPES:
        want = w[n].detach().numpy() - w0[n]  # the update torch made
        got = w1[n].astype(np.float64) - w0[n]
        scale = max(np.abs(want).max(), 1e-12)
        err = np.abs(got - want).max() / scale
        moved = "moved" if np.abs(want).max() > 0 else "unchanged"
        good = err < 1e-5 if np.abs(want).max() > 0 else np.abs(got).max() == 0
        ok &= bool(good)
        print(f"{n}: {moved}, rel err {err:.2e} {'ok' if good else 'MISMATCH'}")
    print("PARITY OK" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    {"init": init, "check": check}[sys.argv[1]](sys.argv[2], sys.argv[3])
