"""Writes IDX files for a regression: u8 images [n, 2, 2] and their targets,
an IDX array (f32 [n, 1] by default, or f64 [n] with --f64), t = 0.01 * (p0 + 2 p1 - p2) + 0.5.
Usage: make_idx_targets.py IMAGES TARGETS N [--f64]"""
import random
import struct
import sys

images, targets, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
f64 = "--f64" in sys.argv
rng = random.Random(7)
pixels = [[rng.randrange(256) for _ in range(4)] for _ in range(n)]
with open(images, "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 2, 2))
    f.write(bytes(v for p in pixels for v in p))
t = [0.01 * (p[0] + 2 * p[1] - p[2]) + 0.5 for p in pixels]
with open(targets, "wb") as f:
    if f64:
        f.write(struct.pack(">II", 0x0E01, n))
        f.write(struct.pack(">%dd" % n, *t))
    else:
        f.write(struct.pack(">III", 0x0D02, n, 1))
        f.write(struct.pack(">%df" % n, *t))
