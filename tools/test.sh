#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the GoogleTest units
# and the lit suites in the Release build and again under AddressSanitizer +
# UndefinedBehaviorSanitizer (long training tests run in Release only), then
# a short run of each libFuzzer target over its corpus. Ends with the line
# `N passed, N failed`.
#   NNC_TEST_QUICK=1 tools/test.sh   # Release build only (no sanitizers, no fuzzing)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
passed=0
failed=0
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

tally() { # tally PASSED FAILED
  passed=$((passed + $1))
  failed=$((failed + $2))
}

unit() { # unit BUILD_DIR
  echo "== unit tests ($1)"
  NNC_CACHE=off "$1/test/unit/nnc-unittests" --gtest_brief=1 --gtest_output="json:$out/unit.json"
  tally $(/usr/bin/python3 - "$out/unit.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(j["tests"] - j["failures"] - j.get("disabled", 0), j["failures"])
except Exception:
    print(0, 1)
PY
)
  rm -f "$out/unit.json"
}

lit() { # lit BUILD_DIR
  echo "== lit suites ($1)"
  /usr/bin/python3 /usr/lib/llvm-14/build/utils/lit/lit.py -sv -j "$(nproc)" \
    --xunit-xml-output "$out/lit.xml" "$1/test"
  tally $(/usr/bin/python3 - "$out/lit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    fails = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    print(tests - fails - skipped, fails)
except Exception:
    print(0, 1)
PY
)
  rm -f "$out/lit.xml"
}

bash "$root/tools/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }

# The tests' own Python environments (onnx and onnxruntime; TensorFlow and
# tf2onnx) from PyPI, made once and cached, for lit.
if py="$(bash "$root/tools/pyenv.sh")"; then
  export NNC_TEST_PYTHON="$py"
else
  echo "== no Python environment for the ONNX Runtime tests: they are skipped (UNSUPPORTED)"
fi
if [ "${NNC_NO_TF:-0}" != 1 ] && py="$(bash "$root/tools/pyenv.sh" tf)"; then
  export NNC_TF_PYTHON="$py"
else
  echo "== no TensorFlow environment (or NNC_NO_TF=1): the Keras import tests are skipped (UNSUPPORTED)"
fi

if bash "$root/tools/build.sh"; then
  unit "$root/build"
  lit "$root/build"
else
  tally 0 1
fi

if [ "${NNC_TEST_QUICK:-0}" != 1 ]; then
  echo "== sanitizer build (ASan + UBSan)"
  if NNC_BUILD_DIR="$root/build-asan" NNC_CMAKE_ARGS="-DNNC_SANITIZE=ON" NNC_BUILD_TYPE=RelWithDebInfo \
      bash "$root/tools/build.sh"; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    unit "$root/build-asan"
    lit "$root/build-asan"
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    tally 0 1
  fi

  echo "== fuzz targets (short runs over their corpora)"
  for t in $(bash "$root/fuzz/run.sh" --list); do
    if bash "$root/fuzz/run.sh" "$t" -runs="${NNC_FUZZ_RUNS:-20000}"; then tally 1 0; else tally 0 1; fi
  done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
