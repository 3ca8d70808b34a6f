#!/usr/bin/env python3
"""Writes the diagrams of docs/ as SVG: docs/figures/*.svg. Standard library only.

    scripts/make_figures.py           write the figures
    scripts/make_figures.py --check   fail (status 1) when a figure on disk differs from what this script writes

The figures are text, generated here, so that a change to the code's structure is one edit to this script
and a diff anyone can read, never a redrawn binary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "figures"

SANS = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
MONO = "font-family='DejaVu Sans Mono, Menlo, Consolas, monospace'"


class Svg:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height = width, height
        self.parts = [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>",
            f"<title>{escape(title)}</title>",
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#444'/></marker></defs>",
            f"<rect width='{width}' height='{height}' fill='white'/>",
        ]

    def rect(self, x, y, w, h, fill="#fff", stroke="#444", width=1.2, rx=4, dash=None):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.parts.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='{rx}' fill='{fill}' stroke='{stroke}' "
            f"stroke-width='{width}'{d}/>"
        )

    def text(self, x, y, s, size=13, anchor="start", mono=False, weight="normal", fill="#222"):
        font = MONO if mono else SANS
        self.parts.append(
            f"<text x='{x}' y='{y}' font-size='{size}' text-anchor='{anchor}' font-weight='{weight}' "
            f"fill='{fill}' {font}>{escape(s)}</text>"
        )

    def line(self, x1, y1, x2, y2, stroke="#444", width=1.4, arrow=False, dash=None):
        a = " marker-end='url(#arrow)'" if arrow else ""
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.parts.append(
            f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='{stroke}' stroke-width='{width}'{a}{d}/>"
        )

    def svg(self) -> str:
        return "\n".join(self.parts + ["</svg>"]) + "\n"


def layers() -> str:
    """The layers of the code, each a library with what lives there; dependencies point down."""
    s = Svg(900, 690, "thaw's layers: cli -> bench -> train -> models, optim, data, report -> nn -> kernels -> core")
    s.text(450, 28, "thaw's layers: one library each; every arrow is an #include; none points up", 16, "middle",
           weight="bold")
    boxes = {
        "cli": (250, 50, 400, 62, "#e8f0fe", "cli/  the thaw executable",
                ["one file per subcommand: train.cpp, demo.cpp, ..."]),
        "bench": (250, 140, 400, 62, "#e8f0fe", "bench/  benchmark programs",
                  ["kernels/: thaw bench kernels (cuDNN only here)"]),
        "train": (250, 230, 400, 62, "#e8f0fe", "train/  the training engine",
                  ["trainer, checkpoint, evaluate, predict, parity"]),
        "models": (40, 330, 190, 62, "#e6f4ea", "models/  ResNet18/50", ["resnet.cpp, weights.cpp"]),
        "optim": (250, 330, 190, 62, "#fef7e0", "optim/  optimizers", ["optimizer, freeze masks"]),
        "data": (460, 330, 190, 62, "#e6f4ea", "data/  Oxford-IIIT Pet", ["pets, transforms, loader"]),
        "report": (670, 330, 190, 62, "#e6f4ea", "report/  plots, tables", ["plots, run summaries"]),
        "nn": (40, 430, 380, 62, "#fef7e0", "nn/  modules, differentiable ops",
               ["functional/<op>.cpp: kernel, then a node"]),
        "kernels": (40, 530, 600, 62, "#fce8e6", "kernels/  ops.h: the one dispatch point",
                    ["cpu/<op>.cpp (the specification), cuda/<op>.cu"]),
        "core": (40, 620, 820, 44, "#f1f3f4", "core/  Tensor, Storage, devices, RNG, autograd engine, HDF5, allocator",
                 []),
    }
    for x, y, w, h, fill, title, lines in boxes.values():
        s.rect(x, y, w, h, fill)
        s.text(x + 12, y + 22, title, 14, weight="bold")
        for i, l in enumerate(lines):
            s.text(x + 12, y + 42 + 17 * i, l, 12, mono=True)
    arrows = [
        ((450, 112), (450, 140)), ((450, 202), (450, 230)),
        ((330, 292), (135, 330)), ((420, 292), (345, 330)), ((480, 292), (555, 330)), ((570, 292), (765, 330)),
        ((135, 392), (135, 430)), ((430, 392), (430, 530)), ((230, 492), (230, 530)),
        ((645, 392), (655, 620)), ((765, 392), (765, 620)), ((340, 592), (340, 620)),
    ]
    for (x1, y1), (x2, y2) in arrows:
        s.line(x1, y1, x2, y2, arrow=True)
    s.text(440, 460, "optim calls the update", 11, fill="#555")
    s.text(440, 476, "kernels; it never needs nn/", 11, fill="#555")
    s.text(860, 520, "data and report need", 11, "end", fill="#555")
    s.text(860, 536, "core/ only", 11, "end", fill="#555")
    s.text(860, 560, "an upward #include does not", 11, "end", fill="#555")
    s.text(860, 576, "compile: cmake/ThawLayers.cmake", 11, "end", fill="#555")
    return s.svg()


def implicit_gemm() -> str:
    """The forward convolution as a GEMM whose B operand (im2col) is gathered, never stored."""
    s = Svg(960, 640, "convolution forward as an implicit GEMM")
    s.text(480, 28, "conv2d forward as a GEMM:  Y (K x NPQ) = W (K x CRS) @ col (CRS x NPQ)", 16, "middle",
           weight="bold")
    # A = W, B = col, C = Y, laid out as a matrix product
    ax, ay, aw, ah = 40, 250, 200, 140   # A: K rows x CRS columns
    bx, by, bw, bh = 300, 60, 420, 160   # B: CRS rows x NPQ columns
    cx, cy = bx, ay                      # C: K rows x NPQ columns
    s.rect(ax, ay, aw, ah, "#fef7e0")
    s.text(ax + aw / 2, ay - 26, "A = W viewed as (K, CRS)", 13, "middle", weight="bold")
    s.text(ax + aw / 2, ay - 10, "row k, column (c*R + r)*S + s", 11, "middle", mono=True)
    s.rect(bx, by, bw, bh, "#e8f0fe", dash="6,4")
    s.text(bx + bw + 10, by + 20, "B = col (CRS, NPQ)", 13, weight="bold")
    s.text(bx + bw + 10, by + 38, "never stored: each thread", 11)
    s.text(bx + bw + 10, by + 53, "gathers its elements from x", 11)
    s.text(bx + bw + 10, by + 68, "(0 where the filter reads", 11)
    s.text(bx + bw + 10, by + 83, "padding)", 11)
    s.rect(cx, cy, bw, ah, "#e6f4ea")
    s.text(cx + bw + 10, cy + 20, "C = Y: column (n*P + p)*Q + q", 13, weight="bold")
    s.text(cx + bw + 10, cy + 38, "goes to y[n, k, p, q]", 11, mono=True)
    s.text(cx + bw + 10, cy + 56, "(+ bias[k])", 11, mono=True)
    # the block tile of C and the strips of A and B it reads
    tm, tn = 200 + 60, 300 + 140   # tile origin inside C
    s.rect(tn, tm, 90, 60, "#34a853", stroke="#1e6b34", width=1.5, rx=0)
    s.text(tn + 45, tm + 26, "BM x BN", 12, "middle", weight="bold", fill="white")
    s.text(tn + 45, tm + 42, "one block", 11, "middle", fill="white")
    s.rect(ax, tm, aw, 60, "#fbbc04", stroke="#a06a00", rx=0)
    s.rect(tn, by, 90, bh, "#8ab4f8", stroke="#1a57b8", rx=0)
    for i in range(1, 8):  # k-tiles of 8 along Kd
        s.line(ax + i * aw / 8, tm, ax + i * aw / 8, tm + 60, stroke="#a06a00", width=0.8)
        s.line(tn, by + i * bh / 8, tn + 90, by + i * bh / 8, stroke="#1a57b8", width=0.8)
    s.text(ax + aw / 2, tm + 80, "BM rows of W, walked 8 columns", 11, "middle")
    s.text(ax + aw / 2, tm + 95, "(one k-tile) at a time", 11, "middle")
    s.text(tn + 45, by + bh + 16, "BN columns, 8 rows at a time", 11, "middle")
    s.line(ax + aw + 8, tm + 30, tn - 6, tm + 30, arrow=True, dash="4,3")
    s.line(tn + 45, by + bh + 22, tn + 45, tm - 4, arrow=True, dash="4,3")
    # the index map of one B element, drawn on an input plane
    ox, oy = 40, 430
    s.text(ox, oy, "One element of B, for 3x3 filters, stride 1, pad 1:", 13, weight="bold")
    s.text(ox, oy + 22, "row (c, r, s), column (n, p, q)  ->  x[n, c, p*stride - pad + r, q*stride - pad + s]", 13,
           mono=True)
    cell, gx, gy = 22, 60, oy + 40
    for i in range(6):
        for j in range(6):
            pad = i == 0 or j == 0 or i == 5 or j == 5
            fill = "#f1f3f4" if pad else "#ffffff"
            if 1 <= i <= 3 and 1 <= j <= 3:
                fill = "#d2e3fc"
            s.rect(gx + j * cell, gy + i * cell, cell, cell, fill, stroke="#999", width=0.8, rx=0)
    s.rect(gx + 3 * cell, gy + 3 * cell, cell, cell, "#1a73e8", stroke="#0b3d91", width=1.2, rx=0)
    s.text(gx + 3 * cell + cell / 2, gy + 3 * cell + 15, "x", 12, "middle", weight="bold", fill="white")
    s.text(gx + 3 * cell, gy + 6 * cell + 16, "input plane c (grey: padding)", 11, "middle")
    s.text(240, gy + 16, "A 4x4 input with its 1-pixel padding (grey). Output pixel (p, q) = (1, 1) reads input", 12)
    s.text(240, gy + 34, "rows 0..2, columns 0..2 (shaded); its filter tap (r, s) = (2, 2) is input pixel", 12)
    s.text(240, gy + 52, "(1*1 - 1 + 2, 1*1 - 1 + 2) = (2, 2), the dark square. Backward-data walks the same map", 12)
    s.text(240, gy + 70, "the other way (which outputs read input pixel (h, w)?); backward-weight sums over", 12)
    s.text(240, gy + 88, "(n, p, q) instead of (c, r, s).", 12)
    s.text(240, gy + 112, "passes:  forward M=K, N=NPQ, Kd=CRS;  backward-data M=C, N=NHW, Kd=KRS;", 12, mono=True)
    s.text(240, gy + 130, "         backward-weight M=K, N=CRS, Kd=NPQ (split-K)", 12, mono=True)
    return s.svg()


FIGURES = {"layers.svg": layers, "implicit-gemm.svg": implicit_gemm}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    stale = []
    for name, make in FIGURES.items():
        path, svg = OUT / name, make()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != svg:
                stale.append(str(path.relative_to(REPO)))
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(svg, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"make_figures: out of date: {', '.join(stale)}; run scripts/make_figures.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
