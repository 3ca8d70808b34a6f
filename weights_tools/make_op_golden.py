#!/usr/bin/python3
"""PyTorch reference values for every CPU op of thaw (kernels/ops.h), forward and backward.

    /usr/bin/python3 weights_tools/make_op_golden.py --out build/golden/ops.h5 [--seed 0]

One HDF5 group per named case (the table CASES below), read by tests/test_ops_vs_torch.cpp:
  - attributes: op (conv2d, batch_norm2d, ...) and the op's hyper-parameters (stride_h, pad_w, momentum, ...);
    flags are stored as int 0/1;
  - inputs as float32 (labels int64): thaw runs float32 on exactly these values;
  - references as float64: computed by torch in float64 from the float32 inputs, so the reference's own
    rounding error is negligible next to thaw's float32 error;
  - backward: a random upstream gradient dy (stored, float32) and the gradients of sum(y * dy) from
    torch.autograd (dx, dw, db, ...). Losses are 0-d; their upstream gradient is the scalar dloss.
The root attribute "cases" lists the case names, comma-separated, in table order.

Needs Debian's python3-torch, h5py and numpy (scripts/install-deps.sh); a pyenv/venv python has no torch.
"""
import argparse
import math
import os
import time
import zlib

from common import atomic_path, import_or_exit

torch = import_or_exit("torch", "python3-torch")
F = import_or_exit("torch.nn.functional", "python3-torch")
h5py = import_or_exit("h5py", "python3-h5py")


# ---- inputs ----------------------------------------------------------------------------------------------

def randn(gen, *shape, mean=0.0, std=1.0):
    """float32 normal values: an input as thaw will see it."""
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * std + mean).float()


def uniform(gen, *shape, low=0.0, high=1.0):
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low).float()


def leaf(t):
    """The float64 copy of a float32 input that the reference differentiates through (None stays None)."""
    return None if t is None else t.double().requires_grad_()


def pair(v):
    """(h, w) from an int or a pair."""
    return (v, v) if isinstance(v, int) else tuple(v)


def grads_of(y, dy, inputs):
    """Gradients of sum(y * dy) with respect to inputs (float64)."""
    return torch.autograd.grad((y * dy.double()).sum(), inputs)


# ---- one function per op: returns (attributes, {dataset name: tensor}) ------------------------------------

def conv2d_case(gen, n, c, k, hw, kernel, stride=1, pad=0, bias=False):
    hw, kernel, stride, pad = pair(hw), pair(kernel), pair(stride), pair(pad)
    r, s = kernel
    x = randn(gen, n, c, *hw)
    w = randn(gen, k, c, r, s, std=1 / math.sqrt(c * r * s))  # Kaiming-like: y stays O(1)
    b = randn(gen, k) if bias else None
    x64, w64, b64 = leaf(x), leaf(w), leaf(b)
    y = F.conv2d(x64, w64, b64, stride=stride, padding=pad)
    dy = randn(gen, *y.shape)
    dx, dw, *db = grads_of(y, dy, [x64, w64] + ([b64] if bias else []))
    attrs = dict(op="conv2d", stride_h=stride[0], stride_w=stride[1], pad_h=pad[0], pad_w=pad[1], has_bias=int(bias))
    data = dict(x=x, w=w, dy=dy, y=y, dx=dx, dw=dw)
    if bias:
        data.update(b=b, db=db[0])
    return attrs, data


def batch_norm2d_case(gen, shape, train, offset=0.0, momentum=0.1, eps=1e-5):
    c = shape[1]
    x = randn(gen, *shape, mean=offset)
    gamma = randn(gen, c, mean=1.0, std=0.3)
    beta = randn(gen, c, std=0.3)
    running_mean = randn(gen, c, mean=offset, std=0.5)
    running_var = uniform(gen, c, low=0.5, high=2.0)
    x64, gamma64, beta64 = leaf(x), leaf(gamma), leaf(beta)
    rm64, rv64 = running_mean.double(), running_var.double()  # updated in place by a train-mode call
    y = F.batch_norm(x64, rm64, rv64, gamma64, beta64, training=train, momentum=momentum, eps=eps)
    dy = randn(gen, *shape)
    dx, dgamma, dbeta = grads_of(y, dy, [x64, gamma64, beta64])
    # The statistics the forward normalised with (BatchNormForward.mean / .invstd).
    if train:
        dims = [d for d in range(len(shape)) if d != 1]
        mean = x.double().mean(dim=dims)
        var = x.double().var(dim=dims, unbiased=False)
    else:
        mean, var = running_mean.double(), running_var.double()
    attrs = dict(op="batch_norm2d", train=int(train), momentum=momentum, eps=eps)
    data = dict(x=x, gamma=gamma, beta=beta, running_mean_before=running_mean, running_var_before=running_var, dy=dy,
                y=y, mean=mean, invstd=1 / torch.sqrt(var + eps), dx=dx, dgamma=dgamma, dbeta=dbeta,
                running_mean_after=rm64, running_var_after=rv64)
    return attrs, data


def relu_case(gen, shape):
    x = randn(gen, *shape)
    x = torch.where(x >= 0, x + 1e-3, x - 1e-3)  # no input within 1e-3 of the kink at 0
    x64 = leaf(x)
    y = F.relu(x64)
    dy = randn(gen, *shape)
    (dx,) = grads_of(y, dy, [x64])
    return dict(op="relu"), dict(x=x, dy=dy, y=y, dx=dx)


def max_pool2d_case(gen, shape, kernel, stride, pad=0):
    kernel, stride, pad = pair(kernel), pair(stride), pair(pad)
    # A scaled permutation: every value distinct (and exact in float32), so each window's argmax is unique.
    count = math.prod(shape)
    x = ((torch.randperm(count, generator=gen) - count // 2).double() / 16).float().reshape(shape)
    x64 = leaf(x)
    y, argmax = F.max_pool2d(x64, kernel, stride, pad, return_indices=True)
    dy = randn(gen, *y.shape)
    (dx,) = grads_of(y, dy, [x64])
    attrs = dict(op="max_pool2d", kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                 pad_h=pad[0], pad_w=pad[1])
    return attrs, dict(x=x, dy=dy, y=y, argmax=argmax, dx=dx)  # argmax: int64 index h*W + w in the plane


def global_avg_pool2d_case(gen, shape):
    x = randn(gen, *shape)
    x64 = leaf(x)
    y = F.adaptive_avg_pool2d(x64, 1)
    dy = randn(gen, *y.shape)
    (dx,) = grads_of(y, dy, [x64])
    return dict(op="global_avg_pool2d"), dict(x=x, dy=dy, y=y, dx=dx)


def linear_case(gen, n, inputs, outputs, bias):
    x = randn(gen, n, inputs)
    w = randn(gen, outputs, inputs, std=1 / math.sqrt(inputs))
    b = randn(gen, outputs) if bias else None
    x64, w64, b64 = leaf(x), leaf(w), leaf(b)
    y = F.linear(x64, w64, b64)
    dy = randn(gen, *y.shape)
    dx, dw, *db = grads_of(y, dy, [x64, w64] + ([b64] if bias else []))
    data = dict(x=x, w=w, dy=dy, y=y, dx=dx, dw=dw)
    if bias:
        data.update(b=b, db=db[0])
    return dict(op="linear", has_bias=int(bias)), data


def cross_entropy_case(gen, n, classes, weighted, scale=1.0):
    logits = randn(gen, n, classes, std=scale)
    labels = torch.randint(classes, (n,), generator=gen)  # int64
    weights = uniform(gen, classes, low=0.2, high=2.0) if weighted else None
    logits64 = leaf(logits)
    loss = F.cross_entropy(logits64, labels, weight=None if weights is None else weights.double())
    dloss = randn(gen)  # 0-d
    (dlogits,) = grads_of(loss, dloss, [logits64])
    data = dict(logits=logits, labels=labels, dloss=dloss, loss=loss, probs=F.softmax(logits64, dim=1),
                dlogits=dlogits)
    if weighted:
        data.update(class_weights=weights)
    return dict(op="cross_entropy", weighted=int(weighted)), data


def bce_with_logits_case(gen, shape, scale=1.0):
    logits = randn(gen, *shape, std=scale)
    targets = (torch.rand(shape, generator=gen) < 0.5).float()
    logits64 = leaf(logits)
    loss = F.binary_cross_entropy_with_logits(logits64, targets.double())  # mean over elements
    dloss = randn(gen)
    (dlogits,) = grads_of(loss, dloss, [logits64])
    return dict(op="bce_with_logits"), dict(logits=logits, targets=targets, dloss=dloss, loss=loss, dlogits=dlogits)


def add_case(gen, shape):
    a, b = randn(gen, *shape), randn(gen, *shape)
    return dict(op="add"), dict(a=a, b=b, y=a.double() + b.double())


# ---- the table --------------------------------------------------------------------------------------------

CASES = [
    # conv2d: ResNet's kinds of layer, then edge cases. hw, kernel, stride, pad: an int or an (h, w) pair.
    ("conv3x3_s1_p1", conv2d_case, dict(n=2, c=8, k=16, hw=10, kernel=3, pad=1, bias=True)),
    ("conv3x3_s1_p1_nobias", conv2d_case, dict(n=2, c=8, k=16, hw=10, kernel=3, pad=1)),
    # conv1 (C=3); 32x32 outputs: 1024 columns per image, so 3 images make GEMM groups of 2 + 1.
    ("conv7x7_s2_p3_c3", conv2d_case, dict(n=3, c=3, k=8, hw=64, kernel=7, stride=2, pad=3)),
    ("conv7x7_s2_p3_c3_bias", conv2d_case, dict(n=2, c=3, k=8, hw=20, kernel=7, stride=2, pad=3, bias=True)),
    ("conv1x1_s2_p0_downsample", conv2d_case, dict(n=2, c=8, k=16, hw=10, kernel=1, stride=2)),
    ("conv1x1_s1_p0_bottleneck", conv2d_case, dict(n=3, c=16, k=8, hw=7, kernel=1, bias=True)),
    ("conv3x3_s2_p1_odd_13x11", conv2d_case, dict(n=2, c=4, k=6, hw=(13, 11), kernel=3, stride=2, pad=1, bias=True)),
    ("conv3x3_s1_p1_n1", conv2d_case, dict(n=1, c=5, k=7, hw=(6, 9), kernel=3, pad=1)),
    ("conv3x2_s21_p01", conv2d_case,
     dict(n=2, c=3, k=5, hw=(9, 8), kernel=(3, 2), stride=(2, 1), pad=(0, 1), bias=True)),
    # Real ResNet-18 layers at N=1.
    ("resnet18_layer1_conv3x3", conv2d_case, dict(n=1, c=64, k=64, hw=56, kernel=3, pad=1)),
    ("resnet18_layer3_downsample", conv2d_case, dict(n=1, c=128, k=256, hw=28, kernel=1, stride=2)),
    ("resnet18_layer4_conv3x3_s2", conv2d_case, dict(n=1, c=256, k=512, hw=14, kernel=3, stride=2, pad=1)),
    # batch_norm2d: momentum 0.1, eps 1e-5 (PyTorch's defaults).
    ("bn_train", batch_norm2d_case, dict(shape=(4, 8, 5, 5), train=True)),
    ("bn_train_n1", batch_norm2d_case, dict(shape=(1, 6, 4, 5), train=True)),
    ("bn_train_offset100", batch_norm2d_case, dict(shape=(4, 4, 6, 6), train=True, offset=100.0)),
    ("bn_train_2d", batch_norm2d_case, dict(shape=(16, 10), train=True)),
    ("bn_train_parallel", batch_norm2d_case, dict(shape=(8, 16, 17, 17), train=True)),  # > 32768: the OpenMP path
    ("bn_eval", batch_norm2d_case, dict(shape=(2, 8, 6, 6), train=False)),
    ("bn_eval_n1_offset100", batch_norm2d_case, dict(shape=(1, 4, 3, 5), train=False, offset=100.0)),
    # relu
    ("relu_4d", relu_case, dict(shape=(2, 8, 7, 7))),
    ("relu_2d", relu_case, dict(shape=(5, 13))),
    # max_pool2d: ResNet's 3x3 s2 p1 (at its 112x112 planes, 16 of its 64 channels) and a plain 2x2 s2.
    ("maxpool3x3_s2_p1", max_pool2d_case, dict(shape=(2, 4, 16, 16), kernel=3, stride=2, pad=1)),
    ("maxpool3x3_s2_p1_odd_13x11", max_pool2d_case, dict(shape=(1, 3, 13, 11), kernel=3, stride=2, pad=1)),
    ("maxpool2x2_s2_p0", max_pool2d_case, dict(shape=(2, 3, 8, 8), kernel=2, stride=2)),
    ("maxpool2x2_s2_p0_odd_9x7", max_pool2d_case, dict(shape=(2, 2, 9, 7), kernel=2, stride=2)),
    ("resnet18_maxpool", max_pool2d_case, dict(shape=(1, 16, 112, 112), kernel=3, stride=2, pad=1)),
    # global average pool
    ("global_avg_pool2d_7x7", global_avg_pool2d_case, dict(shape=(2, 16, 7, 7))),
    ("global_avg_pool2d_odd_n1", global_avg_pool2d_case, dict(shape=(1, 8, 13, 11))),
    ("global_avg_pool2d_1x1", global_avg_pool2d_case, dict(shape=(3, 5, 1, 1))),
    # linear
    ("linear", linear_case, dict(n=4, inputs=32, outputs=10, bias=True)),
    ("linear_nobias", linear_case, dict(n=4, inputs=32, outputs=10, bias=False)),
    ("linear_n1", linear_case, dict(n=1, inputs=7, outputs=3, bias=True)),
    ("resnet18_fc", linear_case, dict(n=2, inputs=512, outputs=1000, bias=True)),
    # softmax cross-entropy
    ("xent", cross_entropy_case, dict(n=8, classes=10, weighted=False)),
    ("xent_weighted", cross_entropy_case, dict(n=8, classes=10, weighted=True)),
    ("xent_n1", cross_entropy_case, dict(n=1, classes=5, weighted=False)),
    ("xent_n1_weighted", cross_entropy_case, dict(n=1, classes=5, weighted=True)),
    ("xent_large_logits", cross_entropy_case, dict(n=6, classes=7, weighted=False, scale=50.0)),
    # binary cross-entropy on logits (mean)
    ("bce_with_logits", bce_with_logits_case, dict(shape=(8, 3))),
    ("bce_with_logits_one", bce_with_logits_case, dict(shape=(1,))),
    ("bce_with_logits_large", bce_with_logits_case, dict(shape=(4, 5), scale=40.0)),
    # add
    ("add", add_case, dict(shape=(2, 3, 4, 5))),
]


def write_case(group, attrs, data):
    for key, value in attrs.items():
        group.attrs[key] = value
    for key, tensor in data.items():
        # Inputs were made float32 (labels int64); references come out of torch's float64 computation.
        group.create_dataset(key, data=tensor.detach().numpy())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="HDF5 file to write (parent folders are created)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.time()
    ops = set()
    with atomic_path(args.out) as temp, h5py.File(temp, "w") as f:
        f.attrs["cases"] = ",".join(name for name, _, _ in CASES)
        f.attrs["seed"] = args.seed
        f.attrs["torch_version"] = str(torch.__version__)
        for name, make, params in CASES:
            # A generator per case, seeded by name: adding a case leaves the others' values unchanged.
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + zlib.crc32(name.encode()))
            attrs, data = make(gen, **params)
            write_case(f.create_group(name), attrs, data)
            ops.add(attrs["op"])
    size_mb = os.path.getsize(args.out) / 2**20
    print(f"make_op_golden: {len(CASES)} cases of {len(ops)} ops (seed {args.seed}, torch {torch.__version__}) "
          f"-> {args.out} ({size_mb:.1f} MiB, {time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
