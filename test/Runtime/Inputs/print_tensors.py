"""Prints 'name dtype [shape] values...' for the named tensors of a safetensors file."""
import json
import struct
import sys

blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
fmt = {"F32": "f", "I64": "q"}
for name in sys.argv[2:]:
    t = header[name]
    b, e = t["data_offsets"]
    count = (e - b) // struct.calcsize(fmt[t["dtype"]])
    vals = struct.unpack(f"<{count}{fmt[t['dtype']]}", blob[8 + n + b:8 + n + e])
    print(name, t["dtype"].lower(), t["shape"], *vals)
