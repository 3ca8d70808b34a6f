"""What the bench/ scripts share on the PyTorch side: the training step they time, the import checks, and the
images of a folder in the Oxford-IIIT Pet layout as a torch Dataset."""
import os
import sys

# Trainable top-level children of each training mode; None: every parameter.
TRAINABLE = {"train-head": ("fc",), "train-l3": ("layer3", "layer4", "fc"), "train-full": None}


def import_torch(need_cuda=False):
    """torch, or exit with a message that says what to run instead."""
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch not found: run this with /usr/bin/python3 (Debian's python3-torch) "
                 "or a python3 that has torch")
    if need_cuda and not torch.cuda.is_available():
        sys.exit("PyTorch sees no CUDA device: this benchmark needs a GPU")
    return torch


def resnet_step(model, mode, x, y):
    """The unit the ResNet benchmarks time, as thaw's `bench resnet` runs it: a forward under no_grad
    (inference), or zero_grad + forward + cross-entropy + backward + SGD step (lr 1e-3, momentum 0.9,
    Nesterov) with the mode's parameters trainable."""
    import torch

    if mode == "inference":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
        return step
    model.train()
    keep = TRAINABLE[mode]
    for name, p in model.named_parameters():
        p.requires_grad_(keep is None or name.split(".")[0] in keep)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9,
                          nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def read_list(root, name):
    """(path, 0-based class id) per line of annotations/<name>, as data/pets.cpp reads it."""
    samples = []
    with open(os.path.join(root, "annotations", name)) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            samples.append((os.path.join(root, "images", fields[0] + ".jpg"), int(fields[1]) - 1))
    return samples


def image_files(samples, transform):
    """A torch Dataset of (transform(the RGB image), label) over (path, label) samples: each image decoded with
    Pillow when it is read, as the report's code (and torchvision's ImageFolder) do."""
    import torch
    from PIL import Image

    class ImageFiles(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            path, label = samples[i]
            with open(path, "rb") as f:
                image = Image.open(f).convert("RGB")
            return transform(image), label

    return ImageFiles()
