"""Writes small good and bad input files for the test/Runtime suite, so no
binary fixture is committed.

  make_bad.py KIND OUT [N]

IDX files hold 2x2 u8 images (4 features), matching Inputs/idx4.nn:

  idx-images OUT                 3 valid images
  idx-labels OUT                 3 valid labels (0, 1, 2)
  idx-labels-n OUT N             N valid labels
  idx-wrong-magic OUT            an image file whose magic is 0x12345678
  idx-truncated-header OUT       the magic, then 6 of the 12 dimension bytes
  idx-truncated-data OUT         a header for 3 images, then 7 of 12 pixels
  idx-images-gz OUT              1024 noisy images, gzipped with stored
                                 (uncompressed) deflate blocks, so a cut at
                                 byte k leaves exactly k - 31 image bytes
  gzip-corrupt OUT               a gzip stream whose deflate data is garbage

safetensors checkpoints for Inputs/m4.nn (logits.w f32[4, 3], logits.b
f32[3]), each bad in exactly one way:

  st-good OUT                    a valid checkpoint
  st-header-past-end OUT         header length 4096 in a 200-byte file
  st-header-absurd OUT           header length 2^40
  st-malformed-json OUT          the header is not JSON
  st-f16 OUT                     logits.b is F16
  st-offsets-out-of-bounds OUT   logits.b ends past the data section
  st-offsets-mismatch OUT        logits.b holds 8 bytes, f32[3] needs 12
  st-overlap OUT                 logits.b and logits.w share bytes
  st-extra-tensor OUT            an extra tensor 'foo'
  st-missing-param OUT           no logits.b
  st-wrong-shape OUT             logits.w is f32[3, 4]
  st-wrong-dtype OUT             logits.b is I64
  st-bad-seed OUT                metadata nnc.seed is "abc"
  st-nan OUT                     logits.w holds NaNs
"""
import gzip
import json
import random
import struct
import sys


def idx_images(n, rows, cols, pixels=None, magic=0x00000803):
    head = struct.pack(">IIII", magic, n, rows, cols)
    if pixels is None:
        pixels = bytes((i * 37) % 256 for i in range(n * rows * cols))
    return head + pixels


def idx_labels(labels, magic=0x00000801):
    return struct.pack(">II", magic, len(labels)) + bytes(labels)


def safetensors(tensors, header_override=None, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, chunks = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    if header_override:
        header_override(header)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


W = ("logits.w", "F32", [4, 3], f32([0.1 * i for i in range(12)]))
B = ("logits.b", "F32", [3], f32([0.0, 0.5, -0.5]))


def main():
    kind, out = sys.argv[1], sys.argv[2]
    data = None
    if kind == "idx-images":
        data = idx_images(3, 2, 2)
    elif kind == "idx-labels":
        data = idx_labels([0, 1, 2])
    elif kind == "idx-labels-n":
        data = idx_labels([i % 3 for i in range(int(sys.argv[3]))])
    elif kind == "idx-wrong-magic":
        data = idx_images(3, 2, 2, magic=0x12345678)
    elif kind == "idx-truncated-header":
        data = idx_images(3, 2, 2)[:4 + 6]
    elif kind == "idx-truncated-data":
        data = idx_images(3, 2, 2)[:16 + 7]
    elif kind == "idx-images-gz":
        rng = random.Random(1)
        pixels = bytes(rng.randrange(256) for _ in range(1024 * 2 * 2))
        data = gzip.compress(idx_images(1024, 2, 2, pixels), compresslevel=0, mtime=0)
    elif kind == "gzip-corrupt":
        good = gzip.compress(idx_images(3, 2, 2), mtime=0)
        # Keep the 10-byte gzip header; replace the deflate data with a block
        # of the reserved type 3 (an invalid block type).
        data = good[:10] + b"\xff" * (len(good) - 10)
    elif kind == "st-good":
        data = safetensors([W, B], metadata={"nnc.model": "M"})
    elif kind == "st-header-past-end":
        data = struct.pack("<Q", 4096) + b"{" + b" " * 191
    elif kind == "st-header-absurd":
        data = struct.pack("<Q", 1 << 40) + b"{}      "
    elif kind == "st-malformed-json":
        h = b'{"logits.w": {"dtype": "F32",'
        h += b" " * ((8 - len(h) % 8) % 8)
        data = struct.pack("<Q", len(h)) + h + b"\0" * 60
    elif kind == "st-f16":
        data = safetensors([W, ("logits.b", "F16", [3], b"\0" * 6)])
    elif kind == "st-offsets-out-of-bounds":
        def grow(h):
            h["logits.b"]["data_offsets"] = [48, 1048]
        data = safetensors([W, B], grow)
    elif kind == "st-offsets-mismatch":
        def shrink(h):
            h["logits.b"]["data_offsets"] = [48, 56]
        data = safetensors([W, B], shrink)
    elif kind == "st-overlap":
        def overlap(h):
            h["logits.b"]["data_offsets"] = [40, 52]
        data = safetensors([W, B], overlap)
    elif kind == "st-extra-tensor":
        data = safetensors([W, B, ("foo", "F32", [2], f32([1, 2]))])
    elif kind == "st-missing-param":
        data = safetensors([W])
    elif kind == "st-wrong-shape":
        data = safetensors([("logits.w", "F32", [3, 4], W[3]), B])
    elif kind == "st-wrong-dtype":
        data = safetensors([W, ("logits.b", "I64", [3], struct.pack("<3q", 0, 1, 2))])
    elif kind == "st-bad-seed":
        data = safetensors([W, B], metadata={"nnc.model": "M", "nnc.seed": "abc"})
    elif kind == "st-nan":
        data = safetensors([("logits.w", "F32", [4, 3], f32([float("nan")] * 12)), B])
    else:
        sys.exit("make_bad.py: unknown kind '%s'" % kind)
    with open(out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
