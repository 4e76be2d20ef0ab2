"""Compares two prediction files of digits (row,class,probability,label):
the same classes and labels on every row, probabilities within TOL.

    compare_predictions.py A.csv B.csv TOL
"""
import sys


def main(a, b, tol):
    rows_a, rows_b = open(a).read().splitlines(), open(b).read().splitlines()
    if len(rows_a) != len(rows_b) or rows_a[0] != rows_b[0]:
        print(f"different: {len(rows_a)} and {len(rows_b)} lines")
        return 1
    worst = 0.0
    for x, y in zip(rows_a[1:], rows_b[1:]):
        p, q = x.split(","), y.split(",")
        if p[0] != q[0] or p[1] != q[1] or p[3] != q[3]:
            print(f"different: {x} and {y}")
            return 1
        worst = max(worst, abs(float(p[2]) - float(q[2])))
    if worst > tol:
        print(f"probabilities differ by {worst:g}")
        return 1
    print(f"same classes, probabilities within {tol:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
