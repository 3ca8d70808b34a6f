#!/usr/bin/python3
"""Pillow's JPEG decoding, for thaw's decoder test (tests/test_data_decode.cpp, data/jpeg_decode.h).

    /usr/bin/python3 weights_tools/make_decode_golden.py --pets-mini DIR --out build/golden/decode.h5

Every image is decoded as torchvision's loader does: Image.open(f).convert("RGB"). Written:
  - pets/<name>: int32 HWC pixels of a few pets-mini JPEGs, one of each kind pets-mini has (4:4:4, 4:2:2 and
    4:2:0 chroma, progressive, with an Adobe marker, sizes that are and are not multiples of 16); group
    attribute "file" (relative to pets-mini); root attribute "pets" lists the names, comma-separated;
  - checksums: int64 (N, 3) rows (checksum, height, width) for every pets-mini JPEG, in the order of the root
    attribute "checksum_files"; checksum = sum over the HWC bytes v[i] of v[i] * (2 i + 1), modulo 2^64 (stored
    as int64): any single differing byte changes it;
  - files/<name>: int32 HWC pixels of JPEGs written here, in <out>.files/, of kinds pets-mini lacks: grayscale,
    CMYK (Pillow writes Adobe's inverted convention), 4:2:2 with odd sizes, and two damaged files that libjpeg
    only warns about and Pillow loads: entropy data cut in the middle and closed with an end-of-image marker
    ("premature end of data segment"), and junk bytes before the end-of-image marker ("extraneous bytes");
    group attribute "path"; root attribute "files" lists the names.
Root attributes: pets_mini (0 when the folder is missing: then only files/), pil_version, pil_libjpeg (the
libjpeg-turbo Pillow decodes with).

Needs Debian's python3-pil, h5py and numpy (scripts/install-deps.sh).
"""
import argparse
import io
import os

from common import atomic_path, import_or_exit

np = import_or_exit("numpy", "python3-numpy")
h5py = import_or_exit("h5py", "python3-h5py")
PIL = import_or_exit("PIL", "python3-pil")
Image = import_or_exit("PIL.Image", "python3-pil")
features = import_or_exit("PIL.features", "python3-pil")

# One pets-mini file per kind (chroma sampling, progressive, Adobe marker, size multiple of 16 or not).
PETS = ["Abyssinian_10.jpg",        # 4:4:4, 375x500
        "beagle_173.jpg",           # 4:4:4, 352x288 (multiples of 16)
        "Abyssinian_121.jpg",       # 4:4:4, Adobe marker, 242x233
        "yorkshire_terrier_113.jpg",  # 4:2:2, 237x237
        "Abyssinian_104.jpg",       # 4:2:0, 600x363
        "Abyssinian_159.jpg",       # 4:2:0, Adobe marker, 305x201
        "Abyssinian_120.jpg",       # progressive 4:2:0, 267x400
        "Bengal_157.jpg"]           # progressive 4:4:4, Adobe marker, 262x246


def pil_libjpeg():
    """'libjpeg-turbo 2.1.5' (or 'libjpeg 6.2' for a Pillow built on another libjpeg)."""
    if features.check_feature("libjpeg_turbo"):
        return f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
    return f"libjpeg {features.version('jpg')}"


def rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def checksum(pixels):
    v = pixels.reshape(-1).astype(np.uint64)
    weights = np.arange(v.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(v * weights, dtype=np.uint64).view(np.int64))


def synthetic(height, width):
    """Smooth ramps with a sharp-edged block: chroma upsampling and the IDCT both show."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    b = ((x * 7 + y * 3) % 256).astype(np.uint8)
    block = (abs(x - width // 2) < width // 5) & (abs(y - height // 2) < height // 4)
    r[block], g[block], b[block] = 240, 30, 100
    return np.stack([r, g, b], axis=-1)


def jpeg_bytes(image, **options):
    out = io.BytesIO()
    image.save(out, format="JPEG", **options)
    return out.getvalue()


def made_files():
    """name -> bytes of each JPEG kind pets-mini lacks."""
    base = Image.fromarray(synthetic(97, 161), "RGB")
    plain = jpeg_bytes(base, quality=90)
    sos = plain.find(b"\xff\xda")
    end = plain.rfind(b"\xff\xd9")
    cmyk = np.concatenate([synthetic(61, 83), synthetic(61, 83)[:, ::-1, :1]], axis=-1)
    return {
        "gray.jpg": jpeg_bytes(base.convert("L"), quality=90),
        "cmyk.jpg": jpeg_bytes(Image.fromarray(cmyk, "CMYK"), quality=90),
        "odd_422.jpg": jpeg_bytes(Image.fromarray(synthetic(75, 133), "RGB"), quality=88, subsampling=1),
        "corrupt_segment.jpg": plain[: sos + (end - sos) // 2] + b"\xff\xd9",
        "extraneous_bytes.jpg": plain[:end] + b"\x00\x12\x34" * 5 + plain[end:],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pets-mini", required=True, help="pets-mini folder (images/ inside); may be missing")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    images = os.path.join(args.pets_mini, "images")
    have_pets = os.path.isdir(images)
    folder = args.out + ".files"
    os.makedirs(folder, exist_ok=True)
    with atomic_path(args.out) as temp:
        with h5py.File(temp, "w") as f:
            f.attrs["pets_mini"] = int(have_pets)
            f.attrs["pil_version"] = PIL.__version__
            f.attrs["pil_libjpeg"] = pil_libjpeg()
            if have_pets:
                for file in PETS:
                    g = f.create_group("pets/" + os.path.splitext(file)[0])
                    g.attrs["file"] = os.path.join("images", file)
                    g.create_dataset("src", data=rgb(os.path.join(images, file)).astype(np.int32))
                f.attrs["pets"] = ",".join(os.path.splitext(file)[0] for file in PETS)
                names, rows = [], []
                for file in sorted(os.listdir(images)):
                    path = os.path.join(images, file)
                    with open(path, "rb") as fh:
                        if fh.read(3) != b"\xff\xd8\xff":  # the GIF and the PNG named .jpg
                            continue
                    pixels = rgb(path)
                    names.append(file)
                    rows.append([checksum(pixels), pixels.shape[0], pixels.shape[1]])
                f.attrs["checksum_files"] = ",".join(names)
                f.create_dataset("checksums", data=np.array(rows, dtype=np.int64))
            else:
                print(f"no pets-mini at {args.pets_mini}: writing the made files only")
            files = made_files()
            for name, data in files.items():
                path = os.path.join(folder, name)
                with atomic_path(path) as temp_file:  # a parallel test run may read it while this one writes
                    with open(temp_file, "wb") as fh:
                        fh.write(data)
                g = f.create_group("files/" + name)
                g.attrs["path"] = os.path.abspath(path)
                g.create_dataset("src", data=rgb(path).astype(np.int32))
            f.attrs["files"] = ",".join(files)
    print(f"wrote {args.out} (Pillow {PIL.__version__}, {pil_libjpeg()})")


if __name__ == "__main__":
    main()
