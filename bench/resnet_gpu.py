#!/usr/bin/env python3
"""ResNet18/50 training steps on a GPU: thaw beside PyTorch eager in one run, img/s, ratio and peak memory.

For each architecture and mode it runs `thaw bench resnet --device cuda --json` and the same step in PyTorch:
  inference   model.eval(), forward under no_grad
  train-head  model.train(), only fc trainable: zero_grad, forward, cross-entropy, backward, SGD step
  train-l3    the same with layer3, layer4 and fc trainable
  train-full  every parameter trainable
(SGD lr 1e-3, momentum 0.9, Nesterov; batch 64, 224x224.) PyTorch runs as a user gets it: eager, cuDNN
benchmark mode on, and its default TF32 settings, which the table's header prints (cuDNN convolutions may use
TF32 tensor cores). --precision picks thaw's (core/precision.h): fp32 (exact float32 FMAs) and tf32 run
beside PyTorch's defaults; bf16 beside PyTorch's autocast to bfloat16 with channels_last tensors. Times are medians over --repeat steps
after warm-up, each step ended by a device synchronisation. Peak memory: bytes held by tensors at the peak
(torch.cuda.max_memory_allocated; thaw's allocator in_use) and bytes obtained from the driver
(max_memory_reserved; thaw's reserved), each over the whole run of one mode, weights included.

Run on the GPU machine (scripts/gpu-check.sh does):
    python3 bench/resnet_gpu.py --thaw build/thaw --json-out results.json
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from torch_reference import import_torch, resnet_step

MODES = ("inference", "train-head", "train-l3", "train-full")
MiB = 1 << 20


def torch_run(arch, mode, batch, size, repeat, precision):
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = getattr(torchvision.models, arch)(num_classes=1000).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(1000, (batch,), device=device)
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    plain_step = resnet_step(model, mode, x, y)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            plain_step()
    for _ in range(3):  # warm-up: cuDNN's algorithm search, the caching allocator
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    result = {"seconds": times[len(times) // 2], "peak_bytes": torch.cuda.max_memory_allocated(),
              "peak_reserved_bytes": torch.cuda.max_memory_reserved()}
    return result


def thaw_run(thaw, arch, mode, batch, size, repeat, precision):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        subprocess.run([thaw, "bench", "resnet", "--device", "cuda", "--arch", arch, "--mode", mode, "--batch",
                        str(batch), "--size", str(size), "--repeat", str(repeat), "--precision", precision,
                        "--json", path], check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw")
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"),
                        help="thaw's convolution precision; bf16 runs PyTorch under autocast bf16 + channels_last")
    parser.add_argument("--json-out", help="also write every row as JSON to this file")
    args = parser.parse_args()
    torch = import_torch(need_cuda=True)

    torch_side = ("autocast bf16, channels_last" if args.precision == "bf16" else
                  f"TF32 conv {torch.backends.cudnn.allow_tf32} matmul {torch.backends.cuda.matmul.allow_tf32}")
    print(f"ResNet on {torch.cuda.get_device_name()}, batch {args.batch}, {args.size}x{args.size}, thaw "
          f"{args.precision}, median of {args.repeat} steps. PyTorch {torch.__version__} eager, cuDNN benchmark, "
          f"{torch_side}")
    print(f"{'model':<9} {'mode':<10} {'thaw img/s':>10} {'torch img/s':>11} {'ratio':>6} "
          f"{'thaw peak MiB':>13} {'torch peak MiB':>14} {'thaw reserved':>13} {'torch reserved':>14}")
    rows = []
    for arch in args.arch:
        for mode in args.modes:
            t = thaw_run(args.thaw, arch, mode, args.batch, args.size, args.repeat, args.precision)
            p = torch_run(arch, mode, args.batch, args.size, args.repeat, args.precision)
            row = {"arch": arch, "mode": mode, "batch": args.batch, "precision": args.precision, "thaw_img_s": args.batch / t["seconds"],
                   "torch_img_s": args.batch / p["seconds"], "ratio": p["seconds"] / t["seconds"],
                   "thaw_peak_mib": t["peak_bytes"] / MiB, "torch_peak_mib": p["peak_bytes"] / MiB,
                   "thaw_reserved_mib": t["peak_reserved_bytes"] / MiB,
                   "torch_reserved_mib": p["peak_reserved_bytes"] / MiB}
            rows.append(row)
            print(f"{arch:<9} {mode:<10} {row['thaw_img_s']:>10.0f} {row['torch_img_s']:>11.0f} "
                  f"{row['ratio']:>5.2f}x {row['thaw_peak_mib']:>13.0f} {row['torch_peak_mib']:>14.0f} "
                  f"{row['thaw_reserved_mib']:>13.0f} {row['torch_reserved_mib']:>14.0f}", flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
