#!/usr/bin/python3
"""pipelines/regions.py run for real against the built plugin and a tiny random-weight model,
in the style of test_pipelines.py: boxes from a file (clamped by the element, one line per
region with its id, type, rectangle and labels, every frame's own), the motion detector on a
moving test pattern, --region both, and the plain failures (a bad boxes file, no plugin).

    test_regions_app.py BUILD_ROOT     (meson passes the project's build directory)

Exit status 0 when every check passes.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
APP = os.path.join(ROOT, "pipelines", "regions.py")
PYTHON = "/usr/bin/python3"
LABELS = ["a ball", "a square", "a person"]

failures = []


def check(cond, what, detail=""):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        if detail:
            print(detail)
        failures.append(what)


def run(args, env, timeout=120):
    p = subprocess.run([PYTHON, APP] + args, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


REGION = re.compile(r"^(\d+:\d\d:\d\d\.\d{3})  #(\d+) (\S+) \((\d+),(\d+) (\d+)x(\d+)\)  (.*?)"
                    r"   \(analysed in \d+ ms\)$")
FRAME = re.compile(r"^(\d+:\d\d:\d\d\.\d{3})  frame  (.*?)   \(analysed in \d+ ms\)$")


def ranked(text):
    out = []
    for item in text.split("  | "):
        label, _, pct = item.rpartition(" ")
        out.append((label, float(pct.rstrip("%"))))
    return out


def regions(out):
    """[(time, id, type, (x, y, w, h), [(label, percent)])] of the region lines."""
    found = []
    for line in out.splitlines():
        m = REGION.match(line)
        if m:
            found.append((m.group(1), int(m.group(2)), m.group(3),
                          tuple(int(m.group(i)) for i in range(4, 8)), ranked(m.group(8))))
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_regions_app.py BUILD_ROOT")
    build_root = os.path.abspath(sys.argv[1])
    tmp = tempfile.TemporaryDirectory(prefix="clip-regions-app-")
    model = os.path.join(tmp.name, "model")
    tokenizer = os.environ.get("CLIP_TOKENIZER_DIR", os.path.join(HERE, "data", "clip-tokenizer"))
    subprocess.run([PYTHON, os.path.join(HERE, "reference", "make_checkpoint.py"), model,
                    "--preset", "tiny", "--seed", "7", "--tokenizer-dir", tokenizer],
                   check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, CLIPCLASSIFY_BUILD_DIR=build_root, CLIPCLASSIFY_MODEL=model,
               GST_REGISTRY=os.path.join(tmp.name, "registry.bin"))
    labels = ["--labels", ",".join(LABELS)]

    # --- boxes from a file ----------------------------------------------------------------------
    boxes = os.path.join(tmp.name, "boxes.txt")
    with open(boxes, "w") as f:
        f.write("# frame x y w h type\n"
                "0 10 10 60 50 car\n"
                "2, 280, 200, 80, 80, person   # partly outside the 320x240 frame\n"
                "* 0 0 32 32\n")
    rc, out = run(["--boxes", boxes, "--frames", "4", "--top-k", "3"] + labels, env)
    got = regions(out)
    check(rc == 0 and "4 frames, 6 regions" in out, "regions.py --boxes runs: 4 frames, 6 boxes",
          out)
    want = [("0:00:00.000", 1, "car", (10, 10, 60, 50)), ("0:00:00.000", 2, "box", (0, 0, 32, 32)),
            ("0:00:00.033", 1, "box", (0, 0, 32, 32)),
            ("0:00:00.066", 1, "person", (280, 200, 40, 40)),
            ("0:00:00.066", 2, "box", (0, 0, 32, 32)), ("0:00:00.100", 1, "box", (0, 0, 32, 32))]
    check([g[:4] for g in got] == want,
          "one line per region of each frame: id, type, rectangle clamped to the frame", out)
    check(all(sorted(l for l, _ in g[4]) == sorted(LABELS) for g in got)
          and all(abs(sum(p for _, p in g[4]) - 100.0) <= 0.2 for g in got)
          and all(g[4] == sorted(g[4], key=lambda lp: -lp[1]) for g in got),
          "each region's labels, best first, percentages summing to 100 (top-k = all)", out)
    check(not FRAME.search(out), "region=roi: no frame-level line")

    # --- the motion detector ----------------------------------------------------------------------
    rc, out = run(["--frames", "8", "--region", "both"] + labels, env)
    got = regions(out)
    frames = [line for line in out.splitlines() if FRAME.match(line)]
    check(rc == 0 and len(got) > 0 and all(g[2] == "motion" for g in got),
          "the motion detector finds the moving ball", out)
    check(all(g[0] != "0:00:00.000" for g in got),
          "no motion in the first frame (nothing to compare with)", out)
    check(all(x % 16 == 0 and y % 16 == 0 and w > 0 and h > 0 and x + w <= 320 and y + h <= 240
              for _, _, _, (x, y, w, h), _ in got),
          "motion boxes are whole cells inside the frame", out)
    check(len(frames) == 8, "--region both: a frame line for each of the 8 frames", out)

    # --- plain failures ---------------------------------------------------------------------------
    bad = os.path.join(tmp.name, "bad.txt")
    with open(bad, "w") as f:
        f.write("0 1 2 3\n")
    rc, out = run(["--boxes", bad, "--frames", "1"], env)
    check(rc != 0 and "bad.txt:1" in out, "a bad boxes file: the line is named", out)
    rc, out = run(["--frames", "1"], dict(env, CLIPCLASSIFY_BUILD_DIR=os.path.join(tmp.name, "x"),
                                          GST_PLUGIN_PATH=""))
    check(rc != 0 and "meson compile" in out, "no plugin: says how to build it", out)

    if failures:
        print("\n%d check(s) failed" % len(failures))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
