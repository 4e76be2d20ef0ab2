#!/usr/bin/env bash
# Installs what is missing, builds everything, runs the GoogleTest units and
# every lit suite, and ends with the line `N passed, N failed`.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${NNC_BUILD_DIR:-$root/build}"
bash "$root/tools/setup.sh" || exit 1
bash "$root/tools/build.sh" || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
out="$(mktemp -d)"

echo "== unit tests"
"$build/test/unit/nnc-unittests" --gtest_brief=1 --gtest_output="json:$out/unit.json"
read -r up uf < <(/usr/bin/python3 - "$out/unit.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(j["tests"] - j["failures"] - j.get("disabled", 0), j["failures"])
except Exception:
    print(0, 1)
PY
)
passed=$((passed + up))
failed=$((failed + uf))

echo "== lit suites"
/usr/bin/python3 /usr/lib/llvm-14/build/utils/lit/lit.py -sv -j "$(nproc)" \
  --xunit-xml-output "$out/lit.xml" "$build/test"
read -r lp lf < <(/usr/bin/python3 - "$out/lit.xml" <<'PY'
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
passed=$((passed + lp))
failed=$((failed + lf))
rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
