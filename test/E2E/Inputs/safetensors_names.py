"""Prints each tensor of a safetensors file as 'name DTYPE [shape]', sorted,
then its metadata; checks the offsets cover the buffer without gaps."""
import json
import struct
import sys

blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
meta = header.pop("__metadata__", {})
spans = sorted(v["data_offsets"] for v in header.values())
end = 0
for b, e in spans:
    assert b == end, "gap or overlap in data_offsets"
    end = e
assert 8 + n + end == len(blob), "buffer size does not match the header"
for name in sorted(header):
    print(name, header[name]["dtype"], json.dumps(header[name]["shape"]).replace(",", ", ").replace("  ", " "))
for k in sorted(meta):
    print(f"metadata {k}={meta[k]}")
