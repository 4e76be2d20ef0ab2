#!/usr/bin/env python3
"""report.py — turns a benchmark results file (JSON lines written by
bench/run.sh) into markdown tables.

    python3 bench/report.py [RESULTS.jsonl] [--out FILE.md] [--readme README.md]

RESULTS defaults to bench/results/latest.jsonl; the markdown is printed and
written to FILE.md (default: RESULTS with the suffix .md, so
bench/results/latest.md for the default input). With --readme, the text
between the lines `<!-- bench:begin -->` and `<!-- bench:end -->` of that
file is replaced by the tables (the marker lines stay).

For each (peer, workload, batch or n) the best thread count (and, when
run.sh measured several rounds, the best round) is kept: the lowest median
ms (for GEMM, the highest GFLOP/s). Plain Python 3, no
third-party modules.
"""

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
WORKLOAD_ORDER = ["mlp-train-sgd", "mlp-train-adam", "mlp-infer", "cnn-train", "cnn-infer", "lstm-train",
                  "vit-train", "vit-infer", "gan-ring", "wgan-gp-ring"]
PEER_ORDER = ["torch", "torch-compile", "jax", "onnxruntime", "onnxruntime-nnc"]
NOT_A_RESULT = {"env", "machine", "peak"}


# --- reading -----------------------------------------------------------------------------

def read(path):
    """Returns (meta, results): meta holds the machine, env and peak lines."""
    meta = {"machine": None, "env": None, "peak": {}}
    results, bad = [], 0
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            print(f"report.py: {path}:{n}: not JSON, skipped", file=sys.stderr)
            continue
        if not isinstance(obj, dict) or "peer" not in obj:
            bad += 1
            continue
        peer = obj["peer"]
        if peer == "machine":
            meta["machine"] = obj
        elif peer == "env":
            meta["env"] = obj
        elif peer == "peak":
            if "gflops" in obj:
                t = int(obj.get("threads", 0))
                meta["peak"][t] = max(meta["peak"].get(t, 0.0), float(obj["gflops"]))
        else:
            results.append(obj)
    return meta, results


def size_of(r):
    return r.get("n") if r.get("workload") == "gemm" else r.get("batch")


def best(results):
    """(peer, workload, size) -> best line, or an error line when no measurement succeeded.
    Also returns the errors of whole peers (a worker that failed before any workload)."""
    groups, whole = {}, []
    for r in results:
        if "workload" not in r:
            whole.append(r)
            continue
        groups.setdefault((r["peer"], r["workload"], size_of(r)), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if isinstance(r.get("ms"), (int, float)) and "error" not in r]
        if not ok:
            out[key] = dict(rs[0], error=rs[0].get("error", "no measurement"))
            continue
        if key[1] == "gemm" and all("gflops" in r for r in ok):
            b = max(ok, key=lambda r: r["gflops"])
        else:
            b = min(ok, key=lambda r: r["ms"])
        b = dict(b)
        errors = [r for r in rs if "error" in r]
        if errors:   # some thread count failed; keep it for the notes
            b.setdefault("errors_by_threads", {str(r.get("threads")): r["error"] for r in errors})
        out[key] = b
    return out, whole


# --- formatting ----------------------------------------------------------------------------

def fmt_num(x):
    """About 3 significant digits, never scientific notation."""
    x = float(x)
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    if x > 0:
        return f"{x:.{min(2 - math.floor(math.log10(x)), 8)}f}"   # 0.500, 0.0722
    return f"{x:g}"


def fmt_threads(r):
    t = r.get("threads")
    return f" ({t})" if t is not None else ""


def cell_ms(r):
    if r is None:
        return "—"
    if "error" in r:
        return "error"
    return fmt_num(r["ms"]) + fmt_threads(r)


def ratio(x):
    return f"{x:.2f}×"


def table(header, rows, align=None):
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def workload_key(wl):
    return (WORKLOAD_ORDER.index(wl), wl) if wl in WORKLOAD_ORDER else (len(WORKLOAD_ORDER), wl)


# nnc's own rows: the JIT ("nnc") and the libraries nnc compile writes ("nnc-aot").
NNC_PEERS = {"nnc", "nnc-aot"}


def peer_columns(bests, whole):
    seen = {p for (p, _, _) in bests if p not in NNC_PEERS} | {r.get("peer") for r in whole
                                                              if r.get("peer") not in NNC_PEERS}
    seen.discard(None)
    return [p for p in PEER_ORDER if p in seen] + sorted(seen - set(PEER_ORDER))


# --- the report ------------------------------------------------------------------------------

def header_line(meta, path):
    m = meta["machine"] or {}
    env = meta["env"] or {}
    date = m.get("date")
    if not date:
        date = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cpu = m.get("cpu") or env.get("cpu") or "unknown CPU"
    nproc = m.get("nproc") or env.get("cpus")
    parts = [f"**{date}**", cpu, f"nproc {nproc if nproc is not None else '?'}"]
    peak = meta["peak"]
    if peak:
        one = peak.get(1)
        most = max(peak)
        p = f"FMA peak {fmt_num(one)} GFLOP/s at 1 thread" if one is not None else "FMA peak"
        if most != 1:
            p += f", {fmt_num(peak[most])} at {most} threads"
        parts.append(p)
    else:
        parts.append("FMA peak not measured")
    if m.get("commit"):
        parts.append(f"nnc {m['commit']}" + (" (uncommitted changes)" if m.get("dirty") else ""))
    if env:
        vers = [f"{k} {env[k]}" for k in ("torch", "jax", "jaxlib", "onnxruntime", "numpy", "python")
                if env.get(k)]
        parts.append("peers: " + (", ".join(vers) if vers else "no versions recorded"))
    else:
        parts.append("peers: not run")
    if (m.get("rounds") or 1) > 1:
        parts.append(f"best of {m['rounds']} rounds")
    if m.get("quick"):
        parts.append("**--quick run: short measurements, indicative only**")
    return " · ".join(parts)


def steps_table(bests, peers):
    keys = sorted({(wl, size) for (_, wl, size) in bests if wl != "gemm"},
                  key=lambda k: (workload_key(k[0]), k[1] if k[1] is not None else -1))
    rows = []
    for wl, size in keys:
        nnc = bests.get(("nnc", wl, size))
        row = [wl, size if size is not None else "—", cell_ms(nnc)]
        ok = []
        for p in peers:
            r = bests.get((p, wl, size))
            row.append(cell_ms(r))
            if r is not None and "error" not in r:
                ok.append((r["ms"], p))
        if ok:
            fast_ms, fast = min(ok)
            row.append(fast)
            row.append(ratio(fast_ms / nnc["ms"]) if nnc is not None and "error" not in nnc else "—")
        else:
            row += ["—", "—"]
        rows.append(row)
    header = ["workload", "batch", "nnc ms (threads)"] + peers + ["fastest peer", "nnc speedup"]
    return table(header, rows, ["l", "r"] + ["r"] * (len(header) - 4) + ["l", "r"]) if rows else None


def gemm_table(bests, peak):
    sizes = sorted({size for (p, wl, size) in bests if wl == "gemm" and p in ("nnc", "torch")})
    rows = []
    for n in sizes:
        nnc, torch = bests.get(("nnc", "gemm", n)), bests.get(("torch", "gemm", n))
        row = [n]
        if nnc is None or "error" in nnc:
            row += ["—" if nnc is None else "error", "—"]
        else:
            row.append(fmt_num(nnc["gflops"]) + fmt_threads(nnc))
            pk = peak.get(nnc.get("threads"))
            row.append(f"{100 * nnc['gflops'] / pk:.0f}%" if pk else "—")
        if torch is None or "error" in torch:
            row.append("—" if torch is None else "error")
        else:
            row.append(fmt_num(torch["gflops"]) + fmt_threads(torch))
        ok = (nnc is not None and "error" not in nnc and torch is not None and "error" not in torch)
        row.append(ratio(nnc["gflops"] / torch["gflops"]) if ok else "—")
        rows.append(row)
    header = ["n", "nnc GFLOP/s (threads)", "% of peak", "torch GFLOP/s (threads)", "nnc / torch"]
    return table(header, rows, ["r"] * len(header)) if rows else None


def compile_table(bests):
    keys = sorted({(wl, size) for (p, wl, size), r in bests.items()
                   if wl != "gemm" and ("compile_seconds" in r or "first_ms" in r)},
                  key=lambda k: (workload_key(k[0]), k[1] if k[1] is not None else -1))
    rows = []
    for wl, size in keys:
        nnc = bests.get(("nnc", wl, size))
        row = [wl, size if size is not None else "—"]
        row.append(fmt_num(nnc["compile_seconds"]) if nnc and "compile_seconds" in nnc else
                   ("error" if nnc and "error" in nnc else "—"))
        for p in ("torch-compile", "jax"):
            r = bests.get((p, wl, size))
            if r is None:
                row.append("—")
            elif "first_ms" in r:
                row.append(fmt_num(r["first_ms"] / 1e3))
            else:
                row.append("error" if "error" in r else "—")
        rows.append(row)
    header = ["workload", "batch", "nnc compile (s)", "torch-compile first call (s)", "jax first call (s)"]
    return table(header, rows) if rows else None


def aot_table(bests):
    keys = sorted({(wl, size) for (p, wl, size) in bests if p == "nnc-aot"},
                  key=lambda k: (workload_key(k[0]), k[1] if k[1] is not None else -1))
    rows = []
    for wl, size in keys:
        jit, aot = bests.get(("nnc", wl, size)), bests.get(("nnc-aot", wl, size))
        ok = jit is not None and "error" not in jit and aot is not None and "error" not in aot
        ort_nnc, ort_torch = bests.get(("onnxruntime-nnc", wl, size)), bests.get(("onnxruntime", wl, size))
        orts = [r["ms"] for r in (ort_nnc, ort_torch) if r is not None and "error" not in r]
        aot_ok = aot is not None and "error" not in aot
        rows.append([wl, size, cell_ms(jit), cell_ms(aot), ratio(jit["ms"] / aot["ms"]) if ok else "—",
                     cell_ms(ort_nnc), cell_ms(ort_torch),
                     ratio(min(orts) / aot["ms"]) if orts and aot_ok else "—",
                     fmt_num(aot["compile_seconds"]) if aot and "compile_seconds" in aot else "—",
                     fmt_num(aot["library_bytes"] / 1e6) if aot and "library_bytes" in aot else "—"])
    header = ["workload", "batch", "JIT ms (threads)", "library ms (threads)", "JIT ms / library ms",
              "ORT on nnc's ONNX ms", "ORT on torch's ONNX ms", "library speedup over ORT",
              "nnc compile (s)", "lib .so (MB)"]
    return table(header, rows) if rows else None


def notes(bests, whole):
    out = []
    for r in whole:
        out.append(f"- {r.get('peer')} at {r.get('threads')} thread(s) did not run: {r.get('error')}")
    for (p, wl, size), r in sorted(bests.items(), key=lambda kv: (kv[0][0], workload_key(kv[0][1]),
                                                                   kv[0][2] or 0)):
        if "error" in r:
            out.append(f"- {p} {wl} {size}: {r['error']}")
        for t, e in (r.get("errors_by_threads") or {}).items():
            if "error" not in r:
                out.append(f"- {p} {wl} {size} at {t} thread(s): {e}")
    return out


def render(path):
    meta, results = read(path)
    bests, whole = best(results)
    peers = peer_columns(bests, whole)
    parts = [header_line(meta, path)]

    t1 = steps_table(bests, peers)
    parts.append("**Table 1. Train and inference steps.** Median ms per step (lower is better); in "
                 "parentheses the thread count that gave it, best of 1 and 2. nnc speedup = fastest "
                 "peer's ms / nnc's ms (above 1× nnc is faster).")
    parts.append(t1 or "_no train or inference measurements_")

    t2 = gemm_table(bests, meta["peak"])
    parts.append("**Table 2. GEMM**, square n × n float32 matrices, 2n³ FLOP per product (higher is "
                 "better). % of peak: of the FMA peak measured at the same thread count.")
    parts.append(t2 or "_no GEMM measurements_")

    t3 = compile_table(bests)
    parts.append("**Table 3. Compile.** nnc: JIT compilation of the step (`compile_seconds`), measured "
                 "without nnc's compile cache (a cached run loads the object file in about a millisecond); "
                 "torch-compile and jax: the first call, which compiles and also runs the step once "
                 "(torch.compile reuses inductor's on-disk cache, so reruns are faster).")
    parts.append(t3 or "_no compile measurements_")

    t4 = aot_table(bests)
    if t4:
        parts.append("**Table 4. Compiled libraries.** Predict through the library `nnc compile` writes "
                     "(bench/aot_bench.c, raw features in: the library also applies the train block's "
                     "preprocessing, which the JIT row's data already had), beside the JIT's predict step "
                     "at the same batch and ONNX Runtime on the file `nnc export` writes and on torch's "
                     "export of the same network (library speedup = the faster ORT's ms / the library's; "
                     "above 1× the library is faster); nnc compile: the whole command (code for every "
                     "function, the C glue, the links).")
        parts.append(t4)

    n = notes(bests, whole)
    if n:
        parts.append("**Errors**\n\n" + "\n".join(n))
    return "\n\n".join(parts) + "\n"


def marker_lines(readme):
    """(begin, end) line indices of the markers in readme, or None."""
    lines = Path(readme).read_text().splitlines(keepends=True)
    try:
        b = next(i for i, l in enumerate(lines) if l.strip() == BEGIN)
        e = next(i for i, l in enumerate(lines) if l.strip() == END and i > b)
    except StopIteration:
        return None
    return lines, b, e


def replace_in_readme(readme, md):
    lines, b, e = marker_lines(readme)
    Path(readme).write_text("".join(lines[:b + 1]) + "\n" + md + "\n" + "".join(lines[e:]))
    print(f"report.py: updated {readme}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default=str(REPO / "bench/results/latest.jsonl"),
                    help="results file (JSON lines; default bench/results/latest.jsonl)")
    ap.add_argument("--out", help="markdown file to write (default: RESULTS with suffix .md)")
    ap.add_argument("--readme", metavar="FILE", help="also replace the bench:begin/end section of FILE")
    args = ap.parse_args()

    path = Path(args.results)
    if not path.is_file():
        ap.error(f"no such results file: {path}")
    if args.readme and (not Path(args.readme).is_file() or marker_lines(args.readme) is None):
        print(f"report.py: error: {args.readme} has no '{BEGIN}' ... '{END}' lines "
              "(or does not exist); nothing written", file=sys.stderr)
        sys.exit(1)
    md = render(path)
    out = Path(args.out) if args.out else path.with_suffix(".md")
    out.write_text(md)
    sys.stdout.write(md)
    print(f"report.py: wrote {out}", file=sys.stderr)
    if args.readme:
        replace_in_readme(args.readme, md)


if __name__ == "__main__":
    main()
