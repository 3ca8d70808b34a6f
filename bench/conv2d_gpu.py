#!/usr/bin/env python3
"""thaw's CUDA convolutions beside cuDNN on every ResNet18/50 conv shape, and a check of thaw's tile choice.

Runs `thaw bench conv-cuda --json` once with the kernels' own tile choice and once per forced tile
(THAW_CONV_TILE=128x128, 64x128, 64x64), then times cuDNN through PyTorch on the same shapes and passes
(forward; backward-data = torch.nn.grad.conv2d_input; backward-weight = conv2d_weight), in plain float32
(TF32 off: the same arithmetic as thaw) and with PyTorch's default TF32 convolutions. Medians of CUDA-event
timings after warm-up, cuDNN benchmark mode on.

Prints the totals over all shapes per pass (thaw chosen, thaw with the best tile per shape, cuDNN float32,
cuDNN TF32, and the ratios), then writes every row to --json-out / --table-out.
    python3 bench/conv2d_gpu.py --thaw build/thaw --table-out conv.txt
"""
import argparse
import json
import os
import subprocess
import tempfile

from torch_reference import import_torch

TILES = ("128x128", "64x128", "64x64")
PASSES = ("forward", "backward_data", "backward_weight")


def thaw_rows(thaw, batch, repeat, tile):
    env = dict(os.environ)
    env.pop("THAW_CONV_TILE", None)
    if tile:
        env["THAW_CONV_TILE"] = tile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conv.json")
        subprocess.run([thaw, "bench", "conv-cuda", "--batch", str(batch), "--repeat", str(repeat), "--json", path],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        with open(path) as f:
            return json.load(f)["rows"]


def cudnn_ms(row, batch, repeat, tf32):
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device("cuda")
    c, k, h, r, stride = row["c"], row["k"], row["h"], row["r"], row["stride"]
    pad = r // 2
    x = torch.rand(batch, c, h, h, device=dev) * 2 - 1
    w = (torch.rand(k, c, r, r, device=dev) * 2 - 1) * 0.1
    y = torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)
    dy = torch.rand_like(y) * 2 - 1
    work = {
        "forward": lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=pad),
        "backward_data": lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=stride, padding=pad),
        "backward_weight": lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=stride, padding=pad),
    }
    out = {}
    for name, f in work.items():
        for _ in range(3):
            f()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeat):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            f()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        times.sort()
        out[name] = times[len(times) // 2]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json-out")
    parser.add_argument("--table-out", help="write the per-shape table here (the totals always print)")
    args = parser.parse_args()
    torch = import_torch(need_cuda=True)

    chosen = thaw_rows(args.thaw, args.batch, args.repeat, None)
    forced = {tile: thaw_rows(args.thaw, args.batch, args.repeat, tile) for tile in TILES}
    rows = []
    for i, row in enumerate(chosen):
        fp32 = cudnn_ms(row, args.batch, args.repeat, tf32=False)
        tf32 = cudnn_ms(row, args.batch, args.repeat, tf32=True)
        entry = {"layer": row["layer"], "shape": [row["c"], row["k"], row["h"], row["r"], row["stride"]],
                 "gflop": row["gflop"]}
        for p in PASSES:
            times = {tile: forced[tile][i][p + "_ms"] for tile in TILES}
            best = min(times, key=times.get)
            entry[p] = {"thaw_ms": row[p + "_ms"], "best_tile": best, "best_tile_ms": times[best],
                        "tiles_ms": times, "cudnn_fp32_ms": fp32[p], "cudnn_tf32_ms": tf32[p]}
        rows.append(entry)

    lines = [f"{'layer':<24} {'pass':<16} {'thaw ms':>8} {'best tile':>9} {'its ms':>8} {'cuDNN fp32':>10} "
             f"{'cuDNN tf32':>10} {'fp32/thaw':>9}"]
    for e in rows:
        for p in PASSES:
            d = e[p]
            lines.append(f"{e['layer']:<24} {p:<16} {d['thaw_ms']:>8.3f} {d['best_tile']:>9} "
                         f"{d['best_tile_ms']:>8.3f} {d['cudnn_fp32_ms']:>10.3f} {d['cudnn_tf32_ms']:>10.3f} "
                         f"{d['cudnn_fp32_ms'] / d['thaw_ms']:>8.2f}x")
    if args.table_out:
        with open(args.table_out, "w") as f:
            f.write("\n".join(lines) + "\n")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch,
                       "rows": rows}, f, indent=2)

    print(f"conv2d on {torch.cuda.get_device_name()}, batch {args.batch}, all {len(rows)} ResNet18/50 shapes, "
          f"sum of per-shape medians (ms); ratio = cuDNN / thaw")
    print(f"{'pass':<16} {'thaw':>8} {'thaw best tile':>14} {'cuDNN fp32':>10} {'cuDNN tf32':>10} "
          f"{'vs fp32':>8} {'vs tf32':>8}")
    for p in PASSES:
        thaw = sum(e[p]["thaw_ms"] for e in rows)
        best = sum(e[p]["best_tile_ms"] for e in rows)
        fp32 = sum(e[p]["cudnn_fp32_ms"] for e in rows)
        tf32 = sum(e[p]["cudnn_tf32_ms"] for e in rows)
        print(f"{p:<16} {thaw:>8.2f} {best:>14.2f} {fp32:>10.2f} {tf32:>10.2f} {fp32 / thaw:>7.2f}x "
              f"{tf32 / thaw:>7.2f}x")


if __name__ == "__main__":
    main()
