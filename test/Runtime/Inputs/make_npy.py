"""Writes NumPy .npy and .npz files without NumPy (the format is simple), for
the npy(...)/npz(...) tests. Usage:
  make_npy.py npy OUT DESCR SHAPE VALUES...      e.g. npy x.npy '<f4' 3,2 1 2 3 4 5 6
  make_npy.py npz OUT [--deflate] NAME=NPYFILE...
  make_npy.py raw OUT HEADER                     a file with a hand-written header
"""
import struct
import sys
import zipfile

FORMATS = {'f4': 'f', 'f8': 'd', 'i1': 'b', 'i2': 'h', 'i4': 'i', 'i8': 'q', 'u1': 'B', 'u2': 'H', 'u4': 'I',
           'u8': 'Q', 'b1': '?'}


def npy_bytes(descr, shape, values, fortran=False, version=1):
    dims = ', '.join(str(d) for d in shape) + (',' if len(shape) == 1 else '')
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (descr, 'True' if fortran else 'False', dims)
    lenbytes = 2 if version == 1 else 4
    pad = 64 - (10 + lenbytes - 2 + len(header) + 1) % 64
    header += ' ' * (pad % 64) + '\n'
    out = b'\x93NUMPY' + bytes([version, 0]) + struct.pack('<H' if version == 1 else '<I', len(header))
    out += header.encode('latin1')
    order = '>' if descr[0] == '>' else '<'
    code = FORMATS[descr[1:]]
    for v in values:
        v = float(v) if code in 'fd' else (v.lower() == 'true' if code == '?' else int(v))
        out += struct.pack(order + code, v)
    return out


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == 'npy':
        descr, shape = sys.argv[3], [int(d) for d in sys.argv[4].split(',') if d]
        open(out, 'wb').write(npy_bytes(descr, shape, sys.argv[5:]))
    elif kind == 'npz':
        args = sys.argv[3:]
        method = zipfile.ZIP_STORED
        if args and args[0] == '--deflate':
            method, args = zipfile.ZIP_DEFLATED, args[1:]
        with zipfile.ZipFile(out, 'w', compression=method) as z:
            for a in args:
                name, path = a.split('=', 1)
                # As np.savez does: zip64 headers on every member.
                with z.open(name + '.npy', 'w', force_zip64=True) as f:
                    f.write(open(path, 'rb').read())
    elif kind == 'raw':
        header = sys.argv[3] + '\n'
        open(out, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() +
                              bytes(int(sys.argv[4]) if len(sys.argv) > 4 else 0))


main()
