"""PyTorch parity of nnc's optimizers and learning-rate schedules: a few
training steps of a small classifier (dense, tanh, layer_norm, dense) with
each setting, from the same initial weights on the same full batch, compared
with torch.optim and torch.optim.lr_scheduler.

  torch_parity_optim.py NNC DIR CONFIG...

For each CONFIG it writes DIR/CONFIG.nn, runs `NNC train` for epochs of one
batch each (so every epoch is one step) and compares every parameter with
PyTorch's (float64) after as many optimizer steps, and the learning rate of
every step (nnc's --log) with the scheduler's; prints 'CONFIG: rel err E
ok|MISMATCH' (the largest parameter difference relative to the largest
reference magnitude, over all tensors) and, for schedules, the largest
relative lr difference and how often the lr changed; then PARITY OK or
PARITY FAILED (exit status 1).
"""
import csv
import math
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

STEPS = 3
N, F, H, C = 16, 5, 8, 3

# CONFIG: (train-block lines, torch optimizer factory over param groups, clip
# [, scheduler factory, steps]). The optimizer factory gets {name: tensor};
# the scheduler factory gets the optimizer.
SCHED_STEPS = 8


def warmup_cosine(warmup, total, base, floor):
    """nnc's cosine(warmup, min_lr) as documented: (t+1)/W * lr for t < W,
    then cosine from lr to min_lr at the last step (LambdaLR multipliers)."""
    def factor(t):
        if t < warmup:
            return (t + 1) / warmup
        pct = (t - warmup) / (total - warmup - 1)
        return (floor + (base - floor) * (1 + math.cos(math.pi * min(pct, 1.0))) / 2) / base
    return factor


CONFIGS = {
    "sgd": ("optimizer = sgd(lr = 0.1)",
            lambda p: torch.optim.SGD(p.values(), lr=0.1), None),
    "sgd_nesterov": ("optimizer = sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01)",
                     lambda p: torch.optim.SGD(p.values(), lr=0.1, momentum=0.9, nesterov=True,
                                               weight_decay=0.01), None),
    "adam": ("optimizer = adam(lr = 0.01, weight_decay = 0.001)",
             lambda p: torch.optim.Adam(p.values(), lr=0.01, weight_decay=0.001), None),
    "adamw_groups": ("optimizer = adamw(lr = 0.01, weight_decay = 0.1)\n"
                     "  param_group(params = [biases, norms], weight_decay = 0)",
                     lambda p: torch.optim.AdamW(
                         [{"params": [p["h.w"], p["out.w"]]},
                          {"params": [p["h.b"], p["n.scale"], p["n.shift"], p["out.b"]], "weight_decay": 0.0}],
                         lr=0.01, weight_decay=0.1), None),
    "rmsprop": ("optimizer = rmsprop(lr = 0.01)",
                lambda p: torch.optim.RMSprop(p.values(), lr=0.01), None),
    "rmsprop_centered": ("optimizer = rmsprop(lr = 0.01, alpha = 0.9, momentum = 0.5, centered = true, "
                         "weight_decay = 0.01)",
                         lambda p: torch.optim.RMSprop(p.values(), lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                                       weight_decay=0.01), None),
    "adagrad": ("optimizer = adagrad(lr = 0.1, weight_decay = 0.01)",
                lambda p: torch.optim.Adagrad(p.values(), lr=0.1, weight_decay=0.01), None),
    "sgd_clip_norm": ("optimizer = sgd(lr = 0.5, momentum = 0.9, clip_norm = 0.05)",
                      lambda p: torch.optim.SGD(p.values(), lr=0.5, momentum=0.9), ("norm", 0.05)),
    "adam_clip_value_lr_scale": ("optimizer = adam(lr = 0.01, clip_value = 0.02)\n"
                                 "  param_group(params = \"h\", lr_scale = 0.5)",
                                 lambda p: torch.optim.Adam(
                                     [{"params": [p["h.w"], p["h.b"]], "lr": 0.005},
                                      {"params": [p["n.scale"], p["n.shift"], p["out.w"], p["out.b"]]}], lr=0.01),
                                 ("value", 0.02)),
    "sgd_step": ("optimizer = sgd(lr = 0.1)\n  schedule = step(every = 3, gamma = 0.5)",
                 lambda p: torch.optim.SGD(p.values(), lr=0.1), None,
                 lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "adam_exponential": ("optimizer = adam(lr = 0.01)\n  schedule = exponential(gamma = 0.8)",
                         lambda p: torch.optim.Adam(p.values(), lr=0.01), None,
                         lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
    # nnc's one_cycle does not cycle momentum.
    "sgd_one_cycle": ("optimizer = sgd(lr = 0.1, momentum = 0.9)\n  schedule = one_cycle(max_lr = 0.2, pct_start = 0.25)",
                      lambda p: torch.optim.SGD(p.values(), lr=0.1, momentum=0.9), None,
                      lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=SCHED_STEPS,
                                                                    pct_start=0.25, cycle_momentum=False)),
    "adamw_cosine": ("optimizer = adamw(lr = 0.02)\n  schedule = cosine(warmup = 2, min_lr = 0.001)",
                     lambda p: torch.optim.AdamW(p.values(), lr=0.02), None,
                     lambda o: torch.optim.lr_scheduler.LambdaLR(o, warmup_cosine(2, SCHED_STEPS, 0.02, 0.001))),
    "sgd_plateau": ("optimizer = sgd(lr = 2.0)\n"
                    "  schedule = reduce_on_plateau(monitor = train_loss, factor = 0.5, patience = 1, threshold = 0.05)",
                    lambda p: torch.optim.SGD(p.values(), lr=2.0), None,
                    lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.05)),
}

MODEL = """model M {
  input x : f32[N, %d]
  label y : i64[N]
  h = dense(x, %d) |> tanh
  n = layer_norm(h)
  out = dense(n, %d)
  output probs = softmax(out)
  loss = cross_entropy(out, y)
}
train M {
  data = csv("data.csv") |> batch(%d)
  %s
  epochs = %s
  seed = 3
}
""" % (F, H, C, N, "%s", "%d")


def setup(d):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, F)).astype(np.float32)
    y = rng.integers(0, C, N)
    with open(os.path.join(d, "data.csv"), "w") as f:
        for i in range(N):
            f.write(",".join("%.6f" % v for v in x[i]) + ",%d\n" % y[i])
    # Parse the file's text back so both sides see the same rounded values.
    x = np.array([[float("%.6f" % v) for v in row] for row in x], dtype=np.float32)
    w = {
        "h.w": (rng.standard_normal((F, H)) * 0.5).astype(np.float32),
        "h.b": (rng.standard_normal(H) * 0.1).astype(np.float32),
        "n.scale": (1 + rng.standard_normal(H) * 0.1).astype(np.float32),
        "n.shift": (rng.standard_normal(H) * 0.1).astype(np.float32),
        "out.w": (rng.standard_normal((H, C)) * 0.5).astype(np.float32),
        "out.b": (rng.standard_normal(C) * 0.1).astype(np.float32),
    }
    parity.write_safetensors(os.path.join(d, "init.safetensors"), w)
    return x, y, w


def reference(x, y, w, make, clip, make_sched, steps):
    p = parity.as_float64(w)
    opt = make(p)
    sched = make_sched(opt) if make_sched else None
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y)
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        h = torch.tanh(xt @ p["h.w"] + p["h.b"])
        n = torch.nn.functional.layer_norm(h, (H,), p["n.scale"], p["n.shift"], eps=1e-5)
        loss = torch.nn.functional.cross_entropy(n @ p["out.w"] + p["out.b"], yt)
        loss.backward()
        if clip and clip[0] == "norm":
            torch.nn.utils.clip_grad_norm_(p.values(), clip[1])
        elif clip:
            torch.nn.utils.clip_grad_value_(p.values(), clip[1])
        lrs.append(opt.param_groups[-1]["lr"])
        opt.step()
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(loss.item())
        elif sched:
            sched.step()
    return {k: v.detach().numpy() for k, v in p.items()}, lrs


def main():
    nnc, d, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(d, exist_ok=True)
    x, y, w = setup(d)
    ok = True
    for name in names:
        lines, make, clip, *sched = CONFIGS[name]
        steps = SCHED_STEPS if sched else STEPS
        src = os.path.join(d, name + ".nn")
        with open(src, "w") as f:
            f.write(MODEL % (lines, steps))
        out, log = os.path.join(d, name + ".safetensors"), os.path.join(d, name + ".csv")
        subprocess.run([nnc, "train", src, "--load", os.path.join(d, "init.safetensors"), "--save", out,
                        "--log", log, "--quiet", "--threads", "1"], check=True, stdout=subprocess.DEVNULL)
        ours = parity.read_safetensors(out)
        ref, lrs = reference(x, y, w, make, clip, sched[0] if sched else None, steps)
        rel = max(np.abs(ours[k].astype(np.float64) - ref[k]).max() / np.abs(ref[k]).max() for k in ref)
        moved = max(np.abs(ref[k] - w[k]).max() for k in ref)
        good = rel <= 1e-5 and moved > 1e-4  # and the weights did move
        ok &= bool(good)
        note = ""
        if sched:
            our_lrs = [float(r["lr"]) for r in csv.DictReader(open(log))]
            lr_err = max(abs(a - b) / b for a, b in zip(our_lrs, lrs)) if len(our_lrs) == len(lrs) else math.inf
            changes = sum(1 for a, b in zip(lrs, lrs[1:]) if a != b)
            good &= lr_err <= 1e-6 and changes > 0
            note = f", lr rel err {lr_err:.1e} over {len(lrs)} steps ({changes} changes)"
        print(f"{name}: rel err {rel:.2e}{note} {'ok' if good else 'MISMATCH'}")
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
