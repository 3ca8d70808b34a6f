#!/usr/bin/python3
"""PyTorch reference trajectories for thaw's optimizers (optim/optimizer.h): SGD, Adam, AdamW.

    /usr/bin/python3 weights_tools/make_optim_golden.py --out build/golden/optim.h5 [--seed 0]

One HDF5 group per named case (the table CASES below), read by tests/test_optim.cpp. A case runs one
torch.optim optimizer (the single-tensor path torch uses on the CPU by default) for K steps over a few small
named parameters, each step with a fresh random gradient per parameter:
  - attributes: optimizer (sgd, adam, adamw), lr, weight_decay and the optimizer's own hyper-parameters
    (momentum, dampening, nesterov as 0/1; beta1, beta2, eps), steps K, params (names, comma-separated);
  - init/<name>     float32 starting value;
  - grads/<name>    float32 (K, *shape): the gradient of step k in row k;
  - active/<name>   int64 (K,): 0 where the parameter sits out step k (torch: .grad = None, so the optimizer
                    skips it and its state stays as it was; thaw: the parameter is frozen for that step);
  - f32/<name>      float32 (K, *shape): the parameter after each step, torch running in float32;
  - f64/<name>      float64 (K, *shape): the same run in float64 from the same float32 values;
  - state_f32/<buffer>/<name>, state_f64/...: the optimizer's state after the last step (momentum_buffer,
    exp_avg, exp_avg_sq) and state_<tag>/step/<name> (int64: the updates each parameter received).
The root attribute "cases" lists the case names, comma-separated, in table order.

Needs Debian's python3-torch, h5py and numpy (scripts/install-deps.sh); a pyenv/venv python has no torch.
"""
import argparse
import os
import time
import zlib

from common import atomic_path, import_or_exit

torch = import_or_exit("torch", "python3-torch")
h5py = import_or_exit("h5py", "python3-h5py")

STEPS = 5
# Small parameters with torchvision-like names: a matrix, a vector, a conv weight (odd sizes: no SIMD-only path).
PARAMS = [("fc.weight", (4, 6)), ("fc.bias", (4,)), ("layer4.0.conv1.weight", (3, 2, 3, 3))]


def sgd(lr, momentum=0.9, nesterov=False, weight_decay=0.0, dampening=0.0):
    return dict(optimizer="sgd", lr=lr, momentum=momentum, nesterov=int(nesterov), weight_decay=weight_decay,
                dampening=dampening)


def adam(lr, weight_decay=0.0, decoupled=False, beta1=0.9, beta2=0.999, eps=1e-8):
    return dict(optimizer="adamw" if decoupled else "adam", lr=lr, weight_decay=weight_decay, beta1=beta1,
                beta2=beta2, eps=eps)


def make_optimizer(params, h):
    if h["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"], dampening=h["dampening"],
                               weight_decay=h["weight_decay"], nesterov=bool(h["nesterov"]), foreach=False)
    cls = torch.optim.AdamW if h["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"],
               foreach=False)


# (name, hyper-parameters, {param name: steps it sits out})
CASES = [
    # The brief's grid: SGD momentum 0.9, Nesterov off/on, weight decay 0 / 0.01, lr 1e-3 / 0.1.
    *[(f"sgd_m09{'_nesterov' if nesterov else ''}_wd{wd:g}_lr{lr:g}", sgd(lr, nesterov=nesterov, weight_decay=wd), {})
      for nesterov in (False, True) for wd in (0.0, 0.01) for lr in (1e-3, 0.1)],
    ("sgd_plain_wd0.01_lr0.1", sgd(0.1, momentum=0.0, weight_decay=0.01), {}),
    ("sgd_m09_dampening0.3_lr0.1", sgd(0.1, dampening=0.3), {}),
    ("adam_wd0_lr1e-3", adam(1e-3), {}),
    ("adam_wd0.01_lr1e-3", adam(1e-3, weight_decay=1e-2), {}),
    ("adam_wd0.01_lr0.1", adam(0.1, weight_decay=1e-2), {}),
    ("adamw_wd0.001_lr1e-3", adam(1e-3, weight_decay=1e-3, decoupled=True), {}),
    ("adamw_wd0.01_lr1e-3", adam(1e-3, weight_decay=1e-2, decoupled=True), {}),
    ("adamw_wd0.01_lr0.1_betas", adam(0.1, weight_decay=1e-2, decoupled=True, beta1=0.8, beta2=0.99, eps=1e-6), {}),
    # A parameter frozen mid-training: fc.weight sits out step 2 (and fc.bias steps 0 and 3): its momentum /
    # moments and step count must survive untouched and continue afterwards.
    ("sgd_nesterov_freeze_midway", sgd(0.1, nesterov=True, weight_decay=0.01), {"fc.weight": [2], "fc.bias": [0, 3]}),
    ("adam_freeze_midway", adam(0.01, weight_decay=0.01), {"fc.weight": [2], "fc.bias": [0, 3]}),
    ("adamw_freeze_midway", adam(0.01, weight_decay=0.01, decoupled=True), {"fc.weight": [2], "fc.bias": [0, 3]}),
]


def run(h, init, grads, active, dtype):
    """The trajectory {name: (K, *shape)} and the final state of torch's optimizer in dtype."""
    params = {name: init[name].to(dtype).clone().requires_grad_() for name in init}
    opt = make_optimizer(list(params.values()), h)
    traj = {name: [] for name in params}
    for k in range(STEPS):
        for name, p in params.items():
            p.grad = grads[name][k].to(dtype).clone() if active[name][k] else None
        opt.step()
        for name, p in params.items():
            traj[name].append(p.detach().clone())
    state = {}
    for name, p in params.items():
        for key, value in opt.state.get(p, {}).items():
            if key == "step" or value is None:  # step: counted from active instead; SGD without momentum: None
                continue
            state.setdefault(key, {})[name] = value.detach().clone()
    return {name: torch.stack(rows) for name, rows in traj.items()}, state


def write_case(group, gen, h, inactive):
    for key, value in h.items():
        group.attrs[key] = value
    group.attrs["steps"] = STEPS
    group.attrs["params"] = ",".join(name for name, _ in PARAMS)
    init = {name: (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5).float() for name, shape in PARAMS}
    grads = {name: torch.randn((STEPS, *shape), generator=gen, dtype=torch.float64).float() for name, shape in PARAMS}
    active = {name: torch.tensor([0 if k in inactive.get(name, []) else 1 for k in range(STEPS)], dtype=torch.int64)
              for name, _ in PARAMS}
    for name, _ in PARAMS:
        group.create_dataset(f"init/{name}", data=init[name].numpy())
        group.create_dataset(f"grads/{name}", data=grads[name].numpy())
        group.create_dataset(f"active/{name}", data=active[name].numpy())
        for tag in ("f32", "f64"):
            group.create_dataset(f"state_{tag}/step/{name}", data=active[name].sum().numpy())
    for tag, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        traj, state = run(h, init, grads, active, dtype)
        for name, values in traj.items():
            group.create_dataset(f"{tag}/{name}", data=values.numpy())
        for buffer, per_param in state.items():
            for name, value in per_param.items():
                group.create_dataset(f"state_{tag}/{buffer}/{name}", data=value.numpy())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="HDF5 file to write (parent folders are created)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.time()
    with atomic_path(args.out) as temp, h5py.File(temp, "w") as f:
        f.attrs["cases"] = ",".join(name for name, _, _ in CASES)
        f.attrs["seed"] = args.seed
        f.attrs["torch_version"] = str(torch.__version__)
        for name, h, inactive in CASES:
            # A generator per case, seeded by name: adding a case leaves the others' values unchanged.
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + zlib.crc32(name.encode()))
            write_case(f.create_group(name), gen, h, inactive)
    print(f"make_optim_golden: {len(CASES)} cases, {STEPS} steps each (seed {args.seed}, torch {torch.__version__}) "
          f"-> {args.out} ({os.path.getsize(args.out) / 2**10:.0f} KiB, {time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
