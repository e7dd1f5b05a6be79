#!/usr/bin/python3
"""PyTorch reference for the core engine: the paper's Omniglot network.

    /usr/bin/python3 scripts/make_torch_fixtures.py [outdir]

Builds conv8@5x5 valid, tanh, pool2, conv12@3x3, tanh, pool2, conv16@3x3,
tanh, pool2, fc64, tanh, fc20 at 105x105x1 in float32 with PyTorch's default
initialisation (seeded), runs a batch of 3 random images, and writes into
tests/fixtures/torch_omniglot/ (float32 unless noted), all in tnmtl's layouts:

  x.npy             [B][105][105][1]   input, NHWC
  labels.npy        [B] int32
  conv{1,2,3}_w.npy [kh][kw][c_in][c_out]  (PyTorch OIHW permuted to HWIO)
  conv{1,2,3}_b.npy [c_out]
  fc1_w.npy         [1936][64]  rows in NHWC flatten order (h, w, c); PyTorch
                                flattens NCHW (c, h, w), so its columns are permuted
  fc1_b.npy, fc2_w.npy [64][20], fc2_b.npy
  logits.npy        [B][20]
  loss.npy          [1]         mean cross-entropy
  g_<param>.npy     gradient of the loss for each parameter, same layout
  dx.npy            [B][105][105][1]   gradient of the loss for the input
  adam_losses.npy   [6]  loss before each of 5 Adam steps (lr 1e-3) on this
                         batch, and after the last one
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

B, H, C_OUT = 3, 105, 20


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "torch_omniglot")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20160613)
    torch.set_num_threads(1)

    net = nn.Sequential(
        nn.Conv2d(1, 8, 5), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(12, 16, 3), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1936, 64), nn.Tanh(), nn.Linear(64, C_OUT))
    conv = [net[0], net[3], net[6]]
    fc = [net[10], net[12]]

    # uniform [0, 1) pixels: continuous values, so max-pooling has no ties
    x = torch.rand(B, 1, H, H)
    labels = torch.randint(0, C_OUT, (B,))
    x.requires_grad_(True)

    def save(name, a, dtype=np.float32):
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(a, dtype=dtype))

    def nhwc(t):  # [B][C][H][W] -> [B][H][W][C]
        return t.detach().numpy().transpose(0, 2, 3, 1)

    def hwio(w):  # [O][I][kh][kw] -> [kh][kw][I][O]
        return w.detach().numpy().transpose(2, 3, 1, 0)

    def fc1_rows(w):  # [64][C*H*W] (NCHW flatten) -> [H*W*C][64] (NHWC flatten)
        w = w.detach().numpy()
        return w.reshape(w.shape[0], 16, 11, 11).transpose(2, 3, 1, 0).reshape(1936, w.shape[0])

    def params(prefix, grad):
        pick = (lambda p: p.grad) if grad else (lambda p: p)
        for i, m in enumerate(conv):
            save(f"{prefix}conv{i + 1}_w", hwio(pick(m.weight)))
            save(f"{prefix}conv{i + 1}_b", pick(m.bias).detach().numpy())
        save(f"{prefix}fc1_w", fc1_rows(pick(fc[0].weight)))
        save(f"{prefix}fc1_b", pick(fc[0].bias).detach().numpy())
        save(f"{prefix}fc2_w", pick(fc[1].weight).detach().numpy().T)
        save(f"{prefix}fc2_b", pick(fc[1].bias).detach().numpy())

    save("x", nhwc(x))
    save("labels", labels.numpy(), np.int32)
    params("", grad=False)

    loss_fn = nn.CrossEntropyLoss()
    logits = net(x)
    loss = loss_fn(logits, labels)
    loss.backward()
    save("logits", logits.detach().numpy())
    save("loss", np.array([loss.item()]))
    params("g_", grad=True)
    save("dx", nhwc(x.grad))

    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    xd = x.detach()
    for _ in range(5):
        opt.zero_grad()
        step_loss = loss_fn(net(xd), labels)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())
    with torch.no_grad():
        losses.append(loss_fn(net(xd), labels).item())
    save("adam_losses", np.array(losses))
    print("loss %.6f, Adam losses %s -> %s" % (loss.item(), losses, os.path.normpath(out)))


if __name__ == "__main__":
    main()
