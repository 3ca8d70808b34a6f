#!/usr/bin/python3
"""Convert ResNet weights between torchvision (.pth state dicts) and thaw's HDF5 weights format.

    /usr/bin/python3 weights_tools/convert.py to-h5 --arch resnet18 --pth resnet18-f37072fd.pth --out r18.h5
    /usr/bin/python3 weights_tools/convert.py to-h5 --arch resnet50 --torchvision IMAGENET1K_V2 --out r50.h5
    /usr/bin/python3 weights_tools/convert.py to-h5 --arch resnet18 --random-seed 0 --num-classes 37 --out t.h5
    /usr/bin/python3 weights_tools/convert.py to-pth --in r18.h5 --out r18.pth

The HDF5 file (docs/models-and-weights.md, "The weights file"): one root dataset per state_dict key, named exactly as
the key ("layer1.0.conv1.weight"), float32 with PyTorch's shapes; "*.num_batches_tracked" kept as int64 scalars
so that .pth -> .h5 -> .pth is exact (thaw ignores them). Root attributes: format = "thaw-weights-1", arch,
num_classes (int64), source (free text).

Both directions check the tensors against torchvision's own resnetXX(num_classes=...): every missing,
unexpected or mis-shaped key is listed at once and the script exits 1; so does a NaN or Inf value.

Needs Debian's python3-torch, python3-torchvision, h5py and numpy (scripts/install-deps.sh); a pyenv/venv
python has no torch.
"""
import argparse
import collections
import hashlib
import os
import sys

from common import atomic_path, import_or_exit

torch = import_or_exit("torch", "python3-torch")
torchvision = import_or_exit("torchvision", "python3-torchvision")
h5py = import_or_exit("h5py", "python3-h5py")
np = import_or_exit("numpy", "python3-numpy")

FORMAT = "thaw-weights-1"
ARCHS = ("resnet18", "resnet50")


class ConvertError(Exception):
    """A problem with the user's input: printed without a traceback, exit status 1."""


# ---- torchvision reference --------------------------------------------------------------------------------

def make_model(arch, num_classes):
    """torchvision's randomly initialised resnetXX(num_classes): the reference for names, shapes and dtypes."""
    return getattr(torchvision.models, arch)(num_classes=num_classes)


def is_counter(key):
    """BatchNorm's num_batches_tracked: an int64 counter that thaw ignores and old checkpoints lack."""
    return key.endswith("num_batches_tracked")


def check_finite(state, what):
    bad = []
    for key, t in state.items():
        if t.is_floating_point():
            count = int((~torch.isfinite(t)).sum())
            if count:
                bad.append(f"{key}: {count} NaN/Inf value(s) of {t.numel()}")
    if bad:
        raise ConvertError(f"{what} has non-finite values:\n  " + "\n  ".join(bad))


def reference_state(arch, num_classes):
    """Reference tensors by key (torchvision's order); named for error messages."""
    state = collections.OrderedDict(make_model(arch, num_classes).state_dict())
    return state, f"{arch}(num_classes={num_classes})"


def validate(state, arch, num_classes, what):
    """Checks state (name -> tensor) against torchvision's resnetXX(num_classes); returns the reference."""
    reference, name = reference_state(arch, num_classes)
    problems = []
    for key, ref in reference.items():
        if key not in state:
            if not is_counter(key):
                problems.append(f"missing key {key} (expected shape {tuple(ref.shape)})")
        elif tuple(state[key].shape) != tuple(ref.shape):
            problems.append(f"wrong shape for {key}: {tuple(state[key].shape)}, expected {tuple(ref.shape)}")
    for key in state:
        if key not in reference:
            problems.append(f"unexpected key {key} (shape {tuple(state[key].shape)})")
    if problems:
        raise ConvertError(f"{what} does not match torchvision's {name}: {len(problems)} problem(s)\n  "
                           + "\n  ".join(problems))
    for key, t in state.items():
        if reference[key].is_floating_point() and not t.is_floating_point():
            raise ConvertError(f"{what}: {key} has dtype {t.dtype}, expected a floating-point tensor")
    check_finite(state, what)
    return reference


# ---- sources for to-h5 ------------------------------------------------------------------------------------

def sha256_prefix(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def state_from_pth(path):
    """The state dict in a .pth file: plain, or under 'state_dict' / 'model'; DataParallel's 'module.' stripped."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle, zip and torch errors alike: a file torch cannot read
        raise ConvertError(f"{path}: torch.load failed: {e}") from e
    if isinstance(obj, dict):
        for holder in ("state_dict", "model"):
            if holder in obj and isinstance(obj[holder], (dict, torch.nn.Module)):
                obj = obj[holder]
                break
    if isinstance(obj, torch.nn.Module):  # a whole pickled model
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a state dict (or a dict with 'state_dict' or 'model'), "
                           f"found {type(obj).__name__}")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ConvertError(f"{path}: these entries are not tensors: {', '.join(not_tensors)}")
    state = collections.OrderedDict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = collections.OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state


def state_from_torchvision(arch, weights_name, out):
    """torchvision.models.resnetXX(weights=NAME): from torch's hub cache, or downloaded."""
    weights_enum = torchvision.models.get_model_weights(arch)
    try:
        weights = weights_enum[weights_name]
    except KeyError:
        names = ", ".join(weights_enum.__members__)
        raise ConvertError(f"{arch} has no torchvision weights named {weights_name}; choose one of: {names}") from None
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        model = getattr(torchvision.models, arch)(weights=weights)
    except OSError as e:  # urllib's URLError when there is no network; a truncated download
        file = os.path.basename(weights.url)
        raise ConvertError(
            f"could not download {weights} ({e}).\n"
            f"On a machine with network, download {weights.url}\n"
            f"(or run: python3 -c \"import torchvision; torchvision.models.{arch}(weights='{weights_name}')\",\n"
            f"which saves it as ~/.cache/torch/hub/checkpoints/{file}), copy it here and run\n"
            f"  {sys.argv[0]} to-h5 --arch {arch} --pth {file} --out {out}\n"
            f"or put it at {cached} and rerun this command.") from e
    source = f"torchvision {torchvision.__version__} {arch} weights {weights} ({weights.url})"
    return collections.OrderedDict(model.state_dict()), model.fc.out_features, source


def state_from_seed(arch, num_classes, seed):
    torch.manual_seed(seed)
    model = make_model(arch, num_classes)
    source = f"random initialisation: torchvision {torchvision.__version__} {arch}(num_classes={num_classes}) " \
             f"after torch.manual_seed({seed})"
    return collections.OrderedDict(model.state_dict()), source


# ---- writing and reading ----------------------------------------------------------------------------------

def write_h5(path, state, reference, arch, num_classes, source):
    """Datasets in torchvision's key order: float32, and num_batches_tracked as int64 scalars."""
    with atomic_path(path) as temp, h5py.File(temp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["arch"] = arch
        f.attrs["num_classes"] = np.int64(num_classes)
        f.attrs["source"] = source
        for key in reference:
            if key not in state:
                continue  # an absent num_batches_tracked (validate() allowed nothing else)
            t = state[key].detach()
            t = t.to(torch.int64) if is_counter(key) else t.to(torch.float32)
            f.create_dataset(key, data=t.contiguous().numpy())


def read_h5(path):
    """(arch, num_classes, source, state) of a thaw weights file."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConvertError(f"{path}: not an HDF5 file ({e})") from e
    with f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT:
            raise ConvertError(f"{path}: root attribute format is {attrs.get('format')!r}, expected {FORMAT!r}")
        arch = attrs.get("arch")
        if arch not in ARCHS:
            raise ConvertError(f"{path}: root attribute arch is {arch!r}, expected one of {', '.join(ARCHS)}")
        if "num_classes" not in attrs:
            raise ConvertError(f"{path}: root attribute num_classes is missing")
        num_classes = int(attrs["num_classes"])
        state = collections.OrderedDict()
        for key, item in f.items():
            if not isinstance(item, h5py.Dataset):
                raise ConvertError(f"{path}: unexpected group /{key} (a weights file holds root datasets only)")
            state[key] = torch.from_numpy(np.array(item[()]))
        return arch, num_classes, attrs.get("source", ""), state


# ---- subcommands ------------------------------------------------------------------------------------------

def to_h5(args):
    sources = [s for s in (args.pth, args.torchvision, args.random_seed) if s is not None]
    if len(sources) != 1:
        raise ConvertError("give exactly one of --pth, --torchvision, --random-seed")
    if args.pth is not None:
        state = state_from_pth(args.pth)
        num_classes = args.num_classes
        if num_classes is None:
            if "fc.weight" not in state or state["fc.weight"].dim() != 2:
                raise ConvertError(f"{args.pth}: no 2-d fc.weight to infer the number of classes from; "
                                   f"give --num-classes")
            num_classes = state["fc.weight"].shape[0]
        source = f"{os.path.abspath(args.pth)} (sha256 {sha256_prefix(args.pth)}...)"
    elif args.torchvision is not None:
        state, num_classes, source = state_from_torchvision(args.arch, args.torchvision, args.out)
        if args.num_classes is not None and args.num_classes != num_classes:
            raise ConvertError(f"--torchvision {args.torchvision} has {num_classes} classes, not "
                               f"{args.num_classes}; thaw replaces the head when it loads (fc.* re-initialised)")
    else:
        num_classes = 1000 if args.num_classes is None else args.num_classes
        state, source = state_from_seed(args.arch, num_classes, args.random_seed)
    if num_classes < 1:
        raise ConvertError(f"num_classes must be positive, got {num_classes}")

    reference = validate(state, args.arch, num_classes, args.pth or f"{args.arch} weights")
    converted = [k for k, t in state.items() if not is_counter(k) and t.dtype != torch.float32]
    if converted:
        print(f"convert: {len(converted)} tensor(s) converted to float32 from {state[converted[0]].dtype} "
              f"(e.g. {converted[0]})", file=sys.stderr)
    write_h5(args.out, state, reference, args.arch, num_classes, source)
    count = sum(1 for k in state if not is_counter(k))
    params = sum(state[k].numel() for k in state if not is_counter(k))
    print(f"convert: {args.arch}, {num_classes} classes, {count} tensors ({params:,} values) -> {args.out}")


def to_pth(args):
    arch, num_classes, source, stored = read_h5(args.inp)
    reference = validate(stored, arch, num_classes, args.inp)
    state = collections.OrderedDict()
    filled = []
    for key, ref in reference.items():
        if key in stored:
            state[key] = stored[key].to(ref.dtype)
        else:  # a num_batches_tracked the .h5 does not have: 0, as for a new model
            state[key] = torch.zeros_like(ref)
            filled.append(key)
    if filled:
        print(f"convert: {len(filled)} num_batches_tracked counter(s) absent from {args.inp}, set to 0",
              file=sys.stderr)
    model = make_model(arch, num_classes)
    model.load_state_dict(state, strict=True)  # torchvision's own check, after ours

    with atomic_path(args.out) as temp:
        torch.save(state, temp)
    print(f"convert: {args.inp} ({arch}, {num_classes} classes; source: {source}) -> {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    h5 = commands.add_parser("to-h5", help="torchvision weights (.pth, torchvision download, random) -> HDF5")
    h5.add_argument("--arch", required=True, choices=ARCHS)
    source = h5.add_mutually_exclusive_group(required=True)
    source.add_argument("--pth", help="a .pth state dict (plain, or under 'state_dict' / 'model')")
    source.add_argument("--torchvision", metavar="WEIGHTS",
                        help="torchvision weights name, e.g. IMAGENET1K_V1 or DEFAULT (needs the network "
                             "or torch's hub cache)")
    source.add_argument("--random-seed", type=int, metavar="N",
                        help="torchvision's random initialisation after torch.manual_seed(N)")
    h5.add_argument("--num-classes", type=int, help="classifier outputs (default: from fc.weight; 1000 for random)")
    h5.add_argument("--out", required=True, help="HDF5 file to write")

    pth = commands.add_parser("to-pth", help="HDF5 -> .pth state dict that torchvision loads with strict=True")
    pth.add_argument("--in", dest="inp", required=True, help="thaw weights file (.h5)")
    pth.add_argument("--out", required=True, help=".pth file to write")

    args = parser.parse_args(argv)
    try:
        if args.command == "to-h5":
            to_h5(args)
        else:
            to_pth(args)
    except ConvertError as e:
        print(f"convert: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
