# lit configuration for nnc's test suites (Frontend, IR, Transforms, CodeGen,
# Runtime, E2E). Tests use %nnc, %nnc-opt, FileCheck, not, and %examples.
import os
import shutil
import subprocess
import lit.formats

config.name = "nnc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".nn", ".nnir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nnc_obj_root, "test")

config.environment["PATH"] = os.pathsep.join(
    [config.nnc_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ.get("PATH", ""))])
config.environment["NO_COLOR"] = "1"
# Tests compile from scratch and never touch the user's compile cache; the
# cache's own tests name a directory of their own (NNC_CACHE_DIR=%t...).
config.environment["NNC_CACHE"] = "off"
for var in ["HOME", "TMPDIR", "LANG"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]

config.substitutions.append(("%nnc-opt", os.path.join(config.nnc_tools_dir, "nnc-opt")))
config.substitutions.append(("%nnc", os.path.join(config.nnc_tools_dir, "nnc")))
config.substitutions.append(("%examples", os.path.join(config.nnc_src_root, "examples")))
config.substitutions.append(("%python", "/usr/bin/python3"))

# Features
if os.path.isdir("/usr/share/datasets/fashion-mnist"):
    config.available_features.add("fashion-mnist")
if os.path.isfile("/usr/share/games/fortunes/cookie"):
    config.available_features.add("fortunes")
try:
    subprocess.run(["/usr/bin/python3", "-c", "import torch, numpy"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    config.available_features.add("torch")
except Exception:
    pass
# The tests' own Python environment with onnx and onnxruntime (tools/pyenv.sh
# makes it; tools/test.sh passes it as NNC_TEST_PYTHON). Without it, the
# tests that need it are UNSUPPORTED.
test_python = os.environ.get("NNC_TEST_PYTHON", "")
if not test_python:
    try:
        test_python = subprocess.run(["bash", os.path.join(config.nnc_src_root, "tools", "pyenv.sh")],
                                     capture_output=True, text=True, timeout=1200).stdout.strip()
    except Exception:
        test_python = ""
if test_python and os.access(test_python, os.X_OK):
    try:
        subprocess.run([test_python, "-c", "import onnx, onnxruntime, numpy"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        config.available_features.add("onnxruntime")
        config.substitutions.append(("%ort-python", test_python))
    except Exception:
        pass
# TensorFlow and tf2onnx (tools/pyenv.sh tf; tools/test.sh passes it as
# NNC_TF_PYTHON), for the Keras import tests. Only where tools/test.sh made
# it: lit alone does not download TensorFlow.
tf_python = os.environ.get("NNC_TF_PYTHON", "")
if tf_python and os.access(tf_python, os.X_OK):
    config.available_features.add("tensorflow")
    config.substitutions.append(("%tf-python", tf_python))
# Sanitizer builds run the unit and lit suites too; the long training tests
# say `UNSUPPORTED: sanitize` and run in Release only.
if getattr(config, "nnc_sanitize", False):
    config.available_features.add("sanitize")
    for var in ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]:
        if var in os.environ:
            config.environment[var] = os.environ[var]
