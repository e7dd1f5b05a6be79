#!/usr/bin/env python3
"""Writes a small DIR/TASK/CLASS/FILE image tree and the same pixels as npz
arrays, for tests/test_imagefolder.c.

    make_image_tree.py OUT [--seed S]

OUT/tree/      three tasks with awkward names (a leading dash, a space,
               UTF-8), 2-3 classes each, 10x12 PNGs of every kind tnmtl
               reads: grey 1/8/16 bit, RGB 8/16 bit, palette (with and
               without tRNS), grey+alpha, RGBA 8/16 bit; a subfolder in one
               class; hidden files that must be skipped.
OUT/rgb.npz    x (N, 10, 12, 3) uint8, y, task, task_names (compressed):
               what the tree must load as with the default channels (3).
OUT/grey.npz   x (N, 10, 12) uint8 and the same y, task, task_names plus a
               split column (uncompressed): the tree with channels 1.

The expected pixels follow tnmtl's decoding rules (src/image.h): alpha over
white, v' = (v a + 255 (255 - a) + 127) // 255; grey from colour
(19595 R + 38470 G + 7471 B + 32768) >> 16; 16-bit samples v * 257.  Needs
numpy only (the PNG writer is here, with zlib).
"""
import argparse
import os
import struct
import zlib

import numpy as np

H, W = 10, 12
TASKS = {
    "-dash task": ["a", "b"],
    "task A": ["cat", "dog", "red fox"],
    "z\u00e8bre \u00fcn\u00efcode": ["\u00e9t\u00e9", "hiver"],
}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(path, samples, colour_type, depth, palette=None, trns=None):
    """samples: (H, W, channels) integers at the file's bit depth."""
    h, w, _ = samples.shape
    raw = bytearray()
    for y in range(h):
        row = samples[y].reshape(-1)
        raw.append(0)
        if depth == 16:
            raw += row.astype(">u2").tobytes()
        elif depth == 8:
            raw += row.astype("u1").tobytes()
        else:
            per = 8 // depth
            for i in range(0, len(row), per):
                b = 0
                for k, v in enumerate(row[i:i + per]):
                    b |= int(v) << (8 - depth * (k + 1))
                raw.append(b)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))
    if palette is not None:
        png += chunk(b"PLTE", palette.astype("u1").tobytes())
    if trns is not None:
        png += chunk(b"tRNS", trns.astype("u1").tobytes())
    png += chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def over_white(v, a):
    return (v.astype(np.int64) * a + 255 * (255 - a.astype(np.int64)) + 127) // 255


def luma(rgb):
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return (19595 * r + 38470 * g + 7471 * b + 32768) >> 16


def make_image(rng, kind, path):
    """Writes one PNG of this kind; returns its expected RGB and grey pixels."""
    u8 = lambda *s: rng.integers(0, 256, size=s)
    if kind == 0:    # grey 8 bit
        g = u8(H, W)
        write_png(path, g[..., None], 0, 8)
        rgb = np.repeat(g[..., None], 3, axis=2)
        return rgb, g
    if kind == 1:    # grey 16 bit
        g = u8(H, W)
        write_png(path, (g * 257)[..., None], 0, 16)
        return np.repeat(g[..., None], 3, axis=2), g
    if kind == 2:    # RGB 8 bit
        rgb = u8(H, W, 3)
        write_png(path, rgb, 2, 8)
        return rgb, luma(rgb)
    if kind == 3:    # RGB 16 bit
        rgb = u8(H, W, 3)
        write_png(path, rgb * 257, 2, 16)
        return rgb, luma(rgb)
    if kind == 4:    # palette
        pal = u8(16, 3)
        idx = rng.integers(0, 16, size=(H, W))
        write_png(path, idx[..., None], 3, 8, palette=pal)
        rgb = pal[idx]
        return rgb, luma(rgb)
    if kind == 5:    # grey + alpha
        g, a = u8(H, W), u8(H, W)
        write_png(path, np.stack([g, a], axis=2), 4, 8)
        c = over_white(g, a)
        return np.repeat(c[..., None], 3, axis=2), c
    if kind == 6:    # RGBA 8 bit
        rgba = u8(H, W, 4)
        write_png(path, rgba, 6, 8)
        rgb = over_white(rgba[..., :3], rgba[..., 3:])
        return rgb, luma(rgb)
    if kind == 7:    # grey 1 bit
        g = rng.integers(0, 2, size=(H, W))
        write_png(path, g[..., None], 0, 1)
        return np.repeat((g * 255)[..., None], 3, axis=2), g * 255
    if kind == 8:    # palette with transparency (4 bit)
        pal, alpha = u8(16, 3), u8(16)
        idx = rng.integers(0, 16, size=(H, W))
        write_png(path, idx[..., None], 3, 4, palette=pal, trns=alpha)
        rgb = over_white(pal[idx], alpha[idx][..., None])
        return rgb, luma(rgb)
    rgba = u8(H, W, 4)  # RGBA 16 bit
    write_png(path, rgba * 257, 6, 16)
    rgb = over_white(rgba[..., :3], rgba[..., 3:])
    return rgb, luma(rgb)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tree = os.path.join(args.out, "tree")
    xs_rgb, xs_grey, ys, tasks = [], [], [], []
    kind = 0
    names = sorted(TASKS, key=lambda s: s.encode())
    for t, task in enumerate(names):
        for c, cls in enumerate(sorted(TASKS[task], key=lambda s: s.encode())):
            folder = os.path.join(tree, task, cls)
            os.makedirs(folder)
            files = ["img_%02d.png" % i for i in range(3 + (t + c) % 2)]
            if task == "task A" and cls == "dog":
                os.makedirs(os.path.join(folder, "sub"))
                files.append(os.path.join("sub", "deeper.png"))   # after the folder's own files
            for f in files:
                rgb, grey = make_image(rng, kind % 10, os.path.join(folder, f))
                kind += 1
                xs_rgb.append(rgb)
                xs_grey.append(grey)
                ys.append(c)
                tasks.append(t)
            with open(os.path.join(folder, ".hidden.png"), "wb") as f:
                f.write(b"not an image, but hidden")
        with open(os.path.join(tree, task, ".DS_Store"), "wb") as f:
            f.write(b"\0\0\0\1Bud1")
    os.makedirs(os.path.join(tree, ".ipynb_checkpoints", "x"))
    x_rgb = np.array(xs_rgb, dtype=np.uint8)
    x_grey = np.array(xs_grey, dtype=np.uint8)
    y = np.array(ys, dtype=np.int64)
    task = np.array(tasks, dtype=np.int32)
    task_names = np.array(names)
    split = np.array(["train", "test", "validation"] * len(y))[:len(y)]
    split[np.searchsorted(task, np.arange(len(names)))] = "train"   # every task trains
    np.savez_compressed(os.path.join(args.out, "rgb.npz"), x=x_rgb, y=y, task=task, task_names=task_names)
    np.savez(os.path.join(args.out, "grey.npz"), x=x_grey, y=y.astype(np.int32), task=task.astype(np.int64),
             task_names=task_names, split=split)


if __name__ == "__main__":
    main()
