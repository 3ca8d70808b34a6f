#!/usr/bin/env python3
"""Keeps thaw's docs true: runs their marked shell blocks and checks their links.

Two checks, over README.md and docs/*.md (or the files given):

  links     every relative link names a file or folder that exists; a `#anchor` on a markdown link names a
            heading of that file; a link whose text is code names something in the file it points at
            ([`run_backward`](../core/autograd.cpp) needs the word run_backward in core/autograd.cpp;
            [`nn/layers.h`](../nn/layers.h), text equal to the path, only needs the file); line anchors (#L12)
            are refused, since they rot silently. Code spans that look like repo paths (`train/trainer.cpp`,
            first folder one of the repo's own) must exist too. And the code: every repository path named in
            a comment of a source file (C++, CUDA, Python, shell, CMake, TOML: `// the twin is
            cuda/conv2d_forward.cu`, `# see docs/training.md`) must exist, resolved from the repository root or
            from the file's own folder or its parent; a path whose first folder is not the repository's is
            someone else's (`torchvision/models/resnet.py`) and is not checked. No file may send a reader to
            the developers' notes outside the repository.
  commands  every ```sh (or bash/shell) block carries a marker on the line just before its fence:
                <!-- ci: run -->              run it
                <!-- ci: run data -->         run it; it reads ../shared/data/pets-mini (skipped, visibly,
                                              when that is absent)
                <!-- ci: run demo -->         run it; it reads runs/demo, what `thaw demo` writes (with
                                              --demo-dir DIR, runs/demo is a link to DIR: ctest passes the
                                              output of its demo_run test; skipped, visibly, without it)
                <!-- ci: skip REASON -->      listed, never run (needs a GPU, the full dataset, a long time)
                <!-- ci: output [rel=R] [abs=A] -->   before a plain ``` fence: the output shown there must
                                              be what the last run block above it printed (see below)
            `timeout=SECONDS` may follow run (default 120). With --budget S (ctest passes the docs_commands
            test's own TIMEOUT), the links check also fails when the run blocks' timeouts add up to more than
            S, so that ctest can never kill the docs run before a block's own timeout names it. A block runs with bash -e -o pipefail from a
            scratch copy of the repo root (symlinks to the repo's folders, `build` pointing at --build-dir,
            `../shared/data/pets-mini` at --data, a fresh `runs/`), with the build folder on PATH so that
            `thaw`, `build/thaw` and `./build/thaw` all work, and `/tmp/` in the text mapped to a scratch
            folder. Blocks run in reading order (README.md, then docs/ in the order docs/README.md lists
            them, then the rest by name) and share that scratch root, so a chapter may use what an earlier
            one made (predict-and-plots.md uses the run that training.md trains). A failure names the file,
            the line and the command, with the tail of its output.

            An output block is checked line by line: each of its lines must appear in the block's output, in
            order (other lines may come between them); whitespace runs count as one space; a line "..." is
            skipped; each number must equal the printed one within rel (relative) or abs (absolute), the
            larger of the two (default: exactly); every other character must be equal. So a shown number is
            either checked, with its tolerance in the marker, or shown in a plain block whose prose says which
            machine and date it comes from.

Exit status 0 when everything passed (skips included), 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHELL_LANGS = {"sh", "bash", "shell"}
MARKER_RE = re.compile(r"^\s*<!--\s*ci:\s*(.*?)\s*-->\s*$")
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
LINK_RE = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")
DEFAULT_TIMEOUT = 120


@dataclass
class Block:
    path: Path  # the markdown file
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None  # the text after "ci:", or None when unmarked
    marker_line: int = 0


@dataclass
class Doc:
    path: Path
    lines: list[str]
    blocks: list[Block] = field(default_factory=list)
    # (line number, text) of every line outside fences, for the link checks
    prose: list[tuple[int, str]] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def parse(path: Path) -> Doc:
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = Doc(path, lines)
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            doc.prose.append((i + 1, lines[i]))
            h = re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", lines[i])
            if h:
                doc.headings.append(h.group(2))
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[i]):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        marker, marker_line = None, 0
        if start > 0:
            mm = MARKER_RE.match(lines[start - 1])
            if mm:
                marker, marker_line = mm.group(1), start
        indent = len(m.group(1))
        text = "\n".join(l[indent:] if l[:indent].strip() == "" else l for l in body)
        doc.blocks.append(Block(path, start + 1, lang, text, marker, marker_line))
    return doc


def reading_order(files: list[Path]) -> list[Path]:
    """README.md first, then docs/ in the order docs/README.md links them, then the rest by name."""
    order: list[Path] = [REPO / "README.md"]
    index = REPO / "docs" / "README.md"
    if index.exists():
        order.append(index)
        for _, target in re.findall(r"\[([^\]]*)\]\(([^)#\s]+\.md)", index.read_text(encoding="utf-8")):
            order.append((index.parent / target).resolve())
    rank = {p.resolve(): n for n, p in reversed(list(enumerate(order)))}
    return sorted(files, key=lambda p: (rank.get(p.resolve(), len(order)), rel(p)))


# ---- links ---------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub (and GitLab, Gitea) derive from a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Doc) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for h in doc.headings:
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def top_level_dirs() -> set[str]:
    skip = {"build", "runs"}
    return {
        p.name
        for p in REPO.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not p.name.startswith("build") and p.name not in skip
    }


def check_links(docs: list[Doc]) -> list[str]:
    errors: list[str] = []
    by_path = {d.path.resolve(): d for d in docs}
    tops = top_level_dirs()
    cache: dict[Path, str] = {}

    def read(p: Path) -> str:
        if p not in cache:
            cache[p] = p.read_text(encoding="utf-8", errors="replace")
        return cache[p]

    for doc in docs:
        where = rel(doc.path)
        for lineno, line in doc.prose:
            # inline code is not a link; remember the spans so that links inside them are ignored
            for m in LINK_RE.finditer(line):
                before = line[: m.start()]
                if before.count("`") % 2 == 1:
                    continue  # the link is inside a code span
                text, target = m.group(2), m.group(3)
                loc = f"{where}:{lineno}"
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                path_part, _, anchor = target.partition("#")
                dest = (doc.path.parent / path_part).resolve() if path_part else doc.path.resolve()
                if not dest.exists():
                    errors.append(f"{loc}: link to '{target}': {rel(dest)} does not exist")
                    continue
                if anchor:
                    if re.fullmatch(r"L\d+(-L?\d+)?", anchor):
                        errors.append(
                            f"{loc}: link '{target}' points at a line number, which rots as the file changes; "
                            "link the file and name the function in the link text: [`name`](path)"
                        )
                        continue
                    if dest.suffix == ".md":
                        target_doc = by_path.get(dest) or parse(dest)
                        if anchor not in anchors(target_doc):
                            errors.append(
                                f"{loc}: link '{target}': no heading of {rel(dest)} has the anchor '#{anchor}'"
                            )
                    continue
                code = re.fullmatch(r"`([^`]+)`", text.strip())
                if not code or dest.is_dir() or dest.suffix == ".md":
                    continue
                named = code.group(1).strip()
                dest_rel = rel(dest)
                if named.rstrip("/") in (dest.name, dest_rel) or dest_rel.endswith("/" + named):
                    continue  # the text is the path itself
                source = read(dest)
                bare = re.sub(r"\(.*\)$", "", named)  # run_backward() -> run_backward
                for ident in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare):
                    if not re.search(r"(?<![A-Za-z0-9_])" + re.escape(ident) + r"(?![A-Za-z0-9_])", source):
                        errors.append(f"{loc}: [`{named}`]({target}): '{ident}' does not occur in {dest_rel}")
            # code spans that name files of the repo
            for m in CODE_SPAN_RE.finditer(LINK_RE.sub(lambda x: x.group(2), line)):
                span = m.group(2).strip()
                if not re.fullmatch(r"[\w.+-]+(/[\w.+-]+)+/?", span):
                    continue
                if span.split("/")[0] not in tops:
                    continue
                if not (REPO / span).exists():
                    errors.append(f"{where}:{lineno}: `{span}` names a file of the repo that does not exist")
    return errors


# ---- paths named in code comments ------------------------------------------------------------------------

CODE_SUFFIXES = {".cpp", ".h", ".cu", ".cuh", ".py", ".sh", ".cmake", ".toml"}
PATH_TOKEN_RE = re.compile(
    r"(?<![\w./<>*~$-])((?:[A-Za-z0-9_.-]+/)+(?:[A-Za-z0-9_-]+\.(?:cpp|h|cu|cuh|py|sh|md|cmake|toml|svg)|CMakeLists\.txt))"
    r"(?![\w/])"
)
# The developers' own notes live outside the repository; a user who clones it has none of them.
OUTSIDE_RE = re.compile(r"\b(DESIGN\.md|STYLE\.md|seed-notes\.md|device-notes\.md|seed/report\.md)\b|\.\./shared/(?!data/)")


def comment_lines(path: Path, text: str) -> list[tuple[int, str]]:
    """(line number, comment text) of a source file: // comments, # comments, and a Python module docstring."""
    out = []
    c_like = path.suffix in (".cpp", ".h", ".cu", ".cuh")
    for n, line in enumerate(text.split("\n"), 1):
        if c_like:
            i = line.find("//")
            if i >= 0 and "://" not in line[max(0, i - 6) : i + 2]:
                out.append((n, line[i:]))
        else:
            stripped = line.lstrip()
            if stripped.startswith("#") and not stripped.startswith("#!"):
                out.append((n, stripped))
    if path.suffix == ".py":
        m = re.match(r'(?:\s*#.*\n)*\s*r?"""(.*?)"""', text, re.S)
        if m:
            first = text[: m.start(1)].count("\n") + 1
            out += [(first + k, line) for k, line in enumerate(m.group(1).split("\n"))]
    return out


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        return [REPO / f for f in listing.split() if (REPO / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts]


def check_code_paths() -> list[str]:
    errors = []
    tops = top_level_dirs()
    for path in tracked_files():
        if not (path.suffix in CODE_SUFFIXES or path.name == "CMakeLists.txt"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        where = rel(path)
        for n, comment in comment_lines(path, text):
            if OUTSIDE_RE.search(comment):
                errors.append(f"{where}:{n}: names a file outside the repository: {comment.strip()}")
            for token in PATH_TOKEN_RE.findall(comment):
                first = token.split("/")[0]
                bases = [REPO, path.parent, path.parent.parent]
                if first not in tops and not any((b / first).is_dir() for b in bases[1:]):
                    continue  # someone else's path
                if not any((b / token).exists() for b in bases):
                    errors.append(f"{where}:{n}: the comment names {token}, which does not exist")
    return errors


def check_outside_references(docs: list[Doc]) -> list[str]:
    errors = []
    for doc in docs:
        for n, line in enumerate(doc.lines, 1):
            if OUTSIDE_RE.search(line):
                errors.append(f"{rel(doc.path)}:{n}: names a file outside the repository: {line.strip()}")
    return errors


# ---- commands ------------------------------------------------------------------------------------------


NUMBER_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def parse_output_marker(marker: str) -> tuple[float, float]:
    """'output rel=0.05 abs=2' -> (0.05, 2.0)."""
    rel_tol, abs_tol = 0.0, 0.0
    for w in marker.split()[1:]:
        key, _, value = w.partition("=")
        if key == "rel":
            rel_tol = float(value)
        elif key == "abs":
            abs_tol = float(value)
        else:
            raise ValueError(f"'<!-- ci: {marker} -->': unknown word '{w}' (known: rel=R, abs=A)")
    return rel_tol, abs_tol


def line_matches(expected: str, actual: str, rel_tol: float, abs_tol: float) -> bool:
    """Numbers within tolerance, every other character equal (whitespace runs as one space)."""
    e, a = " ".join(expected.split()), " ".join(actual.split())
    e_nums, a_nums = NUMBER_RE.findall(e), NUMBER_RE.findall(a)
    if NUMBER_RE.sub("#", e) != NUMBER_RE.sub("#", a) or len(e_nums) != len(a_nums):
        return False
    return all(abs(float(x) - float(y)) <= max(rel_tol * abs(float(x)), abs_tol) for x, y in zip(e_nums, a_nums))


def compare_output(expected: str, actual: str, rel_tol: float, abs_tol: float) -> str | None:
    """None when every expected line appears in actual, in order ("..." skipped); else what is missing."""
    lines = [l for l in actual.split("\n") if l.strip()]
    i = 0
    for want in (l for l in expected.split("\n") if l.strip() and l.strip() != "..."):
        while i < len(lines) and not line_matches(want, lines[i], rel_tol, abs_tol):
            i += 1
        if i == len(lines):
            return f"the shown line '{want.strip()}' is not in what the block printed (rel={rel_tol}, abs={abs_tol})"
        i += 1
    return None


def parse_marker(marker: str) -> tuple[str, set[str], int, str]:
    """'run data timeout=60' -> ('run', {'data'}, 60, ''); 'skip needs a GPU' -> ('skip', set(), 0, reason)."""
    words = marker.split()
    if not words or words[0] not in ("run", "skip"):
        raise ValueError(f"'<!-- ci: {marker} -->': expected 'run [data] [timeout=S]' or 'skip REASON'")
    if words[0] == "skip":
        reason = marker[len("skip") :].strip(" :")
        if not reason:
            raise ValueError("'<!-- ci: skip -->' needs a reason: '<!-- ci: skip needs a GPU -->'")
        return "skip", set(), 0, reason
    flags, timeout = set(), DEFAULT_TIMEOUT
    for w in words[1:]:
        if w in ("data", "demo"):
            flags.add(w)
        elif w.startswith("timeout="):
            timeout = int(w.split("=", 1)[1])
        else:
            raise ValueError(f"'<!-- ci: {marker} -->': unknown word '{w}' (known: data, demo, timeout=S)")
    return "run", flags, timeout, ""


def check_markers(docs: list[Doc]) -> list[str]:
    errors = []
    for doc in docs:
        fence_lines = {b.marker_line for b in doc.blocks if b.marker is not None}
        for n, line in enumerate(doc.lines, 1):
            if MARKER_RE.match(line) and n not in fence_lines:
                errors.append(f"{rel(doc.path)}:{n}: a ci marker must be the line just before a ```sh fence")
        for b in doc.blocks:
            loc = f"{rel(b.path)}:{b.line}"
            if b.marker is None:
                if b.lang in SHELL_LANGS:
                    errors.append(
                        f"{loc}: a ```{b.lang} block without a marker; put '<!-- ci: run -->', "
                        "'<!-- ci: run data -->' or '<!-- ci: skip REASON -->' on the line before it "
                        "(output and synopses go in a plain ``` fence)"
                    )
                continue
            if b.marker.split()[:1] == ["output"]:
                if b.lang in SHELL_LANGS:
                    errors.append(f"{loc}: '<!-- ci: output -->' goes before the shown output (a plain ``` fence)")
                try:
                    parse_output_marker(b.marker)
                except ValueError as e:
                    errors.append(f"{loc}: {e}")
                continue
            if b.lang not in SHELL_LANGS:
                errors.append(f"{loc}: a ci marker on a ```{b.lang or '(plain)'} block; only ```sh blocks run")
                continue
            try:
                parse_marker(b.marker)
            except ValueError as e:
                errors.append(f"{loc}: {e}")
    return errors


def check_budget(docs: list[Doc], budget: int) -> list[str]:
    """The run blocks' timeouts must add up to at most budget seconds (the ctest TIMEOUT of docs_commands)."""
    total = 0
    for doc in docs:
        for b in doc.blocks:
            if b.marker is not None and b.lang in SHELL_LANGS:
                try:
                    kind, _, timeout, _ = parse_marker(b.marker)
                except ValueError:
                    continue  # reported by check_markers
                total += timeout if kind == "run" else 0
    if total > budget:
        return [f"the run blocks' timeouts add up to {total} s, more than the {budget} s that ctest gives "
                "docs_commands: lower some block's timeout= or raise the TIMEOUT in tests/CMakeLists.txt"]
    return []


def logical_commands(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, command) with backslash continuations joined; lines 1-based in the block."""
    out, start, acc = [], 0, []
    for n, line in enumerate(text.split("\n"), 1):
        if not acc:
            start = n
        acc.append(line)
        if not line.rstrip().endswith("\\"):
            cmd = "\n".join(acc)
            if cmd.strip() and not cmd.strip().startswith("#"):
                out.append((start, n, cmd))
            acc = []
    return out


def make_scratch(build_dir: Path, data_dir: Path | None, demo_dir: Path | None) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="thaw-docs-"))
    root = scratch / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in (".git", "runs") or entry.name.startswith("build"):
            continue
        (root / entry.name).symlink_to(entry)
    (root / "build").symlink_to(build_dir)
    if demo_dir is not None:
        (root / "runs").mkdir()
        (root / "runs" / "demo").symlink_to(demo_dir)
    (scratch / "tmp").mkdir()
    if data_dir is not None:
        (scratch / "shared" / "data").mkdir(parents=True)
        (scratch / "shared" / "data" / "pets-mini").symlink_to(data_dir)
    return scratch


def run_blocks(
    docs: list[Doc], build_dir: Path, data_dir: Path | None, demo_dir: Path | None, keep: bool
) -> tuple[list[str], int]:
    errors: list[str] = []
    thaw = build_dir / "thaw"
    if not thaw.exists():
        return [f"{thaw} does not exist: build thaw first, or pass --build-dir"], 0
    has_data = data_dir is not None and (data_dir / "annotations" / "list.txt").exists()
    has_demo = demo_dir is not None and (demo_dir / "pretrain" / "weights.h5").exists()
    scratch = make_scratch(build_dir, data_dir if has_data else None, demo_dir if has_demo else None)
    root = scratch / "repo"
    env = dict(os.environ)
    env["PATH"] = f"{build_dir}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(scratch / "tmp")
    print(f"scratch root: {root} (build: {build_dir}; pets-mini: {data_dir if has_data else 'absent'}; "
          f"demo output: {demo_dir if has_demo else 'absent'})")
    ran = 0
    total = time.monotonic()
    try:
        for doc in docs:
            last_output: str | None = None  # what the last block that ran in this file printed
            for b in doc.blocks:
                loc = f"{rel(b.path)}:{b.line}"
                if b.marker is not None and b.marker.split()[:1] == ["output"] and b.lang not in SHELL_LANGS:
                    if last_output is None:
                        print(f"  not checked  {loc}: shown output of a block that did not run here")
                        continue
                    problem = compare_output(b.text, last_output, *parse_output_marker(b.marker))
                    if problem:
                        errors.append(f"{loc}: {problem}")
                        print(f"  OUTPUT DIFFERS  {loc}")
                    else:
                        print(f"  output ok  {loc}")
                    continue
                if b.marker is None or b.lang not in SHELL_LANGS:
                    continue
                try:
                    kind, flags, timeout, reason = parse_marker(b.marker)
                except ValueError as e:
                    errors.append(f"{loc}: {e}")
                    continue
                first = b.text.strip().split("\n")[0]
                last_output = None
                if kind == "skip":
                    print(f"  not run  {loc}: {reason}: {first}")
                    continue
                if "data" in flags and not has_data:
                    print(f"  SKIPPED  {loc}: needs pets-mini, not found at {data_dir}: {first}")
                    continue
                if "demo" in flags and not has_demo:
                    print(f"  SKIPPED  {loc}: needs thaw demo's output (--demo-dir), not found: {first}")
                    continue
                script = b.text.replace("/tmp/", f"{scratch}/tmp/")
                trap = 'trap \'echo "check_docs: failed at block line $LINENO" >&2\' ERR\n'
                started = time.monotonic()
                try:
                    proc = subprocess.run(
                        ["bash", "-e", "-o", "pipefail", "-c", trap + script],
                        cwd=root,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        timeout=timeout,
                        text=True,
                        errors="replace",
                    )
                    status, output = proc.returncode, proc.stdout
                except subprocess.TimeoutExpired as e:
                    out = e.stdout or ""
                    status = None
                    output = out if isinstance(out, str) else out.decode(errors="replace")
                seconds = time.monotonic() - started
                ran += 1
                last_output = output.replace(f"{scratch}/tmp/", "/tmp/")
                if status == 0:
                    print(f"  ok {seconds:6.1f} s  {loc}: {first}")
                    continue
                failed_at = re.findall(r"check_docs: failed at block line (\d+)", output)
                cmds = logical_commands(b.text)
                cmd_line, cmd = b.line + 1, b.text.strip()
                if failed_at:
                    n = int(failed_at[-1]) - 1  # the trap line comes first
                    for lo, _, c in cmds:  # the last command that starts at or before that line
                        if lo <= n:
                            cmd_line, cmd = b.line + lo, c
                why = f"timed out after {timeout} s" if status is None else f"exit status {status}"
                tail = "\n".join("      " + l for l in output.rstrip().split("\n")[-40:])
                errors.append(f"{rel(b.path)}:{cmd_line}: {why} ({seconds:.1f} s):\n    {cmd}\n{tail}")
                print(f"  FAILED {seconds:5.1f} s  {rel(b.path)}:{cmd_line}: {first}")
    finally:
        if keep:
            print(f"kept the scratch root: {root}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{ran} blocks ran in {time.monotonic() - total:.1f} s")
    return errors, ran


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path, help="markdown files (default: README.md and docs/*.md)")
    ap.add_argument("--links", action="store_true", help="check links and markers only")
    ap.add_argument("--commands", action="store_true", help="run the marked command blocks only")
    ap.add_argument("--build-dir", type=Path, default=REPO / "build", help="the build with thaw (default build/)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "pets-mini", help="pets-mini")
    ap.add_argument("--demo-dir", type=Path, help="the output of a `thaw demo` run, linked as runs/demo")
    ap.add_argument("--list", action="store_true", help="list the command blocks and their markers, run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the scratch root to look at what the blocks made")
    ap.add_argument("--budget", type=int, help="seconds the run blocks' timeouts may add up to (links check)")
    args = ap.parse_args()

    files = [f.resolve() for f in args.files] or [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    docs = [parse(f) for f in reading_order(files)]
    do_links = args.links or not args.commands
    do_commands = args.commands or not args.links

    if args.list:
        for doc in docs:
            for b in doc.blocks:
                if b.lang in SHELL_LANGS or b.marker is not None:
                    first = b.text.strip().split("\n")[0]
                    print(f"{rel(b.path)}:{b.line}  [{b.marker or 'UNMARKED'}]  {first}")
        return 0

    # markers are checked with the links; --commands alone runs what is validly marked
    errors = check_markers(docs) if do_links else []
    if do_links:
        errors += check_links(docs)
        errors += check_outside_references(docs)
        if not args.files:
            errors += check_code_paths()
        if args.budget is not None:
            errors += check_budget(docs, args.budget)
        print(f"links: {len(docs)} files checked")
    if do_commands and not errors:
        demo = args.demo_dir.resolve() if args.demo_dir else None
        run_errors, _ = run_blocks(docs, args.build_dir.resolve(), args.data.resolve(), demo, args.keep)
        errors += run_errors
    for e in errors:
        print(f"check_docs: {e}", file=sys.stderr)
    if errors:
        print(f"check_docs: {len(errors)} problem(s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
