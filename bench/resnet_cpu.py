#!/usr/bin/env python3
"""ResNet18/50 on the CPU: thaw beside PyTorch in one run, same threads, same shapes, images/s and ratio.

For each architecture and mode it runs `thaw bench resnet-cpu --json` and the same step in PyTorch:
  inference   model.eval(), forward under no_grad
  train-head  model.train(), only fc trainable: zero_grad, forward, cross-entropy, backward, SGD step
  train-l3    the same with layer3, layer4 and fc trainable
(SGD lr 1e-3, momentum 0.9, Nesterov). It also prints thaw's head-only training time over its inference
time: with the backbone frozen no graph is recorded, so that should stay near 1.

Each row alternates thaw and PyTorch --runs times (each run a fresh process for thaw, the median of --repeat
steps) and reports the median run of each: on a shared machine one run of either can be slowed by a
neighbour, and alternating spreads that over both sides.

Needs Debian's PyTorch and torchvision: run it with /usr/bin/python3.
    /usr/bin/python3 bench/resnet_cpu.py --thaw build/thaw --threads 2
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from torch_reference import import_torch, resnet_step

MODES = ("inference", "train-head", "train-l3", "train-full")


def torch_step_time(arch, mode, batch, size, threads, repeat):
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=1000)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(1000, (batch,))
    step = resnet_step(model, mode, x, y)
    step()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def thaw_step_time(thaw, arch, mode, batch, size, threads, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        subprocess.run([thaw, "bench", "resnet-cpu", "--arch", arch, "--mode", mode, "--batch", str(batch),
                        "--size", str(size), "--threads", str(threads), "--repeat", str(repeat), "--json", path],
                       check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw")
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--modes", nargs="+", default=list(MODES[:3]), choices=MODES)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per row (median reported)")
    args = parser.parse_args()
    torch = import_torch()

    print(f"ResNet on the CPU, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads, median of "
          f"{args.repeat} steps, median of {args.runs} alternating runs (PyTorch {torch.__version__})")
    print(f"{'model':<10} {'mode':<11} {'thaw img/s':>11} {'torch img/s':>12} {'thaw/torch':>11}")
    for arch in args.arch:
        thaw_times = {}
        for mode in args.modes:
            runs_thaw, runs_torch = [], []
            for _ in range(args.runs):
                runs_thaw.append(thaw_step_time(args.thaw, arch, mode, args.batch, args.size, args.threads,
                                                args.repeat))
                runs_torch.append(torch_step_time(arch, mode, args.batch, args.size, args.threads, args.repeat))
            t, p = sorted(runs_thaw)[len(runs_thaw) // 2], sorted(runs_torch)[len(runs_torch) // 2]
            thaw_times[mode] = t
            print(f"{arch:<10} {mode:<11} {args.batch / t:>11.2f} {args.batch / p:>12.2f} {p / t:>10.2f}x",
                  flush=True)
        if "inference" in thaw_times and "train-head" in thaw_times:
            print(f"{arch:<10} thaw head-only training step / inference step: "
                  f"{thaw_times['train-head'] / thaw_times['inference']:.2f}")


if __name__ == "__main__":
    main()
