#!/usr/bin/env bash
# setup_peers.sh — builds the Python environment of nnc's benchmark peers.
#
# Creates bench/.venv (python3 -m venv, from /usr/bin/python3) and installs
# the newest peer frameworks from PyPI:
#   - PyTorch 2.x, used on the CPU only. PyPI's Linux wheel is the CUDA
#     build: it declares nvidia-*, cuda-* and triton wheels (~4 GB) as
#     dependencies. Installing torch with --no-deps plus only its pure-Python
#     dependencies was tried (torch 2.15.0) and does not work: `import torch`
#     fails with "libcufile.so.0: cannot open shared object file", because
#     libtorch_cuda.so links against libraries that only the nvidia-* wheels
#     ship (libcufile, libcusparseLt, libnvshmem_host, ...). PyTorch's CPU-only
#     wheels live on its own index, which this machine cannot reach, so torch
#     is installed normally, CUDA packages included.
#   - onnx, onnxscript (torch.onnx.export's exporter), onnxruntime, numpy.
#   - jax[cpu]: optional; if it does not install, peers.py skips JAX.
#
# Idempotent: when the venv already imports every peer, the script only
# prints the versions. `--upgrade` reinstalls the newest versions anyway.
#
#   bash bench/setup_peers.sh [--upgrade]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="$venv/bin/python"
upgrade=0
for a in "$@"; do
  case "$a" in
    --upgrade) upgrade=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "setup_peers.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

log() { echo "setup_peers: $*" >&2; }

# --- the virtual environment -------------------------------------------------
if [[ ! -x "$py" ]]; then
  if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    log "python3 venv module missing; installing python3-venv"
    apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 python3-venv \
      || { apt-get update && apt-get install -y --no-install-recommends \
             -o DPkg::Lock::Timeout=600 python3-venv; }
  fi
  log "creating $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi

pip() { "$py" -m pip --disable-pip-version-check "$@"; }

have() { "$py" -c "import $1" >/dev/null 2>&1; }

# --- PyTorch (CPU) -------------------------------------------------------------
if [[ $upgrade == 1 ]] || ! have torch; then
  log "installing torch (the CUDA wheel from PyPI: several GB on a first run)"
  pip install --quiet --upgrade torch
fi

# --- ONNX, ONNX Runtime, numpy ---------------------------------------------------
need=()
for m in numpy onnx onnxscript onnxruntime; do
  if [[ $upgrade == 1 ]] || ! have "$m"; then need+=("$m"); fi
done
if [[ ${#need[@]} -gt 0 ]]; then
  log "installing ${need[*]}"
  pip install --quiet --upgrade "${need[@]}"
fi

# --- JAX (optional) -------------------------------------------------------------
if [[ $upgrade == 1 ]] || ! have jax; then
  log "installing jax[cpu] (optional)"
  if ! pip install --quiet --upgrade 'jax[cpu]' || ! have jax; then
    log "warning: jax[cpu] did not install; the benchmark will skip JAX"
  fi
fi

# --- report -----------------------------------------------------------------------
"$py" - <<'EOF'
import importlib.metadata as md, sys
print(f"python {sys.version.split()[0]} ({sys.prefix})")
for name in ["torch", "numpy", "onnx", "onnxscript", "onnxruntime", "jax", "jaxlib",
             "sympy", "networkx", "filelock", "fsspec", "jinja2", "typing_extensions"]:
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} (not installed)")
cuda = [d.metadata["Name"] for d in md.distributions()
        if d.metadata["Name"].lower().startswith(("nvidia-", "triton"))]
print("CUDA/triton packages:", ", ".join(sorted(cuda)) if cuda else "none")
EOF
