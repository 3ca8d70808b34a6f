#!/usr/bin/python3
"""torchvision 0.14 references for thaw's image transforms (data/transforms.h), on PIL images.

    /usr/bin/python3 weights_tools/make_transform_golden.py --pets-mini DIR --out build/golden/transforms.h5

For each image (a few pets-mini files, among them the GIF and the RGBA PNG named .jpg, and a synthetic
gradient with sharp edges), one HDF5 group named after it (the root attribute "images" lists them,
comma-separated) holding, as int32 HWC uint8 values (thaw's H5File reads no uint8):
  - src: the image as torchvision's loader decodes it (PIL, .convert("RGB")); thaw runs its transforms on
    exactly these pixels, so that the comparison measures the transforms, not the JPEG decoders;
  - resize: F.resize(src, 256) (shorter side 256, bilinear, PIL's antialiasing); center_crop: F.center_crop(resize, 224);
  - resized_crop_<i>: F.resized_crop(src, top, left, height, width, [224, 224]) for the rows of the int64
    dataset boxes (top, left, height, width): one shrinking, one enlarging, one thin;
  - hflip: F.hflip(center_crop);
  - rotate_<i>, rotate_src_<i>: F.rotate(center_crop or src, angle, BILINEAR, fill=0) for the angles in the root
    dataset angles (RandomRotation's default would be NEAREST; thaw's rotation is bilinear);
  - brightness_<i>, contrast_<i>, saturation_<i>: F.adjust_*(center_crop, f) for f in the root dataset factors;
  - eval (float32, 3x224x224): Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(ImageNet)]) on src;
  - train (float32, 3x224x224): the augmentation chain with fixed parameters (box: boxes row 0; root
    attributes train_flip, train_angle; root datasets train_order, train_factors (brightness, contrast,
    saturation)): resized_crop, hflip, rotate (bilinear, fill 0), the jitters in train_order (0 brightness,
    1 contrast, 2 saturation), ToTensor, Normalize.
The group attribute "file" is the image's path relative to pets-mini ("" for the synthetic image). Without
pets-mini only the synthetic image is written (root attribute pets_mini 0).

For the decoder, files of other kinds are written beside the output (folder <out>.formats/): a grayscale
JPEG, a progressive JPEG, a palette PNG, a grayscale+alpha PNG, a 24-bit BMP and an 8-bit palette BMP, each
with a group formats/<name> holding src (PIL's decode, .convert("RGB")) and the attribute path.

Needs Debian's python3-torchvision, python3-pil, h5py and numpy (scripts/install-deps.sh).
"""
import argparse
import os

from common import atomic_path, import_or_exit

np = import_or_exit("numpy", "python3-numpy")
h5py = import_or_exit("h5py", "python3-h5py")
Image = import_or_exit("PIL.Image", "python3-pil")
torch = import_or_exit("torch", "python3-torch")
T = import_or_exit("torchvision.transforms", "python3-torchvision")
F = import_or_exit("torchvision.transforms.functional", "python3-torchvision")
InterpolationMode = T.InterpolationMode

PETS_IMAGES = ["Abyssinian_1.jpg", "Abyssinian_10.jpg", "american_bulldog_10.jpg", "yorkshire_terrier_100.jpg",
               "Abyssinian_34.jpg", "Abyssinian_5.jpg"]
FACTORS = [0.0, 0.8, 1.2, 1.7]
ANGLES = [15.0, -12.5, -0.37, 19.83, 90.0, 180.0, -270.0]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TRAIN_ANGLE = -12.5
TRAIN_ORDER = [2, 0, 1]
TRAIN_FACTORS = [1.13, 0.86, 1.19]


def synthetic_gradient():
    """333x517 RGB: smooth ramps, a checkerboard of 1-pixel squares and a hard-edged disc (stresses resampling)."""
    h, w = 333, 517
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // (w - 1)).astype(np.uint8)
    g = (y * 255 // (h - 1)).astype(np.uint8)
    b = (((x // 1 + y // 1) % 2) * 255).astype(np.uint8)
    b[:, : w // 3] = ((x[:, : w // 3] * 7 + y[:, : w // 3] * 3) % 256).astype(np.uint8)
    disc = (x - 300) ** 2 + (y - 150) ** 2 < 80 ** 2
    r[disc], g[disc], b[disc] = 250, 20, 90
    return Image.fromarray(np.stack([r, g, b], axis=-1), "RGB")


def boxes_for(width, height):
    """(top, left, height, width) boxes inside the image: a large one (shrink), a small one (enlarge), a thin one."""
    return [
        (height // 10, width // 7, height * 8 // 10, width * 3 // 4),
        (height // 3, width // 2, max(1, height // 6), max(1, width // 5)),
        (1, 2, height - 3, max(1, width // 9)),
    ]


def u8(img):
    return np.asarray(img, dtype=np.uint8).astype(np.int32)


def normalized(img):
    return F.normalize(F.to_tensor(img), MEAN, STD).numpy().astype(np.float32)


def jitter(img, fn, factor):
    return [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation][fn](img, factor)


def write_image(group, src):
    width, height = src.size
    group.create_dataset("src", data=u8(src))
    resized = F.resize(src, 256, InterpolationMode.BILINEAR)
    group.create_dataset("resize", data=u8(resized))
    cropped = F.center_crop(resized, 224)
    group.create_dataset("center_crop", data=u8(cropped))
    boxes = boxes_for(width, height)
    group.create_dataset("boxes", data=np.array(boxes, dtype=np.int64))
    for i, (top, left, h, w) in enumerate(boxes):
        out = F.resized_crop(src, top, left, h, w, [224, 224], InterpolationMode.BILINEAR)
        group.create_dataset(f"resized_crop_{i}", data=u8(out))
    group.create_dataset("hflip", data=u8(F.hflip(cropped)))
    for i, angle in enumerate(ANGLES):
        out = F.rotate(cropped, angle, InterpolationMode.BILINEAR, fill=0)
        group.create_dataset(f"rotate_{i}", data=u8(out))
        out = F.rotate(src, angle, InterpolationMode.BILINEAR, fill=0)
        group.create_dataset(f"rotate_src_{i}", data=u8(out))
    for i, f in enumerate(FACTORS):
        group.create_dataset(f"brightness_{i}", data=u8(F.adjust_brightness(cropped, f)))
        group.create_dataset(f"contrast_{i}", data=u8(F.adjust_contrast(cropped, f)))
        group.create_dataset(f"saturation_{i}", data=u8(F.adjust_saturation(cropped, f)))

    eval_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    group.create_dataset("eval", data=eval_tf(src).numpy().astype(np.float32))

    top, left, h, w = boxes[0]
    x = F.resized_crop(src, top, left, h, w, [224, 224], InterpolationMode.BILINEAR)
    x = F.hflip(x)
    x = F.rotate(x, TRAIN_ANGLE, InterpolationMode.BILINEAR, fill=0)
    for fn in TRAIN_ORDER:
        x = jitter(x, fn, TRAIN_FACTORS[fn])
    group.create_dataset("train", data=normalized(x))


def write_formats(f, folder):
    """Files in formats the pets images do not cover, and PIL's RGB decode of each."""
    os.makedirs(folder, exist_ok=True)
    base = synthetic_gradient().crop((40, 30, 40 + 161, 30 + 97))  # odd sizes: 161x97
    files = {
        "gray.jpg": (base.convert("L"), dict(format="JPEG", quality=90)),
        "progressive.jpg": (base, dict(format="JPEG", quality=85, progressive=True)),
        "palette.png": (base.convert("P", palette=Image.Palette.ADAPTIVE, colors=37), dict(format="PNG")),
        "gray_alpha.png": (base.convert("LA"), dict(format="PNG")),
        "rgb.bmp": (base, dict(format="BMP")),
        "palette.bmp": (base.convert("P", palette=Image.Palette.ADAPTIVE, colors=200), dict(format="BMP")),
    }
    group = f.create_group("formats")
    for name, (image, options) in files.items():
        path = os.path.join(folder, name)
        with atomic_path(path) as temp:  # tests running in parallel may read it while another run rewrites it
            image.save(temp, **options)
        with Image.open(path) as im:
            src = im.convert("RGB")
        g = group.create_group(name)
        g.attrs["path"] = os.path.abspath(path)
        g.create_dataset("src", data=u8(src))
    group.attrs["names"] = ",".join(files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pets-mini", required=True, help="pets-mini folder (images/ inside); may be missing")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    names = []
    with atomic_path(args.out) as temp:
        with h5py.File(temp, "w") as f:
            f.create_dataset("factors", data=np.array(FACTORS, dtype=np.float64))
            f.create_dataset("angles", data=np.array(ANGLES, dtype=np.float64))
            f.attrs["train_angle"] = TRAIN_ANGLE
            f.attrs["train_flip"] = 1
            f.create_dataset("train_order", data=np.array(TRAIN_ORDER, dtype=np.int64))
            f.create_dataset("train_factors", data=np.array(TRAIN_FACTORS, dtype=np.float64))
            have_pets = os.path.isdir(os.path.join(args.pets_mini, "images"))
            if not have_pets:
                print(f"no pets-mini at {args.pets_mini}: writing the synthetic image and the formats only")
            f.attrs["pets_mini"] = int(have_pets)
            for file in PETS_IMAGES if have_pets else []:
                path = os.path.join(args.pets_mini, "images", file)
                with Image.open(path) as im:
                    src = im.convert("RGB")  # torchvision's pil_loader
                name = os.path.splitext(file)[0]
                group = f.create_group(name)
                group.attrs["file"] = os.path.join("images", file)
                write_image(group, src)
                names.append(name)
            group = f.create_group("synthetic")
            group.attrs["file"] = ""
            write_image(group, synthetic_gradient())
            names.append("synthetic")
            f.attrs["images"] = ",".join(names)
            write_formats(f, args.out + ".formats")
    print(f"wrote {args.out}: {len(names)} images")


if __name__ == "__main__":
    main()
