#!/usr/bin/python3
"""A small application that changes clipclassify's labels while the pipeline plays.

It plays a pipeline, reads every result from the bus, and every few seconds swaps the `labels`
property for the next set. Video keeps flowing: only the new prompts' text embeddings are
computed, on the element's worker, and each result is scored against one complete label set,
which this program checks (a result mixing two sets would be a bug) and prints.

    pipelines/relabel.py                                   # a test pattern, three label sets
    pipelines/relabel.py --sets "red,green,blue;a ball,a square;day,night" --every 3
    pipelines/relabel.py --source /path/to/video.mp4 --duration 60
    pipelines/relabel.py --pipeline "v4l2src ! videoconvert ! clipclassify name=classify \\
        overlay=true ! videoconvert ! autovideosink"      # any pipeline with name=classify

In your own program the whole technique is one line, from any thread, in any state:

    pipeline.get_by_name("classify").set_property("labels", "a person,a bicycle,a car")

Environment: CLIPCLASSIFY_MODEL (model directory), CLIPCLASSIFY_BUILD_DIR (build directory
holding gst/, default ./build of this checkout).
"""
import argparse
import os
import pathlib
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fmt_time(ns):
    if ns == Gst.CLOCK_TIME_NONE:
        return "-:--:--.---"
    s, ns = divmod(ns, Gst.SECOND)
    return "%d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, ns // Gst.MSECOND)


def split_labels(text):
    return [label.strip() for label in text.split(",") if label.strip()]


class Relabeler:
    def __init__(self, pipeline, element, label_sets, every, duration, loop):
        self.pipeline = pipeline
        self.element = element
        self.label_sets = label_sets
        self.every = every
        self.loop = loop
        self.index = 0
        self.results = 0
        self.per_set = [0] * len(label_sets)
        self.mixed = 0
        self.exit_code = 0
        self.started = None
        if duration > 0:
            GLib.timeout_add(int(duration * 1000), self.stop)

    def start(self):
        self.apply(0)
        GLib.timeout_add(int(self.every * 1000), self.next_set)

    def apply(self, index):
        self.index = index
        labels = ",".join(self.label_sets[index])
        print(">>> labels = %s" % labels, flush=True)
        self.element.set_property("labels", labels)

    def next_set(self):
        self.apply((self.index + 1) % len(self.label_sets))
        return GLib.SOURCE_CONTINUE

    def stop(self):
        print(">>> stopping", flush=True)
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def on_result(self, s):
        labels = s.get_value("labels")
        labels = [labels[i] for i in range(len(labels))]
        scores = s.get_value("scores")
        scores = [scores[i] for i in range(len(scores))]
        # Which set was this result scored against? It must be exactly one of them.
        matches = [i for i, ls in enumerate(self.label_sets) if ls == labels]
        self.results += 1
        if matches:
            self.per_set[matches[0]] += 1
            tag = "set %d" % (matches[0] + 1)
        else:
            self.mixed += 1
            tag = "UNKNOWN SET"
        ok, stream_time = s.get_uint64("stream-time")
        ranked = sorted(zip(labels, scores), key=lambda p: -p[1])[:3]
        print("%s  [%s]  %s" % (fmt_time(stream_time if ok else Gst.CLOCK_TIME_NONE), tag,
                                "  | ".join("%s %.1f%%" % (l, 100 * p) for l, p in ranked)),
              flush=True)
        if scores and abs(sum(scores) - 1.0) > 1e-3:
            print("    (scores do not sum to 1: %.6f)" % sum(scores), flush=True)

    def on_message(self, _bus, message):
        t = message.type
        if t == Gst.MessageType.ELEMENT:
            s = message.get_structure()
            if s is not None and s.get_name() == "clipclassify":
                self.on_result(s)
        elif t == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            print("ERROR from %s: %s\n%s" % (message.src.get_name(), err.message, debug or ""),
                  file=sys.stderr, flush=True)
            self.exit_code = 1
            self.loop.quit()
        elif t == Gst.MessageType.WARNING:
            err, _debug = message.parse_warning()
            print("warning from %s: %s" % (message.src.get_name(), err.message),
                  file=sys.stderr, flush=True)
        elif t == Gst.MessageType.EOS:
            print(">>> end of stream", flush=True)
            self.loop.quit()
        return True


def main():
    parser = argparse.ArgumentParser(
        description="Change clipclassify's labels while the pipeline plays.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--sets", default="a red ball,a green ball,a blue ball;"
                        "a circle,a square,a triangle;daytime,nighttime",
                        help='label sets: labels separated by ",", sets by ";"')
    parser.add_argument("--every", type=float, default=5.0, help="seconds between changes")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (default: run until Ctrl-C or EOS)")
    parser.add_argument("--source", default="test",
                        help="test (a moving test pattern), webcam, or a file (default: test)")
    parser.add_argument("--pipeline",
                        help="a whole gst-launch description; must contain a clipclassify "
                             "named 'classify'")
    parser.add_argument("--model", help="model directory (default: the element's default)")
    args = parser.parse_args()

    label_sets = [split_labels(s) for s in args.sets.split(";") if split_labels(s)]
    if not label_sets:
        parser.error("--sets holds no labels")

    if args.pipeline:
        description = args.pipeline
    else:
        if args.source == "test":
            src = ("videotestsrc is-live=true pattern=ball "
                   "! video/x-raw,width=320,height=240,framerate=30/1")
        elif args.source == "webcam":
            src = "v4l2src"
        else:
            src = "uridecodebin uri=%s" % pathlib.Path(args.source).resolve().as_uri()
        description = ("%s ! videoconvert ! clipclassify name=classify ! fakesink sync=true"
                       % src)

    build = pathlib.Path(os.environ.get("CLIPCLASSIFY_BUILD_DIR", ROOT / "build")) / "gst"
    if build.is_dir():
        os.environ["GST_PLUGIN_PATH"] = os.pathsep.join(
            filter(None, [str(build), os.environ.get("GST_PLUGIN_PATH")]))
    Gst.init(None)
    if Gst.ElementFactory.find("clipclassify") is None:
        sys.exit("relabel: the clipclassify element is not found; build it first "
                 "(meson setup build && meson compile -C build) or set CLIPCLASSIFY_BUILD_DIR")

    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:
        sys.exit("relabel: bad pipeline: %s" % e.message)
    element = pipeline.get_by_name("classify")
    if element is None:
        sys.exit("relabel: the pipeline has no element named 'classify'")
    if args.model:
        element.set_property("model", args.model)

    loop = GLib.MainLoop()
    relabeler = Relabeler(pipeline, element, label_sets, args.every, args.duration, loop)
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", relabeler.on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, relabeler.stop)

    relabeler.start()  # the first set is set before PLAYING, the others while playing
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        # The error message on the bus says why (missing model, no camera...).
        msg = bus.timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
        if msg:
            err, _debug = msg.parse_error()
            print("relabel: %s" % err.message, file=sys.stderr)
        pipeline.set_state(Gst.State.NULL)
        return 1
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()

    print("%d results: %s%s" % (
        relabeler.results,
        ", ".join("set %d: %d" % (i + 1, n) for i, n in enumerate(relabeler.per_set)),
        ("; %d scored against no single set!" % relabeler.mixed) if relabeler.mixed else ""),
        flush=True)
    if relabeler.mixed:
        return 1
    return relabeler.exit_code


if __name__ == "__main__":
    sys.exit(main())
