#!/usr/bin/env bash
# The tests' own Python environment, for the packages Debian does not have
# (tools/test-requirements.txt: onnx, onnxruntime): created on first use with
# /usr/bin/python3 -m venv and pip from PyPI, cached under
# ${NNC_VENV_ROOT:-~/.cache/nnc}/venv-<hash of the requirements>, reused while
# the requirements are unchanged. Prints the environment's python on
# standard output. Where it cannot be made (no network, no PyPI) it says why
# on standard error and exits 1; the tests that need it are then skipped.
#
#   tools/pyenv.sh      the ONNX environment (onnx, onnxruntime)
#   tools/pyenv.sh tf   the TensorFlow environment (tools/test-requirements-tf.txt:
#                       tensorflow-cpu, tf2onnx; about 2 GB), for Keras models
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/tools/test-requirements.txt"
check="import onnx, onnxruntime, numpy"
if [ "${1:-}" = tf ]; then
  req="$root/tools/test-requirements-tf.txt"
  check="import tensorflow, tf2onnx, numpy"
fi
hash="$(sha256sum "$req" | cut -c1-12)"
dir="${NNC_VENV_ROOT:-$HOME/.cache/nnc}/venv-$hash"
if [ -x "$dir/bin/python" ] && [ -f "$dir/.complete" ]; then
  echo "$dir/bin/python"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
log="$(mktemp)"
if /usr/bin/python3 -m venv "$dir" >"$log" 2>&1 &&
  timeout 900 "$dir/bin/pip" install --disable-pip-version-check --retries 1 --timeout 30 -q -r "$req" >>"$log" 2>&1 &&
  "$dir/bin/python" -c "$check" >>"$log" 2>&1; then
  touch "$dir/.complete"
  rm -f "$log"
  echo "$dir/bin/python"
  exit 0
fi
echo "pyenv: cannot make the tests' Python environment from $(basename "$req") ($(tail -n 1 "$log")); the tests that need it will be skipped" >&2
rm -rf "$dir" "$log"
exit 1
