#!/usr/bin/env python3
"""peers.py — times nnc's benchmark peers (PyTorch, torch.compile, JAX, ONNX
Runtime) on the workloads nnc is timed on, on random data of the right shapes.

Run it with the benchmark's own environment (made by bench/setup_peers.sh):

    bench/.venv/bin/python bench/peers.py [--quick] [--only SUBSTRING]
        [--peers torch,torch-compile,jax,onnxruntime,onnxruntime-nnc] [--threads 1,2]

Output: JSON lines on stdout (progress and the frameworks' chatter go to
stderr). The first line is {"peer": "env", ...}: versions, CPU model, torch's
BLAS. Then one line per (peer, workload, batch):

    {"peer": P, "workload": W, "batch": B, "threads": T, "ms": median ms per
     step, "steps": timed steps, "ms_by_threads": {"1": ..., "2": ...}, ...}

where T is the thread count that gave the lowest median (each peer is run at
1 and at 2 threads and reported at its best). gemm lines carry "n" (square
n x n matrices) instead of "batch" and add "gflops" (2 n^3 / time). Compiling
peers add "first_ms" (the first call, compilation included; torch.compile
reuses inductor's on-disk cache, so a rerun compiles much faster). A
measurement that fails has an "error" field instead of "ms".

Workloads (float32; labels int64):
  mlp-train-sgd, mlp-train-adam  784-256-128-10 ReLU MLP, cross-entropy on the
      logits, one full train step (forward, backward, optimizer step, zeroed
      gradients); batch 1, 32, 256; SGD lr 0.01 / Adam lr 1e-3.
  mlp-infer   the same MLP forward to softmax probabilities; batch 1, 256.
  cnn-infer, vit-infer   fashion_cnn.nn's and fashion_vit.nn's forward to
      softmax probabilities, batch 1 and 256 (ONNX Runtime only).
  cnn-train, lstm-train, vit-train   one train step of examples/fashion_cnn.nn,
      fashion_lstm.nn, fashion_vit.nn at the batch and with the optimizer the
      files' train blocks name (read from the files).
  gemm        torch.matmul of n x n matrices, n = 64 ... 2048 (torch only).

How it times: every (peer, thread count) runs in a worker subprocess
(`--worker`) whose CPU affinity is cut to T cores and whose framework is told
T threads (torch.set_num_threads, ORT intra_op_num_threads, XLA_FLAGS for
JAX), so thread settings cannot leak between measurements and torch.compile
generates code for the thread count it runs with. Each measurement makes a
fresh model, calls the step once (compilation, for compiling peers), warms up
for ~0.3 s, then times single steps until 2 s of wall time have passed (at
least 3, at most 500 steps) and reports their median.

The peers: torch is eager PyTorch with the fused CPU optimizers
(torch.optim.SGD/Adam(fused=True)) and inference under torch.inference_mode;
torch-compile is torch.compile (default mode, dynamic=False, one compile per
batch size) of the forward pass and loss, so that AOTAutograd compiles the
backward too, with the same fused optimizer; jax jits value_and_grad and a
hand-written SGD/Adam update as one function (buffers donated), timed to
block_until_ready; onnxruntime runs the models exported by torch.onnx.export
(CPUExecutionProvider, all graph optimizations, sequential execution), and
onnxruntime-nnc the same session on the files `nnc export` writes (build/
must hold nnc).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ALL_PEERS = ("torch", "torch-compile", "jax", "onnxruntime", "onnxruntime-nnc")


# --- workloads ------------------------------------------------------------------

def example_settings(name):
    """Batch size, optimizer and learning rate of examples/<name>.nn's train block."""
    text = (REPO / "examples" / f"{name}.nn").read_text()
    batch = re.search(r"\bbatch\((\d+)\)", text)
    opt = re.search(r"optimizer\s*=\s*(adam|sgd)\(\s*(?:lr\s*=\s*)?([0-9.eE+-]+)", text)
    return (int(batch.group(1)) if batch else 64,
            opt.group(1) if opt else "adam",
            float(opt.group(2)) if opt else 1e-3)


def workloads():
    """name -> (peers, sizes, settings). sizes are batches (gemm: n)."""
    train = ("torch", "torch-compile", "jax")
    w = {
        "mlp-train-sgd": (train, (1, 32, 256), ("sgd", 0.01)),
        "mlp-train-adam": (train, (1, 32, 256), ("adam", 1e-3)),
        "mlp-infer": (ALL_PEERS, (1, 256), None),
        # Only ONNX Runtime among the peers: on torch's export and on nnc's.
        "cnn-infer": (("onnxruntime", "onnxruntime-nnc"), (1, 256), None),
        "vit-infer": (("onnxruntime", "onnxruntime-nnc"), (1, 256), None),
    }
    for wl, file in (("cnn-train", "fashion_cnn"), ("lstm-train", "fashion_lstm"),
                     ("vit-train", "fashion_vit")):
        batch, opt, lr = example_settings(file)
        w[wl] = (train, (batch,), (opt, lr))
    w["gemm"] = (("torch",), (64, 128, 256, 512, 1024, 2048), None)
    # A GAN's step pair (D then G), the batch of each example's train block.
    for wl, file in (("gan-ring", "gan_ring"), ("wgan-gp-ring", "wgan_gp_ring")):
        w[wl] = (("torch", "torch-compile"), (example_settings(file)[0],), None)
    return w


# --- timing -----------------------------------------------------------------------

def measure(step, quick, cap_s=2.0):
    """Median ms of single calls of step() after a first call and a warm-up."""
    clock = time.perf_counter
    t0 = clock()
    step()
    first_ms = (clock() - t0) * 1e3
    warm_s, warm_max, min_steps, max_steps = (0.0, 1, 3, 3) if quick else (0.3, 50, 3, 500)
    t0, k = clock(), 0
    while k < 1 or (k < warm_max and clock() - t0 < warm_s):
        step()
        k += 1
    times, t0 = [], clock()
    while len(times) < min_steps or (len(times) < max_steps and clock() - t0 < cap_s):
        t = clock()
        step()
        times.append((clock() - t) * 1e3)
    return {"ms": statistics.median(times), "steps": len(times), "first_ms": round(first_ms, 3)}


# --- PyTorch --------------------------------------------------------------------

def torch_models():
    """The networks as torch.nn modules, each mapped to its .nn source."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def mlp():
        # fashion_mlp.nn:  h1 = dense(x, 256) |> relu;  h2 = dense(h1, 128) |> relu;
        #                  logits = dense(h2, 10)
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))

    class CNN(nn.Module):
        # fashion_cnn.nn
        def __init__(self):
            super().__init__()
            # (padding 1 is "same" for a 3x3 stride-1 kernel; older torch.onnx cannot export "same")
            self.c1 = nn.Conv2d(1, 32, 3, padding=1)         # c1 = conv2d(img, 32, 3, padding = "same")
            self.c2 = nn.Conv2d(32, 64, 3, padding=1)        # c2 = conv2d(c1, 64, 3, padding = "same")
            self.h = nn.Linear(64 * 7 * 7, 128)              # h = dense(flatten(c2), 128)
            self.drop = nn.Dropout(0.3)                      #     |> dropout(0.3)
            self.logits = nn.Linear(128, 10)                 # logits = dense(h, 10)

        def forward(self, x):
            img = x.reshape(-1, 1, 28, 28)                       # img = reshape(x, [N, 1, 28, 28])
            c1 = F.max_pool2d(F.relu(self.c1(img)), 2)           # |> relu |> max_pool2d(2)  [N,32,14,14]
            c2 = F.max_pool2d(F.relu(self.c2(c1)), 2)            # |> relu |> max_pool2d(2)  [N,64,7,7]
            h = self.drop(F.relu(self.h(torch.flatten(c2, 1))))  # dense(flatten(c2), 128) |> relu |> dropout
            return self.logits(h)

    class LSTM(nn.Module):
        # fashion_lstm.nn
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(28, 128, batch_first=True)   # h = lstm(rows, 128, output = "last")
            self.logits = nn.Linear(128, 10)                 # logits = dense(h, 10)

        def forward(self, x):
            rows = x.reshape(-1, 28, 28)                     # rows = reshape(x, [N, 28, 28])
            _, (h, _) = self.lstm(rows)                      # last hidden state [1, N, 128]
            return self.logits(h[-1])

    class Encoder(nn.Module):
        # fashion_vit.nn: layer encoder(x, width, heads = 4, hidden = 128)
        def __init__(self, width=64, heads=4, hidden=128):
            super().__init__()
            self.ln1 = nn.LayerNorm(width)
            self.mha = nn.MultiheadAttention(width, heads, batch_first=True)
            self.ln2 = nn.LayerNorm(width)
            self.fc1 = nn.Linear(width, hidden)
            self.fc2 = nn.Linear(hidden, width)

        def forward(self, x):
            n = self.ln1(x)
            a = x + self.mha(n, n, n, need_weights=False)[0]  # a = x + multi_head_attention(layer_norm(x))
            f = self.fc2(F.gelu(self.fc1(self.ln2(a))))       # f = dense(layer_norm(a), hidden) |> gelu |> dense(width)
            return a + f                                      # return a + f

    class ViT(nn.Module):
        # fashion_vit.nn: model FashionViT
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(49, 64)                      # tokens = dense(patches, 64)
            self.pos = nn.Parameter(0.02 * torch.randn(16, 64))  #   |> positional_encoding(kind = "learned")
            self.b1, self.b2 = Encoder(), Encoder()             # b1 = encoder(tokens, 64); b2 = encoder(b1, 64)
            self.ln = nn.LayerNorm(64)                          # pooled = mean(layer_norm(b2), axis = 1)
            self.logits = nn.Linear(64, 10)                     # logits = dense(pooled, 10)

        def forward(self, x):
            # patches = reshape(x, [N, 4, 7, 4, 7]) |> permute([0, 1, 3, 2, 4]) |> reshape([N, 16, 49])
            p = x.reshape(-1, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(-1, 16, 49)
            t = self.embed(p) + self.pos
            return self.logits(self.ln(self.b2(self.b1(t))).mean(dim=1))

    return {"mlp": mlp, "cnn": CNN, "lstm": LSTM, "vit": ViT}


def torch_cases(compiled, threads):
    """(workload, size, make) for torch eager or torch.compile; make() -> (step, extra)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    models = torch_models()

    def data(batch):
        g = torch.Generator().manual_seed(batch)
        return torch.rand(batch, 784, generator=g), torch.randint(0, 10, (batch,), generator=g)

    def make_optimizer(params, name, lr):
        # The fused CPU kernels where available, for torch.compile too: a
        # torch.compile'd opt.step() (PyTorch's optimizer recipe) was no faster
        # for SGD and slower for Adam (1.9 vs 1.5 ms at MLP batch 1).
        cls = torch.optim.Adam if name == "adam" else torch.optim.SGD
        try:
            return cls(params, lr=lr, fused=True), "fused"
        except (RuntimeError, TypeError, ValueError):
            return cls(params, lr=lr), "default"

    def train(model_name, batch, opt_name, lr):
        def make():
            torch._dynamo.reset()
            model = models[model_name]().train()
            x, y = data(batch)
            opt, impl = make_optimizer(model.parameters(), opt_name, lr)

            def loss_of(x, y):
                return F.cross_entropy(model(x), y)
            if compiled:        # forward and (through AOTAutograd) backward compiled
                loss_of = torch.compile(loss_of, dynamic=False)

            def step():
                opt.zero_grad(set_to_none=True)
                loss_of(x, y).backward()
                opt.step()
            return step, {"optimizer": f"{opt_name}({impl})"}
        return make

    def infer(batch):
        def make():
            torch._dynamo.reset()
            model = models["mlp"]().eval()
            x, _ = data(batch)

            def probs(x):
                return F.softmax(model(x), dim=-1)
            if compiled:
                probs = torch.compile(probs, dynamic=False)

            def step():
                with torch.inference_mode():
                    probs(x)
            return step, {}
        return make

    def gemm(n):
        def make():
            g = torch.Generator().manual_seed(n)
            a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
            c = torch.empty(n, n)
            return (lambda: torch.matmul(a, b, out=c)), {}
        return make

    cases = []
    for wl, (_, sizes, settings) in workloads().items():
        for size in sizes:
            if wl.startswith("mlp-train"):
                cases.append((wl, size, train("mlp", size, *settings)))
            elif wl.endswith("-train"):
                cases.append((wl, size, train(wl.split("-")[0], size, *settings)))
            elif wl == "mlp-infer":
                cases.append((wl, size, infer(size)))
            elif wl == "gemm" and not compiled:
                cases.append((wl, size, gemm(size)))
    return cases


# --- ONNX Runtime -------------------------------------------------------------------

def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


INFER_FILES = {"mlp-infer": "fashion_mlp", "cnn-infer": "fashion_cnn", "vit-infer": "fashion_vit"}


def ort_nnc_cases(threads, tmpdir):
    """The inference workloads under ONNX Runtime on the files `nnc export`
    writes (fresh weights; raw pixels in, as the file's scale(1/255) is in
    the graph)."""
    import numpy as np

    nnc = REPO / "build" / "tools" / "nnc"

    def infer(wl, batch):
        def make():
            path = os.path.join(tmpdir, f"{wl}.onnx")
            if not os.path.exists(path):
                subprocess.run([str(nnc), "export", str(REPO / "examples" / f"{INFER_FILES[wl]}.nn"), "-o", path],
                               check=True, stdout=sys.stderr)
            sess = ort_session(path, threads)
            feed = {sess.get_inputs()[0].name:
                    np.random.default_rng(batch).uniform(0, 255, (batch, 784)).astype(np.float32)}
            return (lambda: sess.run(None, feed)), {"export": "nnc"}
        return make

    return [(wl, b, infer(wl, b)) for wl, (peers, sizes, _) in workloads().items()
            if "onnxruntime-nnc" in peers for b in sizes]


def ort_cases(threads, tmpdir):
    """The inference workloads under ONNX Runtime: the torch models + softmax
    exported to ONNX."""
    import contextlib
    import numpy as np
    import onnxruntime as ort
    import torch
    from torch import nn

    torch.set_num_threads(threads)

    def export(wl, batch):
        model = nn.Sequential(torch_models()[wl.split("-")[0]](), nn.Softmax(dim=-1)).eval()
        path = os.path.join(tmpdir, f"{wl}_b{batch}.onnx")
        x = torch.rand(batch, 784)
        # The exporters print progress on stdout, which carries our JSON.
        with contextlib.redirect_stdout(sys.stderr):
            try:                 # torch's default (dynamo/onnxscript) exporter
                torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["probs"],
                                  external_data=False)
                how = "dynamo"
            except Exception as e:  # noqa: BLE001 — the legacy TorchScript exporter
                print(f"peers: dynamo ONNX export failed ({e}); trying dynamo=False",
                      file=sys.stderr)
                try:
                    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["probs"],
                                      dynamo=False)
                except TypeError:  # torch before 2.5 has no dynamo= (its export is TorchScript's)
                    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["probs"],
                                      opset_version=17)
                how = "torchscript"
        return path, how

    def infer(wl, batch):
        def make():
            path, how = export(wl, batch)
            sess = ort_session(path, threads)
            feed = {sess.get_inputs()[0].name:
                    np.random.default_rng(batch).random((batch, 784), dtype=np.float32)}
            return (lambda: sess.run(None, feed)), {"export": how}
        return make

    return [(wl, b, infer(wl, b)) for wl, (peers, sizes, _) in workloads().items()
            if "onnxruntime" in peers for b in sizes]


# --- JAX ------------------------------------------------------------------------------

def jax_models():
    """The networks as (init, apply(params, x, dropout_key)) pairs of pure JAX
    functions, each mapped to its .nn source; parameters initialized like
    nnc's (He for dense/conv, Glorot for attention and LSTM)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    rng = np.random.default_rng(0)

    def dense_p(i, o):
        return {"w": jnp.asarray(rng.normal(0, (2 / i) ** 0.5, (i, o)), jnp.float32),
                "b": jnp.zeros((o,), jnp.float32)}

    def dense(p, x):
        return x @ p["w"] + p["b"]

    def glorot(*shape):
        return jnp.asarray(rng.normal(0, (2 / (shape[-2] + shape[-1])) ** 0.5, shape), jnp.float32)

    # fashion_mlp.nn: dense(x, 256) |> relu; dense(h1, 128) |> relu; dense(h2, 10)
    def mlp_init():
        return {"h1": dense_p(784, 256), "h2": dense_p(256, 128), "logits": dense_p(128, 10)}

    def mlp_apply(p, x, key):
        h1 = jax.nn.relu(dense(p["h1"], x))
        h2 = jax.nn.relu(dense(p["h2"], h1))
        return dense(p["logits"], h2)

    # fashion_cnn.nn: two conv2d(3, "same") |> relu |> max_pool2d(2) stages, dense 128 + dropout
    def cnn_init():
        def conv_p(o, i):
            return {"w": jnp.asarray(rng.normal(0, (2 / (i * 9)) ** 0.5, (o, i, 3, 3)), jnp.float32),
                    "b": jnp.zeros((o,), jnp.float32)}
        return {"c1": conv_p(32, 1), "c2": conv_p(64, 32), "h": dense_p(64 * 7 * 7, 128),
                "logits": dense_p(128, 10)}

    def cnn_apply(p, x, key):
        def stage(q, v):   # conv2d(v, C, 3, padding = "same") |> relu |> max_pool2d(2)
            v = lax.conv_general_dilated(v, q["w"], (1, 1), "SAME",
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            v = jax.nn.relu(v + q["b"][None, :, None, None])
            return lax.reduce_window(v, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        img = x.reshape(-1, 1, 28, 28)                            # reshape(x, [N, 1, 28, 28])
        c2 = stage(p["c2"], stage(p["c1"], img))                  # [N, 64, 7, 7]
        h = jax.nn.relu(dense(p["h"], c2.reshape(c2.shape[0], -1)))
        keep = jax.random.bernoulli(key, 0.7, h.shape)            # dropout(0.3), inverted
        h = jnp.where(keep, h / 0.7, 0.0)
        return dense(p["logits"], h)

    # fashion_lstm.nn: lstm(reshape(x, [N, 28, 28]), 128, output = "last") |> dense(10)
    def lstm_init():
        return {"w_ih": glorot(28, 512), "w_hh": glorot(128, 512),
                "b_ih": jnp.zeros((512,), jnp.float32), "b_hh": jnp.zeros((512,), jnp.float32),
                "logits": dense_p(128, 10)}

    def lstm_apply(p, x, key):
        rows = x.reshape(-1, 28, 28)
        proj = rows @ p["w_ih"] + p["b_ih"] + p["b_hh"]           # every step's input projection

        def cell(carry, xt):                                     # gates i, f, g, o (PyTorch's order)
            h, c = carry
            i, f, g, o = jnp.split(xt + h @ p["w_hh"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None
        zeros = jnp.zeros((rows.shape[0], 128), jnp.float32)
        (h, _), _ = lax.scan(cell, (zeros, zeros), jnp.swapaxes(proj, 0, 1))
        return dense(p["logits"], h)

    # fashion_vit.nn: patches -> dense 64 + learned positions -> 2 encoders -> LN, mean -> dense 10
    def ln_p(d):
        return {"scale": jnp.ones((d,), jnp.float32), "shift": jnp.zeros((d,), jnp.float32)}

    def layer_norm(p, x, eps=1e-5):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + eps) * p["scale"] + p["shift"]

    def mha_p(d):
        return {k: {"w": glorot(d, d), "b": jnp.zeros((d,), jnp.float32)} for k in "qkvo"}

    def mha(p, x, heads=4):
        n, t, d = x.shape

        def split(v):
            return v.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)
        q, k, v = (split(dense(p[c], x)) for c in "qkv")
        s = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / (d // heads) ** 0.5, axis=-1)
        return dense(p["o"], (s @ v).transpose(0, 2, 1, 3).reshape(n, t, d))

    def enc_p():
        return {"ln1": ln_p(64), "mha": mha_p(64), "ln2": ln_p(64),
                "fc1": dense_p(64, 128), "fc2": dense_p(128, 64)}

    def encoder(p, x):
        a = x + mha(p["mha"], layer_norm(p["ln1"], x))
        f = dense(p["fc2"], jax.nn.gelu(dense(p["fc1"], layer_norm(p["ln2"], a)), approximate=False))
        return a + f

    def vit_init():
        return {"embed": dense_p(49, 64), "pos": glorot(16, 64), "b1": enc_p(), "b2": enc_p(),
                "ln": ln_p(64), "logits": dense_p(64, 10)}

    def vit_apply(p, x, key):
        patches = x.reshape(-1, 4, 7, 4, 7).transpose(0, 1, 3, 2, 4).reshape(-1, 16, 49)
        tokens = dense(p["embed"], patches) + p["pos"]
        b2 = encoder(p["b2"], encoder(p["b1"], tokens))
        return dense(p["logits"], layer_norm(p["ln"], b2).mean(axis=1))

    return {"mlp": (mlp_init, mlp_apply), "cnn": (cnn_init, cnn_apply),
            "lstm": (lstm_init, lstm_apply), "vit": (vit_init, vit_apply)}


def jax_cases(threads):
    """Train steps and inference under jax.jit (threads are set by the worker's
    environment: CPU affinity and XLA_FLAGS)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    tree_map = jax.tree_util.tree_map
    models = jax_models()
    mlp_init, mlp_apply = models["mlp"]

    def data(batch):
        r = np.random.default_rng(batch)
        return (jnp.asarray(r.random((batch, 784), dtype=np.float32)),
                jnp.asarray(r.integers(0, 10, batch), jnp.int32))

    def xent(logits, y):
        picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)

    def train(model_name, batch, opt, lr):
        def make():
            init, apply = models[model_name]
            params = init()
            state = {"t": jnp.zeros((), jnp.float32)}
            if opt == "adam":
                state["m"] = tree_map(jnp.zeros_like, params)
                state["v"] = tree_map(jnp.zeros_like, params)
            x, y = data(batch)

            def loss_fn(p, x, y, key):
                return xent(apply(p, x, key), y)

            def step(p, s, x, y):   # forward, backward and update in one jitted function
                t = s["t"] + 1
                key = jax.random.fold_in(jax.random.key(0), t.astype(jnp.int32))
                loss, g = jax.value_and_grad(loss_fn)(p, x, y, key)
                if opt == "sgd":    # p <- p - lr g
                    return tree_map(lambda p, g: p - lr * g, p, g), {"t": t}, loss
                b1, b2, eps = 0.9, 0.999, 1e-8   # Adam, as nnc's and torch's
                m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, s["m"], g)
                v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, s["v"], g)
                c1, c2 = 1 - b1 ** t, 1 - b2 ** t
                p = tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
                return p, {"t": t, "m": m, "v": v}, loss

            jstep = jax.jit(step, donate_argnums=(0, 1))
            box = [params, state]

            def run():
                box[0], box[1], loss = jstep(box[0], box[1], x, y)
                jax.block_until_ready((box[0], loss))
            return run, {"optimizer": opt}
        return make

    def infer(batch):
        def make():
            params, (x, _) = mlp_init(), data(batch)
            f = jax.jit(lambda p, x: jax.nn.softmax(mlp_apply(p, x, None), axis=-1))
            return (lambda: f(params, x).block_until_ready()), {}
        return make

    cases = []
    for wl, (peers, sizes, settings) in workloads().items():
        if "jax" not in peers:
            continue
        for size in sizes:
            if wl == "mlp-infer":
                cases.append((wl, size, infer(size)))
            else:
                cases.append((wl, size, train(wl.split("-")[0], size, *settings)))
    return cases


# --- worker: one peer at one thread count ----------------------------------------------

def worker(peer, threads, quick, only):
    import tempfile

    def emit(obj):
        print(json.dumps(obj), flush=True)

    with tempfile.TemporaryDirectory(prefix="nnc-peers-") as tmp:
        try:
            if peer in ("torch", "torch-compile"):
                from gan_peers import gan_cases
                cases = list(torch_cases(peer == "torch-compile", threads)) + gan_cases(peer == "torch-compile")
            elif peer == "jax":
                cases = jax_cases(threads)
            elif peer == "onnxruntime":
                cases = ort_cases(threads, tmp)
            elif peer == "onnxruntime-nnc":
                cases = ort_nnc_cases(threads, tmp)
            else:
                raise ValueError(f"unknown peer {peer}")
        except Exception as e:  # noqa: BLE001 — e.g. the framework is not installed
            emit({"peer": peer, "threads": threads, "error": f"{type(e).__name__}: {e}"})
            return
        for wl, size, make in cases:
            if only and only not in wl:
                continue
            key = {"peer": peer, "workload": wl}
            key.update({"n": size} if wl == "gemm" else {"batch": size})
            print(f"peers: {peer} {wl} {size} at {threads} thread(s)", file=sys.stderr, flush=True)
            try:
                step, extra = make()
                r = measure(step, quick)
                if wl == "gemm":
                    r["gflops"] = round(2 * size ** 3 / (r["ms"] * 1e-3) / 1e9, 2)
                    del r["first_ms"]
                elif peer not in ("torch-compile", "jax"):
                    del r["first_ms"]   # only the compiling peers' first call says something
                r["ms"] = round(r["ms"], 4)
                emit({**key, "threads": threads, **r, **extra})
            except Exception as e:  # noqa: BLE001 — record, go on with the next case
                msg = f"{type(e).__name__}: {e}".splitlines()[0][:500]
                emit({**key, "threads": threads, "error": msg})


def worker_env(peer, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if peer == "jax":
        env["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    return env


def run_worker(args, peer, threads):
    """Runs one worker subprocess; returns its JSON results (other lines go to stderr)."""
    cmd = [sys.executable, __file__, "--worker", peer, "--threads", str(threads)]
    if args.quick:
        cmd.append("--quick")
    if args.only:
        cmd += ["--only", args.only]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=worker_env(peer, threads))
    results = []
    for line in proc.stdout:
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and "peer" in obj:
                results.append(obj)
                continue
        except json.JSONDecodeError:
            pass
        sys.stderr.write(line)
    if proc.wait() != 0 and not results:
        results.append({"peer": peer, "threads": threads,
                        "error": f"worker exited with status {proc.returncode}"})
    return results


def best_lines(peer_results):
    """Merges the per-thread results of one peer into one line per (workload, size)."""
    groups = {}
    for r in peer_results:
        if "workload" not in r:       # a worker that failed as a whole
            yield r
            continue
        groups.setdefault((r["workload"], r.get("batch"), r.get("n")), []).append(r)
    for rs in groups.values():
        ok = [r for r in rs if "ms" in r]
        if not ok:
            yield rs[0]
            continue
        best = dict(min(ok, key=lambda r: r["ms"]))
        best["ms_by_threads"] = {str(r["threads"]): r["ms"] for r in ok}
        errors = {str(r["threads"]): r["error"] for r in rs if "error" in r}
        if errors:
            best["errors_by_threads"] = errors
        yield best


# --- environment line -------------------------------------------------------------------

def env_line():
    import importlib.metadata as md
    import platform
    line = {"peer": "env", "python": platform.python_version()}
    for name in ("torch", "jax", "jaxlib", "onnxruntime", "onnx", "numpy"):
        try:
            line[name] = md.version(name)
        except md.PackageNotFoundError:
            line[name] = None
    try:
        with open("/proc/cpuinfo") as f:
            line["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    except OSError:
        line["cpu"] = None
    line["cpus"] = len(os.sched_getaffinity(0))
    try:
        import torch
        blas = []
        for l in torch.__config__.show().splitlines():
            l = l.strip(" -")
            if l.startswith("Build settings:"):   # keep only the BLAS/LAPACK/MKL keys
                blas += [kv.strip() for kv in l[len("Build settings:"):].split(",")
                         if re.match(r"\s*(BLAS_INFO|LAPACK_INFO|USE_MKL|USE_MKLDNN)=", kv)]
            elif re.search(r"BLAS|MKL|oneDNN|LAPACK|Math Kernel", l):
                blas.append(l)
        line["torch_blas"] = blas
        line["torch_parallel"] = next((l.strip() for l in torch.__config__.parallel_info().splitlines()
                                       if "parallel backend" in l), None)
    except Exception as e:  # noqa: BLE001
        line["torch_blas"] = f"unavailable: {e}"
    return line


# --- main -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny step counts (smoke test)")
    ap.add_argument("--only", metavar="SUBSTRING", help="only workloads whose name contains it")
    ap.add_argument("--peers", default=",".join(ALL_PEERS),
                    help="comma-separated subset of " + ",".join(ALL_PEERS))
    ap.add_argument("--threads", default="1,2", help="thread counts to try (default 1,2)")
    ap.add_argument("--worker", metavar="PEER", help=argparse.SUPPRESS)
    args = ap.parse_args()

    threads = [int(t) for t in args.threads.split(",")]
    if args.worker:
        cpus = sorted(os.sched_getaffinity(0))
        if threads[0] < len(cpus):
            os.sched_setaffinity(0, cpus[:threads[0]])
        worker(args.worker, threads[0], args.quick, args.only)
        return

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = set(peers) - set(ALL_PEERS)
    if unknown:
        ap.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    print(json.dumps(env_line()), flush=True)
    wls = workloads()
    for peer in peers:
        if not any(peer in ps and (not args.only or args.only in wl) for wl, (ps, _, _) in wls.items()):
            continue
        results = []
        for t in threads:
            results += run_worker(args, peer, t)
        for line in best_lines(results):
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
