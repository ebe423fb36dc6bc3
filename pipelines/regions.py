#!/usr/bin/python3
"""Classify what a detector found: an application that adds regions of interest to each frame
and prints clipclassify's labels for every region.

It plays two pipelines joined by the application, as a detector stage would be:

    SOURCE ! videoconvert ! RGB ! appsink        (frames to this program)
    appsrc ! clipclassify region=roi ! sink      (frames with GstVideoRegionOfInterestMetas)

and, between them, gives each frame its regions: from a file of boxes (--boxes), or from a
simple detector of its own (moving areas, found by comparing each frame with the previous one).
clipclassify cuts each region out of the frame, classifies it against the labels, and posts a
`clipclassify` message with a `regions` array; this program prints one line per region:

    0:00:01.200  #1 motion (96,40 64x64)  a ball 91.2%  | a square 8.8%   (analysed in 12 ms)

    pipelines/regions.py                                  # test pattern, motion detector
    pipelines/regions.py --source video.mp4 --labels "a person,a dog,a car" --show
    pipelines/regions.py --source test --boxes boxes.txt --region both

A file of boxes has one box per line, `FRAME X Y W H [TYPE]` (comma- or space-separated;
FRAME is the frame index from 0, or `*` for every frame; `#` starts a comment). Boxes may reach
outside the frame: the element clamps them.

Behind a real detector, none of this program is needed: clipclassify reads the regions that
DL Streamer's gvadetect (GstVideoRegionOfInterestMeta) or, on GStreamer 1.24 and later,
`onnxinference ! ssdobjectdetector` (GstAnalyticsODMtd) attach (see the README).

Environment: CLIPCLASSIFY_MODEL (model directory), CLIPCLASSIFY_BUILD_DIR (build directory
holding gst/, default ./build of this checkout).
"""
import argparse
import collections
import os
import pathlib
import re
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVideo  # noqa: E402,F401

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fmt_time(ns):
    if ns is None or ns == Gst.CLOCK_TIME_NONE:
        return "-:--:--.---"
    s, ns = divmod(ns, Gst.SECOND)
    return "%d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, ns // Gst.MSECOND)


# ------------------------------------------------------------------------------------------------
# Where the regions come from

def read_boxes(path):
    """{frame index or '*': [(type, x, y, w, h)]} from a file of boxes."""
    boxes = collections.defaultdict(list)
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x for x in re.split(r"[,\s]+", line) if x]
            try:
                frame = "*" if fields[0] == "*" else int(fields[0])
                x, y, w, h = (int(v) for v in fields[1:5])
            except (ValueError, IndexError):
                sys.exit("regions: %s:%d: expected FRAME X Y W H [TYPE], got %r"
                         % (path, number, line))
            if w <= 0 or h <= 0 or x < 0 or y < 0:
                sys.exit("regions: %s:%d: a box needs x, y >= 0 and a positive size" % (path,
                                                                                      number))
            boxes[frame].append((fields[5] if len(fields) > 5 else "box", x, y, w, h))
    return boxes


class MotionDetector:
    """Moving areas: the frame's grey levels averaged over CELL x CELL cells are compared with
    the previous frame's; cells that changed by more than THRESHOLD grey levels, joined with
    their neighbours, make one box each (one cell of margin around it), and boxes that overlap
    are merged. The first frame has nothing to compare with: no boxes."""

    CELL = 16
    THRESHOLD = 12.0

    def __init__(self, min_cells=1):
        self.previous = None
        self.min_cells = min_cells

    def detect(self, rgb, width, height):
        import numpy as np

        cell = self.CELL
        rows, cols = height // cell, width // cell
        if rows == 0 or cols == 0:
            return []
        grey = rgb[:rows * cell, :cols * cell].astype(np.float32).mean(axis=2)
        cells = grey.reshape(rows, cell, cols, cell).mean(axis=(1, 3))
        previous, self.previous = self.previous, cells
        if previous is None:
            return []
        moving = np.abs(cells - previous) > self.THRESHOLD
        seen = np.zeros_like(moving)
        boxes = []
        for r in range(rows):
            for c in range(cols):
                if not moving[r, c] or seen[r, c]:
                    continue
                # one connected area (4-neighbours), breadth first
                queue, members = [(r, c)], []
                seen[r, c] = True
                while queue:
                    y, x = queue.pop()
                    members.append((y, x))
                    for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                        if 0 <= ny < rows and 0 <= nx < cols and moving[ny, nx] \
                                and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                if len(members) < self.min_cells:
                    continue
                ys = [m[0] for m in members]
                xs = [m[1] for m in members]
                y0, x0 = max(min(ys) - 1, 0), max(min(xs) - 1, 0)
                y1, x1 = min(max(ys) + 2, rows), min(max(xs) + 2, cols)
                boxes.append([x0, y0, x1, y1])
        # An object's leading and trailing edges move, its middle may not: areas whose margins
        # overlap are one object.
        merged = True
        while merged:
            merged = False
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                        boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                    max(a[3], b[3])]
                        del boxes[j]
                        merged = True
                        break
                if merged:
                    break
        return [("motion", x0 * cell, y0 * cell, (x1 - x0) * cell, (y1 - y0) * cell)
                for x0, y0, x1, y1 in boxes]


# ------------------------------------------------------------------------------------------------
# Results

def print_result(s, top_k):
    ok, pts = s.get_uint64("analysed-pts")
    ok_latency, latency = s.get_uint64("latency")
    when = fmt_time(pts if ok else None)
    tail = "   (analysed in %d ms)" % (latency // Gst.MSECOND) if ok_latency else ""
    if s.has_field("top-label"):
        labels, scores = list(s.get_value("labels")), list(s.get_value("scores"))
        ranked = sorted(zip(labels, scores), key=lambda p: -p[1])[:top_k]
        print("%s  frame  %s%s" % (when, "  | ".join("%s %.1f%%" % (l, 100 * p)
                                                       for l, p in ranked), tail), flush=True)
    regions = list(s.get_value("regions")) if s.has_field("regions") else []
    for r in regions:
        labels, scores = list(r.get_value("labels")), list(r.get_value("scores"))
        ranked = sorted(zip(labels, scores), key=lambda p: -p[1])[:top_k]
        print("%s  #%d %s (%d,%d %dx%d)  %s%s" % (
            when, r.get_value("id"), r.get_value("roi-type") or "-", r.get_value("x"),
            r.get_value("y"), r.get_value("width"), r.get_value("height"),
            "  | ".join("%s %.1f%%" % (l, 100 * p) for l, p in ranked), tail), flush=True)


def drain(bus, top_k, timeout=0):
    """Prints the results waiting on the bus; returns (ended, error)."""
    while True:
        msg = bus.timed_pop_filtered(timeout, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                     | Gst.MessageType.ERROR)
        if msg is None:
            return False, None
        if msg.type == Gst.MessageType.EOS:
            return True, None
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            return True, "%s: %s" % (msg.src.get_name(), err.message)
        s = msg.get_structure()
        if s is not None and s.get_name() == "clipclassify":
            print_result(s, top_k)


# ------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(
        description="Add regions of interest to each frame and print clipclassify's labels "
                    "for each region.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--source", default="test",
                        help="test (a moving ball), webcam, or a video/image file "
                             "(default: test)")
    parser.add_argument("--boxes", help="file of boxes (default: the motion detector)")
    parser.add_argument("--labels", default="a ball,a square,a person,a car,an empty background",
                        help="comma-separated labels")
    parser.add_argument("--region", default="roi", choices=["roi", "both"],
                        help="classify the regions only, or the whole frame too (default: roi)")
    parser.add_argument("--crop", default="pad", choices=["center", "squash", "pad"],
                        help="what of each region the model sees (default: pad, all of it)")
    parser.add_argument("--mode", default="sync", choices=["sync", "async"],
                        help="sync: every region of every frame analysed (default); async: "
                             "live, frames skipped while the model is busy")
    parser.add_argument("--max-regions", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=2, help="labels printed per region")
    parser.add_argument("--frames", type=int, default=0,
                        help="stop after this many frames (default: the whole source)")
    parser.add_argument("--width", type=int, default=320, help="test source width")
    parser.add_argument("--height", type=int, default=240, help="test source height")
    parser.add_argument("--show", action="store_true",
                        help="display the video with the boxes and labels drawn")
    parser.add_argument("--model", help="model directory (default: the element's default)")
    args = parser.parse_args()

    boxes = read_boxes(args.boxes) if args.boxes else None
    detector = None if boxes is not None else MotionDetector()
    if detector is not None:
        try:
            import numpy  # noqa: F401
        except ImportError:
            sys.exit("regions: the motion detector needs numpy (apt-get install python3-numpy), "
                     "or give --boxes")

    build = pathlib.Path(os.environ.get("CLIPCLASSIFY_BUILD_DIR", ROOT / "build")) / "gst"
    if build.is_dir():
        os.environ["GST_PLUGIN_PATH"] = os.pathsep.join(
            filter(None, [str(build), os.environ.get("GST_PLUGIN_PATH")]))
    Gst.init(None)
    if Gst.ElementFactory.find("clipclassify") is None:
        sys.exit("regions: the clipclassify element is not found; build it first "
                 "(meson setup build && meson compile -C build) or set CLIPCLASSIFY_BUILD_DIR")

    if args.source == "test":
        src = ("videotestsrc pattern=ball ! video/x-raw,width=%d,height=%d,framerate=30/1"
               % (args.width, args.height))
    elif args.source == "webcam":
        src = "v4l2src"
    else:
        src = "uridecodebin uri=%s" % pathlib.Path(args.source).resolve().as_uri()
    if args.frames > 0 and args.source == "test":
        src = src.replace("videotestsrc ", "videotestsrc num-buffers=%d " % args.frames, 1)
    frames = Gst.parse_launch(
        "%s ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames sync=false "
        "max-buffers=2" % src)
    sink = ("videoconvert ! autovideosink" if args.show else "fakesink sync=false")
    classify = Gst.parse_launch(
        "appsrc name=src format=time ! clipclassify name=classify region=%s crop=%s mode=%s "
        "max-regions=%d top-k=%d overlay=%s ! %s"
        % (args.region, args.crop, args.mode, args.max_regions, args.top_k,
           "true" if args.show else "false", sink))
    element = classify.get_by_name("classify")
    element.set_property("labels", args.labels)
    if args.model:
        element.set_property("model", args.model)
    appsink, appsrc = frames.get_by_name("frames"), classify.get_by_name("src")
    bus = classify.get_bus()

    frames.set_state(Gst.State.PLAYING)
    if classify.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
        print("regions: %s" % (msg.parse_error()[0].message if msg else "cannot start"),
              file=sys.stderr)
        frames.set_state(Gst.State.NULL)
        classify.set_state(Gst.State.NULL)
        return 1

    index, error, n_regions = 0, None, 0
    while args.frames <= 0 or index < args.frames:
        sample = appsink.emit("try-pull-sample", 10 * Gst.SECOND)
        if sample is None:
            msg = frames.get_bus().pop_filtered(Gst.MessageType.ERROR)
            if msg:
                error = "source: %s" % msg.parse_error()[0].message
            break
        if index == 0:
            appsrc.set_property("caps", sample.get_caps())
        info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        # A new buffer around the same memory (no pixel copy), ours alone so metas can be added
        # to it: PyGObject's Buffer.copy() keeps an extra reference, leaving it read-only. The
        # frames are tightly packed (appsink asks for no GstVideoMeta), as the caps say.
        frame = sample.get_buffer()
        buf = Gst.Buffer.new()
        for i in range(frame.n_memory()):
            buf.append_memory(frame.get_memory(i))
        buf.pts, buf.dts, buf.duration = frame.pts, frame.dts, frame.duration
        if boxes is not None:
            found = boxes.get(index, []) + boxes.get("*", [])
        else:
            import numpy as np
            ok, mapped = buf.map(Gst.MapFlags.READ)
            stride = info.stride[0]
            rgb = np.frombuffer(mapped.data, np.uint8, count=stride * info.height)
            rgb = rgb.reshape(info.height, stride)[:, :info.width * 3].reshape(
                info.height, info.width, 3)
            found = detector.detect(rgb, info.width, info.height)
            buf.unmap(mapped)
        for n, (kind, x, y, w, h) in enumerate(found, 1):
            meta = GstVideo.buffer_add_video_region_of_interest_meta(buf, kind, x, y, w, h)
            meta.id = n
        n_regions += len(found)
        if appsrc.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            break
        index += 1
        ended, error = drain(bus, args.top_k)
        if ended:
            break
    frames.set_state(Gst.State.NULL)
    if error is None:
        appsrc.emit("end-of-stream")
        ended = False
        while not ended:
            ended, error = drain(bus, args.top_k, 30 * Gst.SECOND)
            if not ended:
                error = "no end of stream after 30 s"
                break
    classify.set_state(Gst.State.NULL)
    print("%d frames, %d regions" % (index, n_regions), flush=True)
    if error:
        print("regions: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
