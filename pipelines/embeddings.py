#!/usr/bin/python3
"""Index a video's frames by their CLIP image embeddings, then search them.

clipclassify with `embeddings=true` adds `image-embedding` to every result: the frame's
L2-normalised CLIP embedding, a list of floats in Python. This program stores them with numpy
and answers nearest-neighbour queries by cosine similarity (a dot product, as they are
normalised), with a text, an image or a stored frame as the query.

    pipelines/embeddings.py index VIDEO frames.npz [--every N]     # every Nth frame (default 10)
    pipelines/embeddings.py index --test frames.npz                 # GStreamer's test pattern
    pipelines/embeddings.py search frames.npz --text "a dog on a beach" [-k 5]
    pipelines/embeddings.py search frames.npz --image photo.jpg
    pipelines/embeddings.py search frames.npz --frame 12.5          # frames like the one at 12.5 s

Text and image queries are embedded by `clip-infer` (build/tools/clip-infer, or
$CLIPCLASSIFY_BUILD_DIR/tools/clip-infer) with the same model; `--template` takes the same
values as the element's (an ensemble such as imagenet-7 often ranks better than one template).

The heart of it, for your own program:

    s = message.get_structure()                       # or the buffer's GstClipClassifyMeta
    vector = np.array(list(s.get_value("image-embedding")), dtype=np.float32)
    ...
    matrix = np.stack(vectors)                        # [frames, dim], one row per frame
    similarity = matrix @ query                       # cosine similarities
    best = np.argsort(-similarity)[:5]                # nearest neighbours

Environment: CLIPCLASSIFY_MODEL (model directory), CLIPCLASSIFY_BUILD_DIR (build directory
holding gst/ and tools/, default ./build of this checkout).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build_dir():
    return pathlib.Path(os.environ.get("CLIPCLASSIFY_BUILD_DIR", ROOT / "build"))


def default_model():
    data = os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share"))
    return os.environ.get("CLIPCLASSIFY_MODEL",
                          os.path.join(data, "clipclassify", "models", "clip-vit-base-patch16"))


def fmt_time(ns):
    s, ns = divmod(int(ns), 10**9)
    return "%d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, ns // 10**6)


def index(args):
    plugins = build_dir() / "gst"
    if plugins.is_dir():
        os.environ["GST_PLUGIN_PATH"] = str(plugins) + (
            ":" + os.environ["GST_PLUGIN_PATH"] if os.environ.get("GST_PLUGIN_PATH") else "")
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    if Gst.ElementFactory.find("clipclassify") is None:
        sys.exit("The clipclassify element is not found: build it (meson setup build && "
                 "meson compile -C build) or set CLIPCLASSIFY_BUILD_DIR.")

    if args.test:
        source = "videotestsrc num-buffers=%d pattern=ball" % args.frames
    else:
        source = "filesrc location=%s ! decodebin" % json.dumps(args.video)
    # labels are needed for results to be produced at all; any will do for indexing
    pipeline = Gst.parse_launch(
        "%s ! videoconvert ! clipclassify name=classify mode=sync interval=%d embeddings=true "
        "labels=\"a photo\" model=%s ! fakesink" % (source, args.every, json.dumps(args.model)))
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    times, vectors = [], []
    while True:
        message = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.ELEMENT
                                         | Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            pipeline.set_state(Gst.State.NULL)
            sys.exit("error: %s\n%s" % (error.message, debug or ""))
        if message.type == Gst.MessageType.EOS:
            break
        s = message.get_structure()
        if s.get_name() != "clipclassify":
            continue
        vectors.append(np.array(list(s.get_value("image-embedding")), dtype=np.float32))
        times.append(s.get_value("stream-time"))
    pipeline.set_state(Gst.State.NULL)
    if not vectors:
        sys.exit("no frame was analysed")
    np.savez(args.out, embeddings=np.stack(vectors), times=np.array(times, dtype=np.uint64))
    print("%d frames, %d floats each, saved to %s" % (len(vectors), vectors[0].size, args.out))


def clip_infer(args, command):
    tool = build_dir() / "tools" / "clip-infer"
    r = subprocess.run([str(tool)] + command + ["--model", args.model], capture_output=True)
    if r.returncode != 0:
        sys.exit(r.stderr.decode(errors="replace").strip())
    return json.loads(r.stdout)


def search(args):
    stored = np.load(args.index)
    matrix, times = stored["embeddings"], stored["times"]
    if args.text is not None:
        query = clip_infer(args, ["embed-text", "--template", args.template, args.text])
        query = np.array(query["embeddings"][0], dtype=np.float32)
    elif args.image is not None:
        query = np.array(clip_infer(args, ["embed-image", args.image])["embedding"],
                         dtype=np.float32)
    else:
        nearest = int(np.argmin(np.abs(times.astype(np.float64) - args.frame * 1e9)))
        query = matrix[nearest]
    similarity = matrix @ query
    for i in np.argsort(-similarity, kind="stable")[:args.k]:
        print("%s  %.4f" % (fmt_time(times[i]), similarity[i]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="store the embeddings of a video's frames")
    p.add_argument("video", nargs="?", help="a video file (anything decodebin plays)")
    p.add_argument("out", help="the .npz file to write")
    p.add_argument("--test", action="store_true", help="index videotestsrc instead of a file")
    p.add_argument("--frames", type=int, default=60, help="frames of the test source")
    p.add_argument("--every", type=int, default=10, help="analyse every Nth frame")
    p.add_argument("--model", default=default_model())
    p = sub.add_parser("search", help="nearest frames to a text, an image or a stored frame")
    p.add_argument("index", help="the .npz file written by index")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--text")
    q.add_argument("--image")
    q.add_argument("--frame", type=float, help="the stored frame nearest to this time (s)")
    p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    p.add_argument("--template", default="a photo of a {}.", help="for --text")
    p.add_argument("--model", default=default_model())
    args = parser.parse_args()
    if args.command == "index":
        if args.test == (args.video is not None):
            parser.error("index takes a VIDEO or --test")
        index(args)
    else:
        search(args)


if __name__ == "__main__":
    main()
