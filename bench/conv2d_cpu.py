#!/usr/bin/env python3
"""thaw's CPU conv2d forward beside PyTorch's, in one run, same shapes and thread count.

Runs `thaw bench conv-cpu --json` (the ResNet18 3x3 convolutions at 224x224), then times
torch.nn.functional.conv2d on the same shapes with torch.set_num_threads(threads), and prints
GFLOP/s of both and the ratio thaw / PyTorch per shape and overall (total FLOPs / total time).

Needs Debian's PyTorch: run it with /usr/bin/python3 (scripts/install-deps.sh installs python3-torch).
    /usr/bin/python3 bench/conv2d_cpu.py --thaw build/thaw --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def torch_times(rows, threads, repeat):
    import torch

    torch.set_num_threads(threads)
    out = []
    for r in rows:
        x = torch.rand(r["batch"], r["c"], r["h"], r["h"]) * 2 - 1
        w = torch.rand(r["k"], r["c"], 3, 3) * 0.2 - 0.1
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, stride=r["stride"], padding=1)  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                torch.nn.functional.conv2d(x, w, stride=r["stride"], padding=1)
                times.append(time.perf_counter() - t0)
        times.sort()
        out.append(times[len(times) // 2] * 1e3)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw", help="path of the thaw executable")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch not found: run this with /usr/bin/python3 after scripts/install-deps.sh")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "thaw.json")
        subprocess.run([args.thaw, "bench", "conv-cpu", "--threads", str(args.threads), "--batch", str(args.batch),
                        "--repeat", str(args.repeat), "--json", path], check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            rows = json.load(f)["rows"]
    torch_ms = torch_times(rows, args.threads, args.repeat)

    print(f"CPU conv2d forward, ResNet18 3x3 shapes at 224x224, batch {args.batch}, {args.threads} threads, "
          f"median of {args.repeat} (PyTorch {torch.__version__}, oneDNN {torch.backends.mkldnn.is_available()})")
    print(f"{'layer':<16} {'C->K HxW/s':>17} {'thaw GFLOP/s':>13} {'torch GFLOP/s':>14} {'thaw/torch':>11}")
    total_flops = total_thaw = total_torch = 0.0
    for r, t_ms in zip(rows, torch_ms):
        flops = r["gflops"] * r["ms"] * 1e-3  # GFLOP
        total_flops += flops
        total_thaw += r["ms"]
        total_torch += t_ms
        torch_gflops = flops / (t_ms * 1e-3)
        shape = f"{r['c']}->{r['k']} {r['h']}x{r['h']}/{r['stride']}"
        print(f"{r['layer']:<16} {shape:>17} {r['gflops']:>13.1f} {torch_gflops:>14.1f} {r['gflops'] / torch_gflops:>10.2f}x")
    thaw_all, torch_all = total_flops / (total_thaw * 1e-3), total_flops / (total_torch * 1e-3)
    print(f"{'all shapes':<16} {'':>17} {thaw_all:>13.1f} {torch_all:>14.1f} {thaw_all / torch_all:>10.2f}x")


if __name__ == "__main__":
    main()
