#!/usr/bin/python3
"""PyTorch's debug state for a whole ResNet: the parity files that `thaw parity` must reproduce.

    /usr/bin/python3 weights_tools/make_golden.py --in-file IN.h5 --expected EXPECTED.h5 \\
        [--arch resnet18] [--num-classes 10] [--batch 4] [--size 64] [--seed 0] [--mode train|eval] \\
        [--bn-mode train|frozen] [--trainable 'layer4,fc'] [--optimizer sgd|adam|adamw] [--lr 0.01 (sgd) / 0.001] \\
        [--momentum 0.9] [--nesterov 1] [--weight-decay 0] [--beta1 0.9] [--beta2 0.999] [--eps 1e-8] \\
        [--steps 5] [--loss cross_entropy|bce_with_logits] [--class-weights]

IN.h5 (the parity files: weights_tools/README.md): /weights/<state_dict key> of torchvision's resnetXX(num_classes) after
torch.manual_seed(seed), with every BatchNorm's weight, bias, running_mean and running_var randomised so that
batch statistics and running statistics give different results; /x float32 (N,3,H,W); /y int64 (N,);
optional /class_weights float32 (C,); root attributes describing the run (see write_input).

EXPECTED.h5, what PyTorch computes in float32 (the layout `thaw parity --out` writes):
  /logits (N,C), /loss 0-d                 the first forward
  /grads/<name>                            every trainable parameter, from the first backward
  /losses (K,)                             the loss before each of the K optimizer steps (all on the same batch)
  /params/<name>, /buffers/<name>          every parameter, every running_mean/var, after the K steps
  /params_step1/<name>, /buffers_step1/... the same after the first step (K > 0)
  /logits64, /loss64, /grads64/<name>      with --float64-reference: the first forward/backward again in
                                           float64 (PyTorch's own float32 rounding is the difference)
  /losses64 (K,), /params64/<name>,        with --float64-reference: the same K steps in float64 (the same
  /buffers64/<name>                        optimizer, batch, BN mode and freeze mask), every parameter and
                                           running statistic after them (frozen parameters equal the input
                                           weights; with K = 0, the state after the one forward)
  /params64_step1/<name>, /buffers64_step1 the float64 run after its first step (K > 0)
With --steps 0 there is the one forward/backward and /losses is empty (in train mode with --bn-mode train
that forward still updates the running statistics once).

How close float32 gets (PyTorch's float32 against its float64, relative to each tensor's largest value): in
eval mode or with --bn-mode frozen about 1e-6; in train mode about 1e-5 for resnet18, but only about 1e-2 for
a randomly initialised resnet50 (train-mode BatchNorm backward through a deep random network amplifies
rounding, whatever the batch or image size). So a parity test should allow thaw a multiple of
|grads - grads64|, not a fixed 1e-5. The same holds for the trajectory: in train mode on a tiny batch the
gradient after a step is very sensitive to the float32 rounding of the stored parameters (resnet18, layer3+
trainable, SGD lr 1e-3: the second step's float32 gradient is 10% off float64 in layer3.1.conv1), so
|(params - initial) - (params64 - initial)| after K steps, PyTorch's own float32 trajectory error, is 1e-3
to 2e-2 of the largest update. Two float32 implementations can agree far better than that when they happen
to round the parameters alike, and part by a few percent when they do not. Adam's first step moves every
trainable value by about lr whatever the size of its gradient, so values whose gradient is rounding noise may
end up ~K*lr apart in /params.

Trainable parameters: those whose name matches one of the comma-separated patterns (the rule of thaw's
core/name_pattern.h: a glob with '*' for any run of characters, dots included, and '?' for one character,
matching the whole name or a dotted prefix of it; "layer4" matches "layer4.0.conv1.weight", "fc" matches
"fc.weight" but not "fc2.weight").

Needs Debian's python3-torch, python3-torchvision and h5py (scripts/install-deps.sh); a pyenv/venv python
has no torch.
"""
import argparse
import copy
import sys
import time

from common import atomic_path, import_or_exit

torch = import_or_exit("torch", "python3-torch")
torchvision = import_or_exit("torchvision", "python3-torchvision")
h5py = import_or_exit("h5py", "python3-h5py")
np = import_or_exit("numpy", "python3-numpy")

SOURCE = "weights_tools/make_golden.py"


# ---- name patterns: the same rule as core/name_pattern.{h,cpp} --------------------------------------------

def glob_match(pattern, text):
    """Whole-string glob: '*' any run of characters (dots included), '?' one character, nothing else special."""
    p = t = 0
    star, star_text = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, star_text = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            star_text += 1
            t = star_text
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def name_matches(pattern, name):
    """pattern matches the whole name or a dotted prefix of it ("layer4" -> "layer4.0.conv1.weight")."""
    if glob_match(pattern, name):
        return True
    return any(glob_match(pattern, name[:i]) for i, c in enumerate(name) if c == ".")


def name_matches_any(patterns, name):
    return any(name_matches(p, name) for p in patterns)


def split_patterns(comma_separated):
    """"layer3, layer4,fc" -> ["layer3", "layer4", "fc"]: spaces trimmed, empty entries dropped."""
    return [item.strip(" ") for item in comma_separated.split(",") if item.strip(" ")]


# ---- the run ----------------------------------------------------------------------------------------------

class GoldenError(Exception):
    """A bad combination of options: printed without a traceback, exit status 1."""


def check_args(args):
    if args.batch < 1 or args.size < 1 or args.num_classes < 1 or args.steps < 0:
        raise GoldenError("--batch, --size and --num-classes must be positive and --steps non-negative")
    if args.loss == "bce_with_logits":
        if args.num_classes != 1:
            raise GoldenError("--loss bce_with_logits needs --num-classes 1 (one logit per image)")
        if args.class_weights:
            raise GoldenError("--class-weights applies to cross_entropy only")
    if args.optimizer == "sgd" and args.nesterov and args.momentum <= 0:
        raise GoldenError("SGD with --nesterov 1 needs --momentum > 0")
    patterns = split_patterns(args.trainable)
    if not patterns:
        raise GoldenError("--trainable has no patterns")
    return patterns


def make_inputs(args):
    """(model, x, y, class_weights or None): deterministic for args.seed."""
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(num_classes=args.num_classes)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(1 + 0.1 * torch.randn(c, generator=gen))
                module.bias.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(c, generator=gen))  # U(0.5, 1.5)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    classes = 2 if args.loss == "bce_with_logits" else args.num_classes
    y = torch.randint(classes, (args.batch,), generator=gen)  # int64
    class_weights = 0.2 + 1.8 * torch.rand(args.num_classes, generator=gen) if args.class_weights else None
    if args.calibrate_bn:
        calibrate_batch_norm(model, x)
    return model, x, y, class_weights


def calibrate_batch_norm(model, x):
    """Running statistics from one train-mode forward over x (momentum 1), as a pretrained network's roughly
    match its data. Random running statistics make a deep network with frozen BatchNorm explode under
    training (a ResNet50's loss goes from 3.7 to 1e5 in one SGD step at lr 1e-5), which no parity test can
    follow; calibrated ones keep it well-conditioned."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
        m.num_batches_tracked.zero_()


def prepare(model, args, patterns):
    """Train/eval and BatchNorm modes, requires_grad from the patterns; returns the trainable (name, param)s."""
    model.train(args.mode == "train")
    if args.bn_mode == "frozen":
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()  # running statistics used, not updated
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(name_matches_any(patterns, name))
        if param.requires_grad:
            trainable.append((name, param))
    unused = [p for p in patterns if not any(name_matches(p, name) for name, _ in model.named_parameters())]
    if unused:
        raise GoldenError(f"--trainable patterns that match no {args.arch} parameter: {', '.join(unused)}")
    return trainable


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, dampening=0,
                               weight_decay=args.weight_decay, nesterov=bool(args.nesterov), foreach=False)
    kind = torch.optim.Adam if args.optimizer == "adam" else torch.optim.AdamW
    return kind(params, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps, weight_decay=args.weight_decay,
                foreach=False)


def loss_of(args, logits, y, class_weights):
    if args.loss == "bce_with_logits":
        return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    weight = None if class_weights is None else class_weights.to(logits.dtype)
    return torch.nn.functional.cross_entropy(logits, y, weight=weight)  # mean (weighted: sum w_y l / sum w_y)


def run_float64(model, x, y, class_weights, args, trainable_names):
    """run() again in float64 on a copy of the prepared, untrained model (its train/eval modes, BatchNorm
    modes and requires_grad flags come with the copy): (model64, first, losses, step1)."""
    model64 = copy.deepcopy(model).double()
    params = dict(model64.named_parameters())
    trainable64 = [(name, params[name]) for name in trainable_names]
    first, losses, step1 = run(model64, x.double(), y, class_weights, args, trainable64)
    return model64, first, losses, step1


def snapshot(model):
    """(params, running statistics) of model, copied: {name: tensor} each."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()
               if name.endswith("running_mean") or name.endswith("running_var")}
    return params, buffers


def run(model, x, y, class_weights, args, trainable):
    """K steps in the model's dtype: (first logits, loss and grads; losses; snapshot after the first step or
    None); params and buffers after the K steps are left in model."""
    optimizer = make_optimizer(args, [p for _, p in trainable])
    first, losses, step1 = None, [], None
    for k in range(max(args.steps, 1)):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_of(args, logits, y, class_weights)
        loss.backward()
        if k == 0:
            first = (logits.detach().clone(), loss.detach().clone(),
                     {name: p.grad.detach().clone() for name, p in trainable})
        if args.steps > 0:
            losses.append(loss.item())
            optimizer.step()
            if k == 0:
                step1 = snapshot(model)
    return first, losses, step1


# ---- files ------------------------------------------------------------------------------------------------

def numpy_of(t):
    return t.detach().contiguous().numpy()


def atomic_write(path, fill):
    """Calls fill(h5py.File) on a temporary file beside path, then renames it into place."""
    with atomic_path(path) as temp, h5py.File(temp, "w") as f:
        fill(f)


def write_input(f, args, patterns, state, x, y, class_weights):
    f.attrs["arch"] = args.arch
    f.attrs["num_classes"] = np.int64(args.num_classes)
    f.attrs["mode"] = args.mode
    f.attrs["bn_mode"] = args.bn_mode
    f.attrs["trainable"] = ",".join(patterns)
    f.attrs["optimizer"] = args.optimizer
    for key in ("lr", "momentum", "weight_decay", "beta1", "beta2", "eps"):
        f.attrs[key] = np.float64(getattr(args, key))
    f.attrs["nesterov"] = np.int64(1 if args.nesterov else 0)
    f.attrs["steps"] = np.int64(args.steps)
    f.attrs["loss"] = args.loss
    f.attrs["seed"] = np.int64(args.seed)
    f.attrs["source"] = SOURCE
    weights = f.create_group("weights")
    for key, t in state.items():  # float32, num_batches_tracked int64 (0-d)
        weights.create_dataset(key, data=numpy_of(t))
    f.create_dataset("x", data=numpy_of(x))
    f.create_dataset("y", data=numpy_of(y))
    if class_weights is not None:
        f.create_dataset("class_weights", data=numpy_of(class_weights))


def write_snapshot(f, suffix, snap):
    """snap from snapshot(): /params<suffix>/<name> and /buffers<suffix>/<name>."""
    params, buffers = snap
    for name, p in params.items():
        f.create_dataset(f"params{suffix}/{name}", data=numpy_of(p))
    for name, b in buffers.items():
        f.create_dataset(f"buffers{suffix}/{name}", data=numpy_of(b))


def write_expected(f, args, model, first, losses, step1, run64):
    """step1: the snapshot after the first step (or None); run64: (model64, first64, losses64, step1_64) from
    run_float64, or None."""
    logits, loss, grads = first
    f.attrs["source"] = SOURCE
    f.attrs["torch_version"] = str(torch.__version__)
    f.create_dataset("logits", data=numpy_of(logits))
    f.create_dataset("loss", data=numpy_of(loss))
    f.create_dataset("losses", data=np.array(losses, dtype=np.float32).reshape(len(losses)))
    for name, g in grads.items():
        f.create_dataset(f"grads/{name}", data=numpy_of(g))
    for name, p in model.named_parameters():
        f.create_dataset(f"params/{name}", data=numpy_of(p))
    for name, b in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            f.create_dataset(f"buffers/{name}", data=numpy_of(b))
    if step1 is not None:
        write_snapshot(f, "_step1", step1)
    if run64 is None:
        return
    model64, (logits64, loss64, grads64), losses64, step1_64 = run64
    f.create_dataset("logits64", data=numpy_of(logits64))
    f.create_dataset("loss64", data=numpy_of(loss64))
    for name, g in grads64.items():
        f.create_dataset(f"grads64/{name}", data=numpy_of(g))
    f.create_dataset("losses64", data=np.array(losses64, dtype=np.float64).reshape(len(losses64)))
    write_snapshot(f, "64", snapshot(model64))
    if step1_64 is not None:
        write_snapshot(f, "64_step1", step1_64)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-file", required=True, help="parity input file to write (weights, x, y, run)")
    parser.add_argument("--expected", required=True, help="PyTorch's output file to write")
    parser.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet50"))
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="train", choices=("train", "eval"))
    parser.add_argument("--bn-mode", default="train", choices=("train", "frozen"),
                        help="frozen: every BatchNorm uses (and keeps) its running statistics, even in train mode")
    parser.add_argument("--trainable", default="*", help="comma-separated name patterns (default: all)")
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: 0.01 for sgd, 0.001 for adam/adamw: Adam's first steps move "
                             "every parameter by about lr, and 0.01 makes the loss explode)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--nesterov", type=int, default=1, choices=(0, 1))
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--eps", type=float, default=1e-8)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps K on the same batch")
    parser.add_argument("--loss", default="cross_entropy", choices=("cross_entropy", "bce_with_logits"))
    parser.add_argument("--class-weights", action="store_true", help="random positive class weights (C,)")
    parser.add_argument("--calibrate-bn", action="store_true",
                        help="set the running statistics from one train-mode pass over x (see calibrate_batch_norm)")
    parser.add_argument("--float64-reference", action="store_true",
                        help="also write the first forward/backward and the K steps in float64 "
                             "(/logits64, /loss64, /grads64, /losses64, /params64)")
    args = parser.parse_args(argv)
    if args.lr is None:
        args.lr = 0.01 if args.optimizer == "sgd" else 0.001

    start = time.time()
    try:
        patterns = check_args(args)
        model, x, y, class_weights = make_inputs(args)
        state = {key: t.detach().clone() for key, t in model.state_dict().items()}
        trainable = prepare(model, args, patterns)
        names = [name for name, _ in trainable]
        run64 = run_float64(model, x, y, class_weights, args, names) if args.float64_reference else None
        first, losses, step1 = run(model, x, y, class_weights, args, trainable)
    except GoldenError as e:
        print(f"make_golden: error: {e}", file=sys.stderr)
        sys.exit(1)

    atomic_write(args.in_file, lambda f: write_input(f, args, patterns, state, x, y, class_weights))
    atomic_write(args.expected, lambda f: write_expected(f, args, model, first, losses, step1, run64))
    shown = ", ".join(f"{v:.4f}" for v in losses) if losses else f"{first[1].item():.4f} (no steps)"
    print(f"make_golden: {args.arch} {args.mode} bn={args.bn_mode} {args.optimizer} {args.loss}, "
          f"{len(trainable)} trainable tensors, N={args.batch} {args.size}x{args.size}, K={args.steps}: "
          f"losses {shown} -> {args.in_file}, {args.expected} ({time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
