#!/usr/bin/python3
"""Writes small numpy-made .npy files into tests/fixtures/npy/ for tests/test_npy.c.

Run from the repository root:  /usr/bin/python3 scripts/make_npy_fixtures.py
Values are simple formulas so the C test can recompute them:
  element k (C order) of every float/int array is  (k * 0.25 - 3)  cast to the dtype,
  bool arrays are k % 3 == 0, uint8 arrays are (k * 7) % 256.
"""
import os
import numpy as np

OUT = "tests/fixtures/npy"
os.makedirs(OUT, exist_ok=True)


def vals(shape, dtype):
    n = int(np.prod(shape)) if len(shape) else 1
    k = np.arange(n)
    if dtype == np.bool_:
        a = (k % 3 == 0)
    elif dtype == np.uint8:
        a = (k * 7) % 256
    else:
        a = k * 0.25 - 3
    return np.asarray(a, dtype=dtype).reshape(shape)


def save(name, a, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)


save("f4_2x3.npy", vals((2, 3), np.float32))
save("f8_4.npy", vals((4,), np.float64))
save("f8_scalar.npy", vals((), np.float64))
save("i4_3x2x2.npy", vals((3, 2, 2), np.int32))
save("i8_5.npy", vals((5,), np.int64))
save("u1_2x2x2.npy", vals((2, 2, 2), np.uint8))
save("b1_7.npy", vals((7,), np.bool_))
save("f4_empty_0x3.npy", vals((0, 3), np.float32))
save("f4_8d.npy", vals((1, 2, 1, 2, 1, 2, 1, 2), np.float32))
save("f4_2x3_v2.npy", vals((2, 3), np.float32), version=(2, 0))
save("f4_2x3_v3.npy", vals((2, 3), np.float32), version=(3, 0))
# Refused by the loaders:
save("f4_2x3_fortran.npy", np.asfortranarray(vals((2, 3), np.float32)))
save("f4_2x3_bigendian.npy", vals((2, 3), np.float32).astype(">f4"))
save("c8_2.npy", np.array([1 + 2j, 3 - 1j], dtype=np.complex64))
save("f2_3.npy", np.array([1, 2, 3], dtype=np.float16))
print("wrote", sorted(os.listdir(OUT)))
