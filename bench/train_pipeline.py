#!/usr/bin/env python3
"""A whole training pipeline, JPEGs in: `thaw bench train` beside the report's own PyTorch loop, same images.

The report's code (docs/the-report.md) trained from a torchvision Dataset and a DataLoader with the default
num_workers=0: every JPEG decoded and augmented in the training process, between the steps. This script runs
that loop (with --workers 0, and with more DataLoader workers as a well-tuned PyTorch user would) and
`thaw bench train` with the same config on the same folder, on the same device, and prints the training
images/s of each and thaw's ratio to each; for l = 1, 3 or 5 also thaw's steps on synthetic batches
(`thaw bench resnet`), the bound the data path is measured against. The figure is training images over the
time of the training loops (both sides: loader waits included, validation excluded); thaw's line also says
where its time went.

Config: ResNet18 or 50 from random init (throughput does not depend on the weights), the last --layers layers
trainable (the report's l), SGD lr 1e-3 momentum 0.9 Nesterov, batch --batch, --size crops, with the report's
augmentation (RandomResizedCrop, flip, rotation 20, colour jitter 0.2) unless --no-augment. PyTorch trains on
every trainval image, thaw on its 80% split: images/s compares them.

--device-transforms runs thaw with the transforms as kernels on the device (`device_transforms = true`, which
implies the decoded cache's downscale; `cache = true` keeps the decoded images between epochs);
--cache-on-device keeps them in device memory, uploaded once (`cache_on_device = true`).

--cycle-to N repeats the trainval images (symbolic links under new numbers, in a temporary folder in the same
layout) until there are N of them: pets-mini's 640 cycled to the full dataset's 3,680, so that an epoch is
as long as the report's.

Needs Debian's PyTorch and torchvision: run it with /usr/bin/python3.
    /usr/bin/python3 bench/train_pipeline.py --thaw build/thaw --data ../shared/data/pets-mini --threads 2
    /usr/bin/python3 bench/train_pipeline.py --thaw build/thaw --data DIR --device cuda --workers 0 16 \
        --cycle-to 3680
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from torch_reference import image_files, read_list


def cycled_dataset(root, count, into):
    """`into`: root's layout with trainval repeated to `count` images (links named <breed>_<n + 100000 k>)."""
    os.makedirs(os.path.join(into, "images"))
    os.makedirs(os.path.join(into, "annotations"))

    def lines(name):
        with open(os.path.join(root, "annotations", name)) as f:
            return [line.split() for line in f if line.strip() and not line.startswith("#")]

    def link(name, new_name):
        os.symlink(os.path.abspath(os.path.join(root, "images", name + ".jpg")),
                   os.path.join(into, "images", new_name + ".jpg"))

    trainval, test = lines("trainval.txt"), lines("test.txt")
    cycled = []
    for k in range((count + len(trainval) - 1) // len(trainval)):
        for fields in trainval[:count - len(cycled)]:
            breed, number = fields[0].rsplit("_", 1)
            new_name = f"{breed}_{int(number) + 100000 * k}"
            link(fields[0], new_name)
            cycled.append([new_name] + fields[1:])
    for fields in test:
        link(fields[0], fields[0])
    for name, rows in (("trainval.txt", cycled), ("test.txt", test), ("list.txt", cycled + test)):
        with open(os.path.join(into, "annotations", name), "w") as f:
            f.writelines(" ".join(r) + "\n" for r in rows)
    return into


class GpuBusy:
    """nvidia-smi's utilization.gpu (the share of time one or more kernels ran) sampled every 100 ms while
    the block runs; `mean` is None on the CPU or without nvidia-smi. It covers the whole block: for thaw's
    run the model's construction, validation and test too, for PyTorch's the training loop."""

    def __init__(self, device):
        self.device = device
        self.samples = []
        self.process = None

    def __enter__(self):
        if self.device.startswith("cuda") and shutil.which("nvidia-smi"):
            index = self.device.split(":")[1] if ":" in self.device else "0"
            self.process = subprocess.Popen(["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu",
                                             "--format=csv,noheader,nounits", "-lms", "100"],
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.terminate()
            out = self.process.communicate()[0]
            self.samples = [float(v) for v in out.split() if v.strip().isdigit()]
        return False

    @property
    def mean(self):
        return statistics.mean(self.samples) if self.samples else None


def busy_text(busy):
    return f"{'n/a':>9}" if busy is None else f"{busy:>8.0f}%"


def run_thaw(args):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        command = [args.thaw, "bench", "train", "--data", os.path.abspath(args.data), "--weights", "none",
                   "--arch", args.arch, "--layers", str(args.layers), "--augment", str(args.augment).lower(),
                   "--batch-size", str(args.batch), "--image-size", str(args.size), "--epochs", str(args.epochs),
                   "--device", args.device, "--threads", str(args.threads), "--schedule", "none",
                   "--json", out]
        if args.device_transforms:
            command += ["--cache", "true", "--device-transforms", "true"]
        if args.cache_on_device:
            command += ["--cache-on-device", "true"]
        with GpuBusy(args.device) as busy:
            result = subprocess.run(command, check=True, capture_output=True, text=True)
        with open(out) as f:
            report = json.load(f)
        report["text"] = result.stdout
        report["gpu_busy"] = busy.mean
        return report


def run_synthetic(args):
    """thaw's training steps on synthetic batches (`thaw bench resnet`, l = 1, 3 or 5): the throughput the
    data path is measured against. None for other l."""
    mode = {1: "train-head", 3: "train-l3", 5: "train-full"}.get(args.layers)
    if mode is None:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "resnet.json")
        with GpuBusy(args.device) as busy:
            subprocess.run([args.thaw, "bench", "resnet", "--device", args.device, "--arch", args.arch, "--mode", mode,
                        "--batch", str(args.batch), "--size", str(args.size), "--repeat", "20",
                            "--threads", str(args.threads), "--json", out], check=True, capture_output=True,
                           text=True)
        with open(out) as f:
            return json.load(f)["images_per_s"], busy.mean


def run_torch(args, workers):
    import warnings

    import torch
    import torchvision
    from torchvision import transforms as T

    warnings.filterwarnings("ignore", message="This DataLoader will create")
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    normalize = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    if args.augment:
        transform = T.Compose([T.RandomResizedCrop(args.size), T.RandomHorizontalFlip(), T.RandomRotation(20),
                               T.ColorJitter(0.2, 0.2, 0.2), T.ToTensor(), normalize])
    else:
        transform = T.Compose([T.Resize(args.size * 256 // 224), T.CenterCrop(args.size), T.ToTensor(), normalize])

    device = torch.device(args.device)
    model = getattr(torchvision.models, args.arch)(num_classes=37).to(device)
    trainable = ["fc", "layer4", "layer3", "layer2", "layer1"][:args.layers]
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9,
                          nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(image_files(read_list(args.data, "trainval.txt"), transform), batch_size=args.batch, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    model.train()
    images, seconds = 0, 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            images += x.shape[0]
        seconds += time.perf_counter() - start
    return images / seconds


def run_torch_measured(args, workers):
    with GpuBusy(args.device) as busy:
        value = run_torch(args, workers)
    return value, busy.mean


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw")
    parser.add_argument("--data", required=True, help="a folder in the Oxford-IIIT Pet layout")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet50"])
    parser.add_argument("--layers", type=int, default=3, help="the report's l: 1 = fc only .. 5")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads of both sides")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 16], help="PyTorch DataLoader workers")
    parser.add_argument("--runs", type=int, default=1, help="alternating runs per row (median reported)")
    parser.add_argument("--device-transforms", action="store_true",
                        help="thaw: transforms as kernels on the device, decoded images cached")
    parser.add_argument("--cache-on-device", action="store_true",
                        help="thaw, with --device-transforms: the decoded images cached in device memory")
    parser.add_argument("--cycle-to", type=int, default=0, help="repeat trainval to this many images")
    args = parser.parse_args()
    cycle_dir = tempfile.TemporaryDirectory()
    if args.cycle_to > 0:
        args.data = cycled_dataset(args.data, args.cycle_to, os.path.join(cycle_dir.name, "pets"))

    thaw_runs, torch_runs = [], {w: [] for w in args.workers}
    thaw_busy, torch_busy = [], {w: [] for w in args.workers}
    report = None
    for _ in range(args.runs):
        report = run_thaw(args)
        thaw_runs.append(report["images_per_s"])
        thaw_busy.append(report["gpu_busy"])
        for w in args.workers:
            value, busy = run_torch_measured(args, w)
            torch_runs[w].append(value)
            torch_busy[w].append(busy)
    import torch

    print(f"{args.arch}, l = {args.layers}, {args.size}x{args.size}, batch {args.batch}, augment "
          f"{'on' if args.augment else 'off'}, {args.device}, {args.threads} threads, {args.epochs} epoch(s), "
          f"median of {args.runs} run(s), {len(read_list(args.data, 'trainval.txt'))} trainval images "
          f"(PyTorch {torch.__version__})")
    print(report["text"])
    thaw = statistics.median(thaw_runs)
    synthetic, synthetic_busy = run_synthetic(args)

    def median_busy(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    gpu = args.device.startswith("cuda")
    print(f"{'pipeline':<44} {'train img/s':>12} {'thaw / it':>10}" + (f" {'GPU busy':>9}" if gpu else ""))
    name = "thaw bench train" + (", device transforms" if args.device_transforms else "") + (
        " + cache" if args.cache_on_device else "")
    print(f"{name:<44} {thaw:>12.1f} {'':>10}" + (f" {busy_text(median_busy(thaw_busy))}" if gpu else ""))
    for w in args.workers:
        value = statistics.median(torch_runs[w])
        print(f"{f'PyTorch DataLoader, {w} workers':<44} {value:>12.1f} {thaw / value:>9.2f}x"
              + (f" {busy_text(median_busy(torch_busy[w]))}" if gpu else ""))
    if synthetic is not None:
        print(f"{'thaw, synthetic batches (no data path)':<44} {synthetic:>12.1f} {thaw / synthetic:>9.2f}x"
              + (f" {busy_text(synthetic_busy)}" if gpu else "")
              + f"   <- the data path keeps {100 * thaw / synthetic:.0f}% of the steps' own throughput")
    if gpu:
        print("GPU busy: nvidia-smi's utilization.gpu, sampled every 100 ms over each whole run (thaw's includes "
              "building the model, validation and test)")


if __name__ == "__main__":
    main()
