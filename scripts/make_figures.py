#!/usr/bin/env python3
"""Writes the diagrams and plots of docs/ as SVG: docs/figures/*.svg. Standard library only.

    scripts/make_figures.py                  write the figures
    scripts/make_figures.py --check          fail (status 1) when a figure on disk differs from what this
                                             script writes
    scripts/make_figures.py --thaw PATH      the thaw executable (default build/thaw)

The figures are text, generated here, so that a change to the code's structure is one edit to this script
and a diff anyone can read, never a redrawn binary. Their numbers come from the code or from data, never
typed in: memory-timeline.svg runs `thaw explain --timeline`, conv-tile.svg reads the CUDA kernel's tile
constants, demo-curves.svg reads docs/figures/demo-curves.csv (a measured run: float32 results differ
between CPUs, so the data is committed).
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "figures"

THAW = REPO / "build" / "thaw"  # the executable for memory-timeline.svg; main() sets it from --thaw

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

    def polyline(self, points, stroke="#444", width=1.6, dash=None):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        xy = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(f"<polyline points='{xy}' fill='none' stroke='{stroke}' stroke-width='{width}' "
                          f"stroke-linejoin='round'{d}/>")

    def circle(self, x, y, r, fill="#444", stroke="white"):
        self.parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r}' fill='{fill}' stroke='{stroke}'/>")

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


# ResNet18's children in forward order, as the report's "last l layers" counts them (docs/fine-tuning.md).
RESNET18_STAGES = [
    ("conv1, bn1, relu, maxpool", "stem: 64 x 112 x 112 -> 56 x 56"),
    ("layer1", "2 blocks, 64 channels, 56 x 56"),
    ("layer2", "2 blocks, 128 channels, 28 x 28"),
    ("layer3", "2 blocks, 256 channels, 14 x 14"),
    ("layer4", "2 blocks, 512 channels, 7 x 7"),
    ("avgpool, fc", "global average, then the new head"),
]


def freeze_depth() -> str:
    """ResNet18 for l = 1..5: what trains, and where autograd starts recording (the graph's cut)."""
    s = Svg(900, 470, "the report's last l layers on ResNet18, and where the autograd graph starts")
    s.text(450, 28, "Fine-tuning the last l layers of ResNet18: what trains, and where the graph starts", 16,
           "middle", weight="bold")
    x0, y0, row_h, col_w = 250, 90, 52, 120
    for i, (name, detail) in enumerate(RESNET18_STAGES):
        y = y0 + i * row_h
        s.text(20, y + 22, name, 13, weight="bold", mono=True)
        s.text(20, y + 38, detail, 10, fill="#555")
    for l in range(1, 6):
        x = x0 + (l - 1) * col_w
        s.text(x + 50, y0 - 14, f"l = {l}", 13, "middle", weight="bold")
        first_trainable = len(RESNET18_STAGES) - l  # l = 1: fc only (index 5), l = 5: layer1 (index 1)
        for i in range(len(RESNET18_STAGES)):
            y = y0 + i * row_h
            trains = i >= first_trainable
            s.rect(x, y + 6, 100, row_h - 12, "#fbbc04" if trains else "#e8eaed",
                   stroke="#b06000" if trains else "#9aa0a6")
            s.text(x + 50, y + row_h / 2 + 4, "trains" if trains else "frozen", 11, "middle",
                   fill="#202124" if trains else "#5f6368")
        cut = y0 + first_trainable * row_h + 3
        s.line(x - 6, cut, x + 106, cut, stroke="#d93025", width=2.2, dash="6,3")
    y_note = y0 + len(RESNET18_STAGES) * row_h + 22
    s.line(x0 - 6, y_note - 4, x0 + 30, y_note - 4, stroke="#d93025", width=2.2, dash="6,3")
    s.text(x0 + 40, y_note, "the cut: above it nothing requires a gradient, so no autograd node is recorded and no", 12)
    s.text(x0 + 40, y_note + 17, "activation is kept; the frozen part costs one forward pass. Below it, every op records", 12)
    s.text(x0 + 40, y_note + 34, "a node, and BatchNorm still updates its running statistics unless bn_mode is frozen.", 12)
    return s.svg()


def batch_norm_modes() -> str:
    """Which statistics BatchNorm uses, epoch by epoch, under bn_mode and bn_frozen_from_epoch."""
    s = Svg(900, 330, "BatchNorm's statistics epoch by epoch: train, frozen, frozen from epoch 2")
    s.text(450, 28, "BatchNorm while training, epoch by epoch (evaluation always uses the running statistics)", 15,
           "middle", weight="bold")
    rows = [
        ("bn_mode = \"train\"", "the report's text", ["batch"] * 10),
        ("bn_mode = \"frozen\"", "frozen from the first step", ["running"] * 10),
        ("bn_frozen_from_epoch = 2", "the report's code", ["batch"] + ["running"] * 9),
    ]
    x0, y0, cell = 250, 70, 62
    for e in range(10):
        s.text(x0 + e * cell + cell / 2, y0 - 10, f"epoch {e + 1}", 11, "middle")
    for r, (name, note, cells) in enumerate(rows):
        y = y0 + r * 70
        s.text(20, y + 24, name, 13, weight="bold", mono=True)
        s.text(20, y + 42, note, 11, fill="#555")
        for e, kind in enumerate(cells):
            batch = kind == "batch"
            s.rect(x0 + e * cell + 2, y + 6, cell - 4, 44, "#d2e3fc" if batch else "#fce8e6",
                   stroke="#1a73e8" if batch else "#d93025")
            s.text(x0 + e * cell + cell / 2, y + 26, "batch" if batch else "running", 11, "middle")
            s.text(x0 + e * cell + cell / 2, y + 41, "updated" if batch else "kept", 10, "middle", fill="#555")
    s.text(20, 300, "batch: normalise with this batch's mean and variance, and move the running statistics toward "
                    "them (momentum 0.1).", 12)
    s.text(20, 318, "running: normalise with the running statistics and leave them as they are (the pretrained "
                    "network's, or epoch 1's).", 12)
    return s.svg()


def gradual_unfreezing() -> str:
    """The gradual-unfreezing schedule: one more layer every unfreeze_every epochs."""
    s = Svg(900, 330, "gradual unfreezing: fc first, then one more layer every 2 epochs")
    s.text(450, 28, "Gradual unfreezing (unfreeze_every = 2): the trainable part grows from the head down", 15,
           "middle", weight="bold")
    layers = ["fc", "layer4", "layer3", "layer2", "layer1"]
    x0, y0, cell = 160, 70, 68
    for e in range(10):
        s.text(x0 + e * cell + cell / 2, y0 - 10, f"epoch {e + 1}", 11, "middle")
    for i, name in enumerate(layers):
        y = y0 + i * 42
        s.text(20, y + 25, name, 13, weight="bold", mono=True)
        start = 2 * i  # fc from epoch 1, layer4 from epoch 3, ...
        for e in range(10):
            on = e >= start
            s.rect(x0 + e * cell + 2, y + 6, cell - 4, 30, "#fbbc04" if on else "#e8eaed",
                   stroke="#b06000" if on else "#9aa0a6")
        if i > 0:
            s.text(x0 + start * cell + cell / 2, y + 26, "joins", 11, "middle", weight="bold")
    s.text(20, 292, "One optimizer for the whole run: a layer that joins gets its own parameter group (at lr, or its "
                    "layer_lrs entry),", 12)
    s.text(20, 310, "and the groups already training keep their momentum. thaw demo uses unfreeze_every = 1.", 12)
    return s.svg()


def stride_phases() -> str:
    """Backward-data of a stride-2 convolution, split by stride phase: every pixel's taps are dense."""
    s = Svg(900, 380, "conv2d backward-data by stride phase (stride 2, 3x3, padding 1)")
    s.text(450, 28, "Backward-data of a 3x3 stride-2 convolution, split by stride phase", 16, "middle",
           weight="bold")
    colors = {(0, 0): "#d2e3fc", (0, 1): "#fce8e6", (1, 0): "#e6f4ea", (1, 1): "#fef7e0"}
    gx, gy, cell = 40, 70, 34
    for h in range(8):
        for w in range(8):
            phase = ((h + 1) % 2, (w + 1) % 2)  # (h + pad) mod stride
            s.rect(gx + w * cell, gy + h * cell, cell, cell, colors[phase], stroke="#999", width=0.8, rx=0)
            s.text(gx + w * cell + cell / 2, gy + h * cell + 21, f"{phase[0]}{phase[1]}", 10, "middle",
                   mono=True)
    s.text(gx + 4 * cell, gy + 8 * cell + 18, "dx (8 x 8): each pixel's phase (h + 1) mod 2, (w + 1) mod 2", 11,
           "middle")
    tx = 360
    lines = [
        "An input pixel h is read by output p when h = 2p - 1 + r for a tap r in 0..2,",
        "so only the taps with r = h + 1 (mod the stride 2) can reach it:",
    ]
    phases = [("(0, 0)", "r, s in {0, 2}", "4 of 9 taps"), ("(0, 1)", "r in {0, 2}, s = 1", "2 of 9"),
              ("(1, 0)", "r = 1, s in {0, 2}", "2 of 9"), ("(1, 1)", "r = s = 1", "1 of 9")]
    after = [
        "Looping over all 9 taps for every pixel wastes three quarters of the work",
        "(taps that land between two outputs read zeros). thaw's CUDA kernel runs",
        "one dense implicit GEMM per phase over only its taps, with no division in",
        "the gather: kernels/cuda/conv2d_backward_data.cu, docs/convolution.md.",
    ]
    for i, line in enumerate(lines):
        s.text(tx, gy + 14 + 19 * i, line, 12)
    for i, (phase, taps, count) in enumerate(phases):
        y = gy + 14 + 19 * (len(lines) + 1 + i)
        s.text(tx + 16, y, f"phase {phase}", 12, mono=True)
        s.text(tx + 150, y, taps, 12, mono=True)
        s.text(tx + 330, y, count, 12)
    for i, line in enumerate(after):
        s.text(tx, gy + 14 + 19 * (len(lines) + len(phases) + 2 + i), line, 12)
    return s.svg()


# ---- plots: axes, and the figures drawn from data ----------------------------------------------------------

class Axes:
    """A plot area of s at (x, y, w, h) pixels for data in x_range x y_range, with ticks and gridlines."""

    def __init__(self, s: Svg, box, x_range, y_range):
        self.s, (self.x, self.y, self.w, self.h) = s, box
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range

    def px(self, x, y):
        return (self.x + (x - self.x0) / (self.x1 - self.x0) * self.w,
                self.y + self.h - (y - self.y0) / (self.y1 - self.y0) * self.h)

    def frame(self, x_ticks, y_ticks, x_label, y_label, y_format=str):
        s = self.s
        for v in y_ticks:
            _, py = self.px(self.x0, v)
            s.line(self.x, py, self.x + self.w, py, stroke="#e0e0e0", width=0.8)
            s.text(self.x - 6, py + 4, y_format(v), 11, "end", fill="#555")
        for v in x_ticks:
            px, _ = self.px(v, self.y0)
            s.line(px, self.y + self.h, px, self.y + self.h + 4, stroke="#444", width=1)
            s.text(px, self.y + self.h + 17, str(v), 11, "middle", fill="#555")
        s.line(self.x, self.y + self.h, self.x + self.w, self.y + self.h, stroke="#444", width=1.2)
        s.line(self.x, self.y, self.x, self.y + self.h, stroke="#444", width=1.2)
        s.text(self.x + self.w / 2, self.y + self.h + 36, x_label, 12, "middle")
        s.parts.append(f"<text x='0' y='0' font-size='12' text-anchor='middle' fill='#222' {SANS} "
                       f"transform='translate({self.x - 48},{self.y + self.h / 2}) rotate(-90)'>"
                       f"{escape(y_label)}</text>")


def read_data_csv(path: Path):
    """Rows of a CSV whose first lines may be '#' comments: (the comment lines, the rows as dicts)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    return comments, list(csv.DictReader(line for line in lines if not line.startswith("#")))


MIB = 1048576
# The report's ResNet18 step (experiments/breeds_l3.toml: batch 32, 224x224, 37 breeds, BatchNorm train), l = 1,
# 3, 5 of its "last l layers": what trains, and the curve's colour.
MEMORY_MODES = [(1, "fc only", "#1a73e8"), (3, "layer3, layer4, fc", "#b06000"),
                (5, "layer1-4, fc (all but the stem)", "#d93025")]


def thaw_timeline(layers: int):
    """`thaw explain --timeline` of the report's ResNet18 step with the last `layers` layers trainable."""
    if not THAW.is_file():
        sys.exit(f"make_figures: memory-timeline.svg runs {THAW}, which does not exist: build thaw, or pass "
                 "--thaw PATH")
    command = [str(THAW), "explain", str(REPO / "experiments" / "breeds_l3.toml"), "--layers", str(layers),
               "--timeline"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return list(csv.DictReader(line for line in out.splitlines() if not line.startswith("#")))


def memory_timeline() -> str:
    """Tensor bytes alive through one training step, event by event, for l = 1, 3, 5 (thaw explain --timeline)."""
    timelines = [(l, trains, color, thaw_timeline(l)) for l, trains, color in MEMORY_MODES]
    forward_ops = {sum(row["phase"] == "forward" for row in rows) for _, _, _, rows in timelines}
    assert len(forward_ops) == 1, "the forward pass runs the same ops whatever trains"
    forward_ops = forward_ops.pop()
    events = max(len(rows) for _, _, _, rows in timelines)
    top = max(int(row["peak_bytes"]) for _, _, _, rows in timelines for row in rows) / MIB
    y_max = 100 * (int(top // 100) + 1)

    s = Svg(900, 545, "tensor memory through one training step of ResNet18 for l = 1, 3, 5")
    s.text(450, 26, "One training step of ResNet18, batch 32 at 224x224: tensor memory, op by op", 16, "middle",
           weight="bold")
    s.text(450, 45, "bytes of the tensors the step creates while each forward op or backward node runs (the "
                    "weights, the optimizer's state and the batch come on top)", 11, "middle", fill="#555")
    ax = Axes(s, (80, 70, 790, 300), (0, events), (0, y_max))
    bx, _ = ax.px(forward_ops, 0)
    s.rect(ax.x, ax.y, bx - ax.x, ax.h, fill="#f1f3f4", stroke="none", rx=0)
    ax.frame(range(0, events + 1, 20), range(0, y_max + 1, 100),
             f"event: the {forward_ops} forward ops, then the backward's nodes, then the optimizer", "MiB")
    s.line(bx, ax.y, bx, ax.y + ax.h, stroke="#5f6368", width=1.4, dash="6,3")
    s.text(bx - 6, ax.y + 16, "forward", 12, "end", weight="bold", fill="#5f6368")
    s.text(bx + 6, ax.y + 16, "backward", 12, weight="bold", fill="#5f6368")
    legend_y = 440
    for i, (l, trains, color, rows) in reversed(list(enumerate(timelines))):  # l = 1 on top where they agree
        points = []
        for k, row in enumerate(rows):  # a step: event k spans [k, k + 1) at the bytes alive while it runs
            y = int(row["peak_bytes"]) / MIB
            points += [ax.px(k, y), ax.px(k + 1, y)]
        s.polyline(points, stroke=color, width=1.8)
        step = next(k for k, row in enumerate(rows) if row["op"] == "step")
        sx, sy = ax.px(step + 0.5, int(rows[step]["peak_bytes"]) / MIB)
        s.rect(sx - 3.5, sy - 3.5, 7, 7, fill=color, stroke="white", width=1, rx=0)
        peak = max(range(len(rows)), key=lambda k: int(rows[k]["peak_bytes"]))
        mib = int(rows[peak]["peak_bytes"]) / MIB
        px, py = ax.px(peak + 0.5, mib)
        s.circle(px, py, 5 - i, fill=color)
        where = f"{rows[peak]['phase']}, {rows[peak]['module']} ({rows[peak]['op']})"
        y = legend_y + 20 * i
        s.line(80, y - 4, 110, y - 4, stroke=color, width=2.4)
        s.text(118, y, f"l = {l}: {trains}", 12, weight="bold")
        s.text(380, y, f"peak {mib:.0f} MiB (dot): {where}", 12)
    y = legend_y + 20 * len(timelines)
    s.rect(89, y - 10, 7, 7, fill="#5f6368", stroke="white", width=1, rx=0)
    s.text(118, y, "the optimizer's step (in place); then zero_grad frees the gradients and the step's outputs go",
           12)
    s.text(80, y + 26, "The curves agree until the first op that records a node. Data: thaw explain "
                       "experiments/breeds_l3.toml --layers L --timeline", 11, fill="#555")
    s.text(80, y + 42, "(train/explain.cpp), which tests/test_explain.cpp checks to the byte against real steps' "
                       "CPU memory counters.", 11, fill="#555")
    return s.svg()


DEMO_DATA = OUT / "demo-curves.csv"
# thaw demo's runs (cli/demo.cpp): what each trains, and its curve's colour and dash.
DEMO_RUNS = {
    "pretrain": ("pretrain: the source task, from random weights", "#5f6368", "6,4"),
    "head_only": ("head_only: fc on the frozen pretrained backbone", "#1a73e8", None),
    "last_3": ("last_3: layer3, layer4, fc", "#b06000", None),
    "gradual": ("gradual: fc, then one more layer each epoch", "#34a853", None),
    "from_scratch": ("from_scratch: everything, random weights", "#d93025", None),
}


def demo_curves() -> str:
    """thaw demo's validation accuracy per epoch, run by run, from the committed docs/figures/demo-curves.csv."""
    comments, rows = read_data_csv(DEMO_DATA)
    machine = re.search(r"machine ([^;]+); date ([^;]+);", " ".join(comments))
    assert machine, f"{DEMO_DATA}: the '#' line must say 'machine ...; date ...;'"
    runs = {}
    for row in rows:
        runs.setdefault(row["run"], []).append((int(row["epoch"]), 100 * float(row["val_acc"]),
                                                100 * float(row["test_acc"])))
    epochs = max(e for curve in runs.values() for e, _, _ in curve)
    s = Svg(900, 470, "thaw demo: validation accuracy per epoch of each run")
    s.text(450, 26, "thaw demo: validation accuracy per epoch", 16, "middle", weight="bold")
    s.text(450, 45, f"{machine.group(1)}, {machine.group(2)}, thaw demo (seed 1); float32 results differ "
                    "between CPUs", 11, "middle", fill="#555")
    ax = Axes(s, (80, 70, 420, 300), (0.5, epochs + 0.5), (0, 100))
    ax.frame(range(1, epochs + 1), range(0, 101, 20), "epoch", "validation accuracy (%)")
    chance = 100 / 37
    cx0, cy = ax.px(0.5, chance)
    cx1, _ = ax.px(epochs + 0.5, chance)
    s.line(cx0, cy, cx1, cy, stroke="#9aa0a6", width=1, dash="2,3")
    s.text(cx1 - 4, cy - 5, f"chance: 1/37 = {chance:.1f}%", 10, "end", fill="#5f6368")
    for i, (run, (label, color, dash)) in enumerate(DEMO_RUNS.items()):
        curve = runs[run]
        s.polyline([ax.px(e, acc) for e, acc, _ in curve], stroke=color, width=2, dash=dash)
        for e, acc, _ in curve:
            s.circle(*ax.px(e, acc), 3, fill=color)
        y = 90 + 44 * i
        s.line(530, y - 4, 560, y - 4, stroke=color, width=2.4, dash=dash)
        s.text(568, y, label, 12)
        s.text(568, y + 16, f"last epoch {curve[-1][1]:.1f}%, test {curve[-1][2]:.1f}%", 11, fill="#555")
    s.text(530, 330, "pretrain learns the source classes; the four others", 11, fill="#555")
    s.text(530, 346, "fine-tune on new target classes, from 8 training", 11, fill="#555")
    s.text(530, 362, "images per class (docs/demo-and-reproduce.md).", 11, fill="#555")
    s.text(80, 440, "data: docs/figures/demo-curves.csv, from the runs' metrics.csv and summary.json", 11,
           mono=True, fill="#555")
    return s.svg()


CONV_TILES = REPO / "kernels" / "cuda" / "conv2d_tiles.cuh"
CONV_MATH = REPO / "kernels" / "cuda" / "conv2d_math.cuh"


def conv_tile_constants() -> dict:
    """The block tiling of the CUDA convolutions in fp32 (FmaTile), read from kernels/cuda/conv2d_tiles.cuh and
    conv2d_math.cuh."""
    src = CONV_TILES.read_text(encoding="utf-8") + CONV_MATH.read_text(encoding="utf-8")

    def find(pattern):
        m = re.search(pattern, src)
        if not m:
            sys.exit(f"make_figures: {CONV_TILES.relative_to(REPO)} and {CONV_MATH.relative_to(REPO)} no longer "
                     f"match {pattern!r}: update conv_tile_constants()")
        return m

    fma = src[src.index("struct FmaTile"):]
    return {
        "threads": int(find(r"constexpr int kThreads = (\d+);").group(1)),
        "tile_k": int(find(r"constexpr int kTileK = (\d+);").group(1)),
        "micro": int(find(r"kRows = BM / (\d+), kCols = BN / \1;").group(1)),
        "pad": int(re.search(r"kPad = (\d+);", fma).group(1)),
        "group": int(find(r"return \(i / (\d+)\) \* 64 \+ t16 \* \1 \+ i % \1;").group(1)),
        "tiles": [(int(m), int(n)) for m, n in re.findall(r"\{TileShape::k\d+x\d+, (\d+), (\d+)\}", src)],
    }


def conv_tile() -> str:
    """One thread block of the implicit-GEMM convolution: its tile of Y, the threads' sums, the k-loop."""
    c = conv_tile_constants()
    bm, bn = c["tiles"][0]
    threads, tk, grid, g = c["threads"], c["tile_k"], c["micro"], c["group"]
    tm, tn = bm // grid, bn // grid
    a_loads, b_loads = bm * tk // threads, bn * tk // threads
    smem = 2 * tk * ((bm + c["pad"]) + (bn + c["pad"])) * 4
    s = Svg(900, 670, f"one thread block of the CUDA implicit-GEMM convolution: a {bm}x{bn} tile")
    s.text(450, 26, f"conv2d_forward on CUDA: one block of {threads} threads computes a {bm} x {bn} tile of Y",
           16, "middle", weight="bold")
    # Y: the block's tile at 2.5 px per element, in cells of g x g; thread (ty, tx) owns the cells
    # (ty + 16 i, tx + 16 j): its sums are groups of g x g, 64 apart (micro_offset in conv2d_tiles.cuh).
    scale = 320 / bn
    cx, cy, cw, ch = 240, 270, bn * scale, bm * scale
    s.rect(cx, cy, cw, ch, "#e6f4ea", stroke="#1e6b34", width=1.5, rx=0)
    for i in range(1, bn // g):
        s.line(cx + i * g * scale, cy, cx + i * g * scale, cy + ch, stroke="#c9e8d1", width=0.5)
    for i in range(1, bm // g):
        s.line(cx, cy + i * g * scale, cx + cw, cy + i * g * scale, stroke="#c9e8d1", width=0.5)
    s.line(cx + 64 * scale, cy, cx + 64 * scale, cy + ch, stroke="#1e6b34", width=0.8, dash="3,3")
    s.line(cx, cy + 64 * scale, cx + cw, cy + 64 * scale, stroke="#1e6b34", width=0.8, dash="3,3")
    ty, tx = 1, 2
    for rows in range(tm // g):
        for cols in range(tn // g):
            s.rect(cx + (cols * 64 + tx * g) * scale, cy + (rows * 64 + ty * g) * scale, g * scale, g * scale,
                   "#34a853", stroke="#1e6b34", width=1, rx=0)
    s.text(cx + cw / 2, cy + ch + 18, f"Y tile: {bm} output channels x {bn} output pixels (n, p, q)", 12,
           "middle", weight="bold")
    s.text(cx + cw / 2, cy + ch + 34, f"{grid} x {grid} threads; thread (ty, tx) = ({ty}, {tx}) owns the "
                                      f"{tm} x {tn} dark sums: {g} x {g} groups, 64 apart", 11, "middle")
    # A: BM rows of the filters, walked along C*R*S in k-tiles; B: the gathered im2col columns.
    band, k = tk * scale, 4  # one k-tile's width on the page; the k-tile being multiplied
    ax, aw = 30, 190
    s.rect(ax, cy, aw, ch, "#fef7e0", stroke="#a06a00", rx=0)
    by, bh = 80, 170
    s.rect(cx, by, cw, bh, "#e8f0fe", stroke="#1a57b8", rx=0, dash="6,4")
    for i in range(1, int(aw // band) + 1):
        s.line(ax + i * band, cy, ax + i * band, cy + ch, stroke="#e0c48a", width=0.6)
    for i in range(1, int(bh // band) + 1):
        s.line(cx, by + i * band, cx + cw, by + i * band, stroke="#aac4f0", width=0.6)
    s.rect(ax + k * band, cy, band, ch, "#fbbc04", stroke="#a06a00", rx=0)
    s.rect(cx, by + k * band, cw, band, "#8ab4f8", stroke="#1a57b8", rx=0)
    s.text(ax + aw / 2, cy - 24, f"A = W: {bm} rows x C*R*S", 12, "middle", weight="bold")
    s.text(ax + aw / 2, cy - 9, f"k-tile (dark): {bm} x {tk}", 11, "middle", fill="#a06a00", weight="bold")
    s.text(cx - 12, by + 18, f"B = im2col(x): C*R*S x {bn}", 12, "end", weight="bold")
    s.text(cx - 12, by + 34, "never stored: each thread", 11, "end")
    s.text(cx - 12, by + 49, "gathers its values from x", 11, "end")
    s.text(cx - 12, by + k * band + 14, f"k-tile: {tk} x {bn}", 11, "end", weight="bold", fill="#1a57b8")
    # The numbers, per block and per thread.
    px = 600
    lines = [
        ("kernels/cuda/conv2d_tiles.cuh", "bold"),
        (f"{threads} threads per block (kThreads): {grid} x {grid}", ""),
        ("block tiles BM x BN: " + ", ".join(f"{m}x{n}" for m, n in c["tiles"]), ""),
        ("(the fastest, timed on first use per shape)", ""),
        (f"k-tile: {tk} (kTileK); ceil(C*R*S / {tk}) of them", ""),
        ("", ""),
        (f"Per k-tile, in the {bm} x {bn} tile, a thread", "bold"),
        (f"loads {a_loads} values of A and {b_loads} of B from global", ""),
        ("memory into registers, for the next k-tile;", ""),
        (f"reads {tm} + {tn} floats from shared memory and", ""),
        (f"does {tm * tn} FMAs, {tk} times: {tk * tm * tn} FMAs;", ""),
        ("stores its loads into the idle stage.", ""),
        ("", ""),
        ("Shared memory: two stages", "bold"),
        (f"a[2][{tk}][{bm}+{c['pad']}], b[2][{tk}][{bn}+{c['pad']}] floats", "mono"),
        (f"= {smem:,} bytes; one __syncthreads()", ""),
        ("per k-tile.", ""),
        ("", ""),
        ("Sums per thread, in registers", "bold"),
    ] + [(f"{m}x{n} tile: {m // grid} x {n // grid}", "") for m, n in c["tiles"]]
    for i, (line, style) in enumerate(lines):
        s.text(px, 90 + 19 * i, line, 12, weight="bold" if style == "bold" else "normal", mono=style == "mono")
    s.text(30, 650, "M = K output channels, N = N*P*Q output pixels, Kd = C*R*S (kernels/cuda/conv2d_forward.cu); "
                    "backward-data and backward-weight share the tiling.", 11, fill="#555")
    return s.svg()

FIGURES = {
    "layers.svg": layers,
    "implicit-gemm.svg": implicit_gemm,
    "freeze-depth.svg": freeze_depth,
    "batch-norm-modes.svg": batch_norm_modes,
    "gradual-unfreezing.svg": gradual_unfreezing,
    "stride-phases.svg": stride_phases,
    "memory-timeline.svg": memory_timeline,
    "demo-curves.svg": demo_curves,
    "conv-tile.svg": conv_tile,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--thaw", type=Path, default=REPO / "build" / "thaw",
                    help="the thaw executable, for memory-timeline.svg (default: build/thaw)")
    args = ap.parse_args()
    global THAW
    THAW = args.thaw.resolve()
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
