#!/usr/bin/python3
"""Writes tests/fixtures/safetensors/python.safetensors the way the reference
`safetensors` package lays files out (which is not installed here): an 8-byte
little-endian header length, compact JSON with "__metadata__" first, tensors
ordered by element size (largest first) then name, the header padded with
spaces to a multiple of 8, then the data.  Uses only json, struct and numpy.

    /usr/bin/python3 scripts/make_safetensors_fixture.py
    /usr/bin/python3 scripts/make_safetensors_fixture.py --check FILE   # read FILE back, print it

tests/test_safetensors.c checks the values written here, and --check reads a
file written by tnmtl (the same parser the reference uses: json + offsets).
"""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {np.dtype("bool"): "BOOL", np.dtype("uint8"): "U8", np.dtype("int8"): "I8",
          np.dtype("<u2"): "U16", np.dtype("<i2"): "I16", np.dtype("<f2"): "F16",
          np.dtype("<u4"): "U32", np.dtype("<i4"): "I32", np.dtype("<f4"): "F32",
          np.dtype("<u8"): "U64", np.dtype("<i8"): "I64", np.dtype("<f8"): "F64"}


def tensors():
    return {
        "weight": (np.arange(6, dtype="<f4").reshape(2, 3) * 0.5 - 1.0),
        "ids": np.array([-1, 0, 2**40], dtype="<i8"),
        "mask": np.array([[0, 1], [255, 7]], dtype="uint8"),
        "scalar": np.array(np.pi, dtype="<f8"),
        "empty": np.zeros((0, 3), dtype="<f4"),
        "half": np.array([1.5, -2.0], dtype="<f2"),
        "layer.0/bias": np.array([0.25, -0.125, 3.0], dtype="<f4"),
    }


METADATA = {"format": "pt", "note": "h\u00e9llo \"quoted\" \\ back"}


def serialize(ts, metadata):
    order = sorted(ts, key=lambda k: (-ts[k].dtype.itemsize, k))
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for k in order:
        a = ts[k]
        b = a.tobytes(order="C")  # (np.ascontiguousarray would make a scalar 1-D)
        header[k] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def check(path):
    """Reads a safetensors file with json + numpy and prints what it holds."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    names = {v: k for k, v in DTYPES.items()}
    print("metadata", header.pop("__metadata__", {}))
    end = 0
    for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = v["data_offsets"]
        assert b == end, f"{k}: gap or overlap at {b}"
        end = e
        a = np.frombuffer(data[b:e], dtype=names[v["dtype"]]).reshape(v["shape"])
        print(k, v["dtype"], list(a.shape), a.ravel()[:8].tolist())
    assert end == len(data), "unused bytes at the end"
    assert (8 + n) % 8 == 0, "data area not 8-aligned"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = os.path.join(root, "tests", "fixtures", "safetensors")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "python.safetensors")
    with open(path, "wb") as f:
        f.write(serialize(tensors(), METADATA))
    print("wrote", path)
    check(path)


if __name__ == "__main__":
    main()
