"""Reads a PNG file with zlib alone (8-bit gray or RGB, filter 0, as nnc
sample writes it) and prints its size, its channels and its pixel range; the
chunk CRCs and the row filters are checked."""
import struct
import sys
import zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
pos, chunks = 8, []
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    assert crc == zlib.crc32(kind + body), f"bad CRC in {kind}"
    chunks.append((kind, body))
    pos += 12 + n
assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
w, h, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
channels = {0: 1, 2: 3}[color]
raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
stride = w * channels + 1
assert len(raw) == h * stride, "wrong amount of pixel data"
assert all(raw[r * stride] == 0 for r in range(h)), "a row filter is not 0"
pixels = [raw[r * stride + 1 + c] for r in range(h) for c in range(w * channels)]
print(f"png {w}x{h}, {channels} channel(s), depth {depth}, pixels {min(pixels)}..{max(pixels)}")
