#!/usr/bin/env python3
"""`thaw train` beside the same training in PyTorch, on a folder of real JPEGs, on the CPU: images/s and ratio.

What a new user does: train a ResNet on an Oxford-IIIT-Pet-layout folder (images/, annotations/trainval.txt,
test.txt) with thaw's config defaults (SGD lr 1e-3, momentum 0.9, Nesterov, no augmentation: resize to
size*256/224 and center crop), and the same thing in PyTorch 1.13 (torchvision transforms and a
DataLoader). Both sides get
  - the same initial weights: thaw's own seeded initialisation, written by a probe run with lr 0 and
    converted to a .pth by weights_tools/convert.py (thaw replaces the head it loads with the same seeded
    one, so the head matches too);
  - the same split: thaw's seeded 80/20 random_split of trainval (Philox4x32-10 and the Fisher-Yates shuffle
    of data/splits.h, reimplemented below and checked against the split sizes thaw reports);
  - the same threads: `--threads` N is thaw's `threads` key (its compute pool and its loader's workers:
    one number for the run) and PyTorch's torch.set_num_threads, with N DataLoader workers (num_workers;
    `--loader-threads` changes that side only). THAW_NUM_THREADS and OMP_NUM_THREADS are set to N too, so
    that builds before the `threads` key sized the compute pool (they read OpenMP's count) run alike.
Modes: all (every layer trains, trainable = "all") and head (fc only, last_layers with layers = 1).
The figure is training images/s: train images over the time of the training loops (thaw: metrics.csv
data_s + compute_s; PyTorch: the same loop, timed the same way), over all epochs. Validation runs after
every epoch on both sides, untimed. Runs alternate thaw / PyTorch; each row is the median of --runs.

--busy K adds the loaded-machine case: K CPU-bound processes (`while True: pass`) run beside each
framework's runs, and the table shows each side's slowdown (unloaded / loaded images/s).

Needs Debian's PyTorch and torchvision: run it with /usr/bin/python3.
    /usr/bin/python3 bench/train_cpu.py --thaw build/thaw --data ../shared/data/pets-mini
    /usr/bin/python3 bench/train_cpu.py --thaw build/thaw --data DIR --modes all --busy 2
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from torch_reference import image_files, read_list

HERE = os.path.dirname(os.path.abspath(__file__))
NUM_BREEDS = 37

# ---- thaw's split, in Python (core/rng.h, data/splits.h, train/trainer.cpp limit_indices) ---------------

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


def philox4x32_10(counter, key):
    c = list(counter)
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & MASK32, p1 & MASK32, ((p0 >> 32) ^ c[3] ^ k1) & MASK32, p0 & MASK32]
        k0 = (k0 + 0x9E3779B9) & MASK32
        k1 = (k1 + 0xBB67AE85) & MASK32
    return c


assert philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


class Generator:
    """core/rng.h Generator(seed, stream): next_int only."""

    def __init__(self, seed, stream=0):
        self.seed, self.stream, self.offset = seed, stream, 0

    def next_int(self, low, high):
        span = high - low
        limit = MASK64 - MASK64 % span
        while True:
            o, s = self.offset, self.stream
            self.offset += 1
            b = philox4x32_10([o & MASK32, o >> 32, s & MASK32, s >> 32], [self.seed & MASK32, self.seed >> 32])
            bits = (b[0] << 32) | b[1]
            if bits < limit:
                return low + bits % span


def shuffled(n, gen):
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = gen.next_int(0, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def random_split(n, val_fraction, seed):
    order = shuffled(n, Generator(seed))
    n_train = n - int(val_fraction * n + 0.5)
    return sorted(order[:n_train]), sorted(order[n_train:])


# ---- the two sides ---------------------------------------------------------------------------------------

def thaw_config(args, mode, weights, runs_dir, name, epochs, lr):
    trainable = 'trainable = "all"' if mode == "all" else 'trainable = "last_layers"\nlayers = 1'
    return f"""name = "{name}"
runs_dir = "{runs_dir}"
arch = "{args.arch}"
data = "{os.path.abspath(args.data)}"
weights = "{weights}"
image_size = {args.size}
batch_size = {args.batch}
epochs = {epochs}
seed = {args.seed}
threads = {args.threads}
lr = {lr}
schedule = "none"
{trainable}
"""


def run_thaw(args, tmp, mode, weights, tag, epochs=None, lr=1e-3, extra=()):
    name = f"{tag}-{mode}-{time.monotonic_ns()}"
    config = os.path.join(tmp, name + ".toml")
    with open(config, "w") as f:
        f.write(thaw_config(args, mode, weights, tmp, name, epochs or args.epochs, lr))
    env = dict(os.environ)
    env["THAW_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    subprocess.run([args.thaw, "train", config, *extra], check=True, stdout=subprocess.DEVNULL, env=env)
    run_dir = os.path.join(tmp, name)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    seconds = sum(float(r["data_s"]) + float(r["compute_s"]) for r in rows)
    return {"run_dir": run_dir, "images": summary["images"], "per_s": summary["images"]["train"] * len(rows) / seconds}


def torch_run(args, mode, init_pth, train, val):
    import warnings

    import torch
    import torchvision
    from torchvision import transforms as T

    warnings.filterwarnings("ignore", message="This DataLoader will create")
    torch.set_num_threads(args.threads or os.cpu_count())
    torch.manual_seed(args.seed)
    resize = args.size * 256 // 224
    transform = T.Compose([T.Resize(resize), T.CenterCrop(args.size), T.ToTensor(),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def loader(samples, shuffle):
        return torch.utils.data.DataLoader(image_files(samples, transform), batch_size=args.batch, shuffle=shuffle,
                                           num_workers=args.loader_threads, persistent_workers=True)

    model = getattr(torchvision.models, args.arch)(num_classes=NUM_BREEDS)
    model.load_state_dict(torch.load(init_pth))
    for name, p in model.named_parameters():
        p.requires_grad_(mode == "all" or name.startswith("fc."))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9,
                          nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    train_loader, val_loader = loader(train, True), loader(val, False)
    seconds, images = 0.0, 0
    for _ in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss.item()
            images += x.shape[0]
        seconds += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                model(x)
    return images / seconds


def run_torch(args, mode, init_pth, split_file):
    """PyTorch in a fresh process, as thaw gets one: the same interpreter, this file, --torch-worker."""
    out = split_file + f".{mode}.{time.monotonic_ns()}.json"
    command = [sys.executable, os.path.abspath(__file__), "--torch-worker", split_file, "--torch-out", out,
               "--torch-mode", mode, "--torch-init", init_pth]
    for key in ("arch", "size", "batch", "epochs", "seed", "threads", "loader_threads"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    subprocess.run(command + ["--data", args.data, "--thaw", args.thaw], check=True)
    with open(out) as f:
        return json.load(f)["per_s"]


class Busy:
    """K CPU-bound processes for the loaded-machine case."""

    def __init__(self, count):
        self.count, self.procs = count, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw")
    parser.add_argument("--data", required=True,
                        help="a folder in the Oxford-IIIT Pet layout: images/, annotations/trainval.txt, test.txt")
    parser.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet50"])
    parser.add_argument("--modes", nargs="+", default=["all", "head"], choices=["all", "head"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="compute threads of each side")
    parser.add_argument("--loader-threads", type=int, default=None,
                        help="PyTorch's DataLoader num_workers (default: --threads)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per row; the median is shown")
    parser.add_argument("--busy", type=int, default=0, help="also run with this many CPU-bound processes beside")
    parser.add_argument("--busy-modes", nargs="+", default=["all"], choices=["all", "head"])
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    parser.add_argument("--torch-out", help=argparse.SUPPRESS)
    parser.add_argument("--torch-mode", help=argparse.SUPPRESS)
    parser.add_argument("--torch-init", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loader_threads is None:
        args.loader_threads = args.threads

    if args.torch_worker:
        with open(args.torch_worker) as f:
            split = json.load(f)
        per_s = torch_run(args, args.torch_mode, args.torch_init, split["train"], split["val"])
        with open(args.torch_out, "w") as f:
            json.dump({"per_s": per_s}, f)
        return

    try:
        import torch
    except ImportError:
        sys.exit("PyTorch not found: run this with /usr/bin/python3 (Debian's python3-torch)")

    trainval = read_list(args.data, "trainval.txt")
    train_idx, val_idx = random_split(len(trainval), 0.2, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        split_file = os.path.join(tmp, "split.json")
        with open(split_file, "w") as f:
            json.dump({"train": [trainval[i] for i in train_idx], "val": [trainval[i] for i in val_idx]}, f)

        # The initial weights: thaw's seeded init after a probe run with lr 0 (parameters unchanged).
        probe = run_thaw(args, tmp, "all", "none", "probe", epochs=1, lr=0, extra=["--limit", str(args.batch)])
        init_h5 = os.path.join(probe["run_dir"], "weights.h5")
        init_pth = os.path.join(tmp, "init.pth")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "weights_tools", "convert.py"), "to-pth", "--in",
                        init_h5, "--out", init_pth], check=True, stdout=subprocess.DEVNULL)

        cases = [(mode, 0) for mode in args.modes]
        if args.busy:
            cases += [(mode, args.busy) for mode in args.busy_modes]
            cases += [(mode, 0) for mode in args.busy_modes if mode not in args.modes]
        results = {}
        for run in range(args.runs):
            for mode, busy in cases:
                with Busy(busy):
                    t = run_thaw(args, tmp, mode, init_h5, "thaw")
                assert t["images"]["train"] == len(train_idx) and t["images"]["val"] == len(val_idx), \
                    f"thaw split {t['images']} differs from this script's ({len(train_idx)}, {len(val_idx)})"
                with Busy(busy):
                    p = run_torch(args, mode, init_pth, split_file)
                results.setdefault((mode, busy), {"thaw": [], "torch": []})
                results[(mode, busy)]["thaw"].append(t["per_s"])
                results[(mode, busy)]["torch"].append(p)
                print(f"run {run + 1}/{args.runs} {mode:<4} busy {busy}: thaw {t['per_s']:.1f} img/s, "
                      f"PyTorch {p:.1f} img/s  (load average {os.getloadavg()[0]:.2f})", flush=True)

    print(f"\n{args.arch} {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs, {len(train_idx)} train "
          f"images of {os.path.normpath(args.data)}; {args.threads} compute threads, {args.loader_threads} loader "
          f"workers; PyTorch {torch.__version__}; median of {args.runs} alternating runs")
    print(f"{'mode':<5} {'busy':>4} | {'thaw img/s':>10} {'torch img/s':>11} | {'thaw/torch':>10}")
    for (mode, busy), r in results.items():
        t, p = median(r["thaw"]), median(r["torch"])
        print(f"{mode:<5} {busy:>4} | {t:>10.1f} {p:>11.1f} | {t / p:>9.2f}x")
    if args.busy:
        print(f"\nslowdown with {args.busy} busy processes (unloaded img/s / loaded img/s; lower is steadier):")
        for mode in args.busy_modes:
            base, loaded = results[(mode, 0)], results[(mode, args.busy)]
            st = median(base["thaw"]) / median(loaded["thaw"])
            sp = median(base["torch"]) / median(loaded["torch"])
            print(f"{mode:<5} thaw {st:.2f}x   PyTorch {sp:.2f}x   (thaw / PyTorch {st / sp:.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"mode": m, "busy": b, **r} for (m, b), r in results.items()], f, indent=2)


if __name__ == "__main__":
    main()
