#!/usr/bin/python3
"""The scripts in pipelines/, run for real against the built plugin and a tiny random-weight
model (tests/reference/make_checkpoint.py): file.sh, relabel.py, show-results.py, embeddings.py
and the plain
failures of _env.sh and rtsp-server.py. The webcam and RTSP-camera scripts need hardware.

    test_pipelines.py BUILD_ROOT     (meson passes the project's build directory)

Exit status 0 when every check passes.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
PIPELINES = os.path.join(ROOT, "pipelines")
PYTHON = "/usr/bin/python3"

failures = []


def check(cond, what, detail=""):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        if detail:
            print(detail)
        failures.append(what)


def run(cmd, env, timeout=120, stdin=None):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       input=stdin, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


RESULT = re.compile(r"^(\d+:\d\d:\d\d\.\d{3})  (.*?)   \(analysed in \d+ ms\)$")


def results(out):
    """(time, [(label, percent)]) for each one-line result in `out`."""
    found = []
    for line in out.splitlines():
        m = RESULT.match(line)
        if m:
            ranked = []
            for item in m.group(2).split("  | "):
                label, _, pct = item.rpartition(" ")
                ranked.append((label, float(pct.rstrip("%"))))
            found.append((m.group(1), ranked))
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_pipelines.py BUILD_ROOT")
    build_root = os.path.abspath(sys.argv[1])
    tmp = tempfile.TemporaryDirectory(prefix="clip-pipelines-")
    model = os.path.join(tmp.name, "model")
    tokenizer = os.environ.get("CLIP_TOKENIZER_DIR",
                               os.path.join(HERE, "data", "clip-tokenizer"))
    subprocess.run([PYTHON, os.path.join(HERE, "reference", "make_checkpoint.py"), model,
                    "--preset", "tiny", "--seed", "7", "--tokenizer-dir", tokenizer],
                   check=True, stdout=subprocess.DEVNULL)

    env = dict(os.environ)
    env.update({"CLIPCLASSIFY_BUILD_DIR": build_root, "CLIPCLASSIFY_MODEL": model,
                "GST_REGISTRY": os.path.join(tmp.name, "registry.bin")})

    # --- show-results.py on real gst-launch -m output ---------------------------------------------
    # 30 fps test source, 3 frames, labels with an escaped comma.
    launch = ["gst-launch-1.0", "-m", "videotestsrc", "num-buffers=3", "!",
              "video/x-raw,width=64,height=48,framerate=30/1", "!", "videoconvert", "!",
              "clipclassify", "mode=sync", "top-k=3", r"labels=a cat,salt\\, pepper,a dog", "!",
              "fakesink"]
    env_plugin = dict(env, GST_PLUGIN_PATH=os.path.join(build_root, "gst"))
    rc, raw = run(launch, env_plugin)
    check(rc == 0, "gst-launch with clipclassify runs", raw)
    check(raw.count("(element): clipclassify,") == 3, "three clipclassify messages", raw)
    rc, out = run([PYTHON, os.path.join(PIPELINES, "show-results.py")], env, stdin=raw.encode())
    res = results(out)
    check(rc == 0 and [t for t, _ in res] == ["0:00:00.000", "0:00:00.033", "0:00:00.066"],
          "show-results: one line per result, at each frame's stream time", out)
    check(len(res) == 3 and
          all(sorted(l for l, _ in r) == ["a cat", "a dog", "salt, pepper"] for _, r in res),
          "show-results: the three labels, the escaped comma kept inside its label", out)
    check(len(res) == 3 and all(abs(sum(p for _, p in r) - 100.0) <= 0.2 for _, r in res),
          "show-results: with top-k = all labels the percentages sum to 100", out)
    check(len(res) == 3 and all(r == sorted(r, key=lambda lp: -lp[1]) for _, r in res),
          "show-results: best first")
    check("Got message" not in out, "show-results drops other elements' messages")

    # --- file.sh: every 10th frame of a 30-frame file, mode=sync ------------------------------------
    video = os.path.join(tmp.name, "clip.avi")
    rc, out = run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=30", "pattern=ball", "!",
                   "video/x-raw,width=160,height=120,framerate=30/1", "!", "jpegenc", "!",
                   "avimux", "!", "filesink", "location=" + video], env)
    check(rc == 0 and os.path.getsize(video) > 0, "test video written", out)
    rc, out = run(["bash", os.path.join(PIPELINES, "file.sh"), video,
                   r"a ball,a square\, or a box", "10"], env)
    res = results(out)
    check(rc == 0 and [t for t, _ in res] == ["0:00:00.000", "0:00:00.333", "0:00:00.666"],
          "file.sh: frames 0, 10 and 20 analysed, each at its own time", out)
    check(len(res) == 3 and
          all(sorted(l for l, _ in r) == ["a ball", "a square, or a box"] for _, r in res),
          "file.sh: the labels as typed (an escaped comma reaches the element)", out)

    # --- relabel.py: label sets swapped while PLAYING ------------------------------------------------
    rc, out = run([PYTHON, os.path.join(PIPELINES, "relabel.py"), "--sets", "red,green;up,down,left",
                   "--every", "0.5", "--duration", "3"], env)
    swaps = out.count(">>> labels = ")
    summary = [l for l in out.splitlines() if " results: " in l]
    check(rc == 0, "relabel.py runs and exits 0", out[-3000:])
    check(swaps >= 4, "relabel.py changed the labels while playing (%d times)" % swaps)
    check("[set 1]" in out and "[set 2]" in out, "results scored against both label sets")
    check("UNKNOWN SET" not in out and summary and "no single set" not in summary[0],
          "every result matches exactly one label set: " + (summary[0] if summary else "?"))

    # --- embeddings.py: index a video's frames, then nearest-neighbour searches -------------------
    npz = os.path.join(tmp.name, "frames.npz")
    rc, out = run([PYTHON, os.path.join(PIPELINES, "embeddings.py"), "index", video, npz,
                   "--every", "10"], env)
    check(rc == 0 and "3 frames" in out, "embeddings.py index: frames 0, 10, 20 stored", out)
    rc, out = run([PYTHON, os.path.join(PIPELINES, "embeddings.py"), "search", npz, "--frame",
                   "0.34", "-k", "3"], env)
    lines = out.split()
    check(rc == 0 and lines[:2] == ["0:00:00.333", "1.0000"] and len(lines) == 6,
          "embeddings.py search --frame: the frame itself first, cosine 1, then the others", out)
    rc, out = run([PYTHON, os.path.join(PIPELINES, "embeddings.py"), "search", npz, "--text",
                   "a ball", "--template", "imagenet-7", "-k", "2"], env)
    check(rc == 0 and len(out.split()) == 4, "embeddings.py search --text (clip-infer, an "
          "ensemble template): two nearest frames", out)

    # --- plain failures ---------------------------------------------------------------------------
    rc, out = run(["bash", os.path.join(PIPELINES, "file.sh"), video],
                  dict(env, CLIPCLASSIFY_MODEL=os.path.join(tmp.name, "nowhere")))
    check(rc == 1 and "download-model.sh" in out, "no model: the scripts say how to get one", out)
    rc, out = run(["bash", os.path.join(PIPELINES, "file.sh"), video],
                  dict(env, CLIPCLASSIFY_BUILD_DIR=os.path.join(tmp.name, "nobuild"),
                       GST_PLUGIN_PATH=""))
    check(rc == 1 and "meson compile" in out, "no plugin: the scripts say how to build it", out)
    rc, out = run([PYTHON, os.path.join(PIPELINES, "rtsp-server.py"), "--print-launch",
                   "--source", "test", "--labels", 'say "hi",b'], env)
    try:
        import gi
        gi.require_version("GstRtspServer", "1.0")
        have_rtsp = True
    except (ImportError, ValueError):
        have_rtsp = False
    if have_rtsp:
        check(rc == 0 and "clipclassify name=classify" in out and 'labels="say \\"hi\\",b"' in out,
              "rtsp-server.py describes its pipeline, labels quoted", out)
    else:
        check(rc != 0 and "apt-get install gir1.2-gst-rtsp-server-1.0" in out,
              "rtsp-server.py without gst-rtsp-server says which package to install", out)

    if failures:
        print("\n%d check(s) failed" % len(failures))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
