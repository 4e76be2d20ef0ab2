"""nnc compile of every example in EXAMPLES into OUT/<example>/, then for
each: the header compiles as C99 and C++17 with warnings as errors, and the
shared library's defined dynamic symbols all start with the model's prefix.
Prints '<example>: <prefix> ok' per example, or what failed, and a summary.

    compile_all.py NNC EXAMPLES OUT
"""
import glob
import os
import subprocess
import sys


def main(nnc, examples, out):
    files = sorted(glob.glob(os.path.join(examples, "*.nn")))
    ok = 0
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        r = subprocess.run([nnc, "compile", path, "-o", d], capture_output=True, text=True)
        if r.returncode:
            print(f"{name}: nnc compile failed: {r.stderr.strip()}")
            continue
        header = [f for f in os.listdir(d) if f.endswith(".h")][0]
        prefix = header[:-2]
        failed = ""
        for cmd in (["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", "c"],
                    ["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++"]):
            c = subprocess.run(cmd + [os.path.join(d, header)], capture_output=True, text=True)
            if c.returncode:
                failed += f" {cmd[0]}: {c.stderr.strip()}"
        nm = subprocess.run(["nm", "-D", "--defined-only", os.path.join(d, f"lib{prefix}.so")],
                            capture_output=True, text=True)
        foreign = [l.split()[-1] for l in nm.stdout.splitlines() if not l.split()[-1].startswith(prefix + "_")]
        if nm.returncode or foreign:
            failed += f" exports {foreign or nm.stderr.strip()}"
        if failed:
            print(f"{name}: {prefix}{failed}")
        else:
            print(f"{name}: {prefix} ok")
            ok += 1
    print(f"all {ok} compiled" if ok == len(files) else f"{ok} of {len(files)} compiled")
    return 0 if ok == len(files) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
