#!/usr/bin/python3
"""A clone of this repository alone has what its tests need.

Development checkouts used to sit beside a `shared/` directory that held the tokenizer data, and
the tests read it from there: a fresh clone then failed most of its tests. Checks:
- $CLIP_TOKENIZER_DIR (set by tests/meson.build) lies inside the source tree;
- make_checkpoint.py's default tokenizer directory (no $CLIP_TOKENIZER_DIR) does too;
- the files there are OpenAI's tokenizer, as pinned independently in
  scripts/clip-vit-base-patch16.sha256 (digests the hub serves), with the MIT licence text;
- no file of the repository refers to a `shared` directory beside or above the checkout.

usage: test_self_contained.py SOURCE_ROOT. Exit status 0 when every check passes.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.environ.get("PYTHON", sys.executable)

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def inside(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def pinned(source_root):
    entries = {}
    with open(os.path.join(source_root, "scripts", "clip-vit-base-patch16.sha256")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and not parts[0].startswith("#"):
                entries[parts[2]] = (parts[0], parts[1])
    return entries


# A path into a `shared` directory outside the checkout: ../shared, /work/shared,
# '..' / 'shared' (meson), "..", "shared" (os.path.join).
OUTSIDE_SHARED = re.compile(r"""\.\./shared\b|/work/shared\b|['"]\.\.['"]\s*[,/]\s*['"]shared['"]""")
SKIP_DIRS = {".git", "__pycache__"}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_self_contained.py SOURCE_ROOT")
    root = os.path.realpath(sys.argv[1])

    tok = os.environ.get("CLIP_TOKENIZER_DIR")
    check(tok is not None and inside(tok, root),
          "CLIP_TOKENIZER_DIR (%s) is inside the source tree %s" % (tok, root))

    env = {k: v for k, v in os.environ.items() if k != "CLIP_TOKENIZER_DIR"}
    default = subprocess.run(
        [PYTHON, "-c", "import make_checkpoint as m; print(m.default_tokenizer_dir())"],
        cwd=os.path.join(HERE, "reference"), env=env, stdout=subprocess.PIPE,
        universal_newlines=True, check=True).stdout.strip()
    check(inside(default, root),
          "make_checkpoint.py's default tokenizer dir (%s) is inside the source tree" % default)

    if tok is not None:
        pins = pinned(root)
        try:
            merges = open(os.path.join(tok, "merges.txt"), "rb").read()
            vocab = json.load(open(os.path.join(tok, "vocab.json"), encoding="utf-8"))
            licence = open(os.path.join(tok, "LICENSE"), encoding="utf-8").read()
        except OSError as e:
            check(False, "the tokenizer files are readable: %s" % e)
        else:
            check(pins.get("merges.txt") ==
                  (hashlib.sha256(merges).hexdigest(), str(len(merges))),
                  "merges.txt is the pinned openai/clip-vit-base-patch16 merges.txt")
            hub_form = json.dumps(vocab, ensure_ascii=False).encode("utf-8")
            check(pins.get("vocab.json") ==
                  (hashlib.sha256(hub_form).hexdigest(), str(len(hub_form))),
                  "vocab.json is the pinned openai/clip-vit-base-patch16 vocabulary")
            check("MIT License" in licence and "OpenAI" in licence,
                  "the MIT licence text of OpenAI's data comes with it")

    offenders = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        # build directories (meson's build*, _build*) are not part of the repository
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS
                       and not (rel == "." and (d.startswith("build") or d.startswith("_build")))]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.samefile(path, os.path.abspath(__file__)) or os.path.islink(path):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        if OUTSIDE_SHARED.search(line):
                            offenders.append("%s:%d: %s" % (os.path.relpath(path, root), n,
                                                            line.strip()[:100]))
            except (UnicodeDecodeError, OSError):
                continue
    check(not offenders, "no file refers to a shared/ directory outside the checkout"
          + "".join("\n         " + o for o in offenders))

    if failures:
        print("\n%d check(s) failed" % len(failures))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
