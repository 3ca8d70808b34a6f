#!/usr/bin/env python3
"""thaw's data loader beside torchvision's DataLoader, in one run, same images, same augmentation.

For each thread count, runs `thaw bench loader --threads N --json` (epoch 1 decodes every JPEG and fills the
cache, later epochs take the decoded images from thaw's cache), once more with --no-cache for one epoch, then a torch.utils.data.DataLoader with num_workers=N over the same
files and the same training transforms (RandomResizedCrop(224), RandomHorizontalFlip, RandomRotation(20,
bilinear), ColorJitter(0.2, 0.2, 0.2), ToTensor, Normalize), persistent workers, batch 32, shuffled.
torchvision decodes every epoch. Prints images/s of both and the ratio thaw / torchvision per thread count:
thaw's first epoch (without and with filling the cache) against torchvision's first epoch (both decode),
thaw's later epochs (from the cache) against torchvision's later epochs.

Needs Debian's PyTorch and torchvision: run it with /usr/bin/python3.
    /usr/bin/python3 bench/loader_cpu.py --thaw build/thaw --data ../shared/data/pets-mini --threads 1 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from torch_reference import image_files, read_list


def torchvision_epochs(samples, threads, epochs, batch, size):
    import torch
    from torchvision import transforms as T

    transform = T.Compose([
        T.RandomResizedCrop(size),
        T.RandomHorizontalFlip(),
        T.RandomRotation(20, interpolation=T.InterpolationMode.BILINEAR),
        T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(image_files(samples, transform), batch_size=batch, shuffle=True, num_workers=threads,
                                         persistent_workers=True)
    rows = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        images = 0
        for x, y in loader:
            assert x.shape[1:] == (3, size, size) and x.dtype == torch.float32 and y.shape[0] == x.shape[0]
            images += x.shape[0]
        seconds = time.perf_counter() - t0
        assert images == len(samples), f"torchvision delivered {images} images of {len(samples)}"
        rows.append({"epoch": epoch, "seconds": seconds, "images_per_s": images / seconds})
    del loader
    return rows


def mean_later(rows):
    later = rows[1:] or rows
    return sum(r["images_per_s"] for r in later) / len(later)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thaw", default="build/thaw", help="path of the thaw executable")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                       "pets-mini"), help="dataset in the official layout")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (epoch 1 decodes, the rest later)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images of list.txt")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        sys.exit("PyTorch/torchvision not found: run this with /usr/bin/python3 after scripts/install-deps.sh")
    if args.epochs < 2:
        sys.exit("--epochs must be >= 2 (the first epoch decodes, later ones show the cache)")

    samples = read_list(args.data, "list.txt")
    if args.limit:
        samples = samples[:args.limit]

    def run_thaw(threads, epochs, extra):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "thaw.json")
            command = [args.thaw, "bench", "loader", "--data", args.data, "--threads", str(threads), "--epochs",
                       str(epochs), "--batch", str(args.batch), "--size", str(args.size), "--json", path] + extra
            if args.limit:
                command += ["--limit", str(args.limit)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            with open(path) as f:
                result = json.load(f)
        assert result["images"] == len(samples), "thaw and this script read different image lists"
        decoders.add(result.get("jpeg_decoder", "?"))
        return result["epochs"]

    decoders = set()
    results = []
    for threads in args.threads:
        cached = run_thaw(threads, args.epochs, [])
        uncached = run_thaw(threads, 1, ["--no-cache"])
        tv = torchvision_epochs(samples, threads, args.epochs, args.batch, args.size)
        results.append((threads, cached, uncached, tv))

    print(f"Data loader images/s on the CPU: {len(samples)} images of {os.path.normpath(args.data)}, batch "
          f"{args.batch}, training augmentation at {args.size}, {args.epochs} epochs "
          f"(later = mean of epochs 2..{args.epochs}); {os.cpu_count()} CPU cores; thaw's JPEG decoder: "
          f"{', '.join(sorted(decoders))}")
    header = (f"{'threads':>7} | {'thaw 1st':>8} {'1st+cache':>9} {'later':>7} | {'tv 1st':>7} {'tv later':>8} | "
              f"{'ratio 1st':>9} {'1st+cache':>9} {'later':>7}")
    print(header)
    print("-" * len(header))
    for threads, cached, uncached, tv in results:
        t1, tc, tl = uncached[0]["images_per_s"], cached[0]["images_per_s"], mean_later(cached)
        v1, vl = tv[0]["images_per_s"], mean_later(tv)
        print(f"{threads:>7} | {t1:>8.1f} {tc:>9.1f} {tl:>7.1f} | {v1:>7.1f} {vl:>8.1f} | "
              f"{t1 / v1:>8.2f}x {tc / v1:>8.2f}x {tl / vl:>6.2f}x")
    print("thaw 1st: first epoch without the cache (decode + augment); 1st+cache: first epoch filling the cache "
          "(decode, downscale to 256, augment); later: epochs 2.. from the cache. tv: torchvision "
          "DataLoader(num_workers=threads), decoding every epoch. Ratios: thaw / tv (later: against tv's later).")


if __name__ == "__main__":
    main()
