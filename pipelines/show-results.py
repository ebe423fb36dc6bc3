#!/usr/bin/python3
"""Turns the clipclassify messages that `gst-launch-1.0 -m` prints into one readable line each.

    gst-launch-1.0 -m ... ! clipclassify labels="dog,cat" ! ... | pipelines/show-results.py

prints, per result,

    0:00:02.000  dog 87.3%  | cat 12.7%   (analysed in 41 ms)

Lines that are not clipclassify results pass through unchanged, except the per-message noise of
other elements, which is dropped unless --all is given; --quiet keeps only the results and
gst-launch's ERROR and WARNING lines. Only GStreamer's own parser reads the
message (Gst.Structure), so labels with commas, quotes or spaces come out right.
"""
import argparse
import re
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

MESSAGE = re.compile(r'^Got message #\d+ from element "([^"]*)" \(element\): (clipclassify.*)$')
OTHER_MESSAGE = re.compile(r"^Got message #\d+ from ")
QUIET_KEEP = re.compile(r"^(ERROR|WARNING)")
GST_LAUNCH_CHATTER = re.compile(r"^(Setting pipeline|Freeing pipeline|Execution ended|"
                                r"Redistribute latency|Pipeline is|Got EOS|Interrupt)")


def fmt_time(ns):
    if ns is None or ns < 0 or ns == Gst.CLOCK_TIME_NONE:
        return "-:--:--.---"
    s, ns = divmod(ns, 1000000000)
    return "%d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, ns // 1000000)


def values(structure, field):
    if not structure.has_field(field):
        return []
    v = structure.get_value(field)
    return [v[i] for i in range(len(v))]


def format_result(structure, element=None, show_element=False, show_time=True):
    ok, stream_time = structure.get_uint64("stream-time")
    if not ok or stream_time == Gst.CLOCK_TIME_NONE:
        ok, stream_time = structure.get_uint64("running-time")
    labels = values(structure, "top-labels")
    scores = values(structure, "top-scores")
    if not labels:  # threshold left nothing: show the best one anyway
        # "" when a negative label won: "none of these"
        labels = [structure.get_string("top-label") or "(none of these)"]
        scores = [structure.get_value("top-score") or 0.0]
    ranked = "  | ".join("%s %.1f%%" % (label, 100.0 * score)
                         for label, score in zip(labels, scores))
    ok, latency = structure.get_uint64("latency")
    line = "%s  %s" % (fmt_time(stream_time), ranked) if show_time else ranked
    if ok:
        line += "   (analysed in %d ms)" % (latency // 1000000)
    if show_element and element:
        line = "%s: %s" % (element, line)
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true",
                        help="also pass through the messages of other elements")
    parser.add_argument("--element", action="store_true",
                        help="prefix each result with the element's name")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the results and gst-launch's errors and warnings")
    parser.add_argument("--no-time", action="store_true", help="leave out the stream time")
    args = parser.parse_args()
    Gst.init(None)

    in_error = False  # after an ERROR line, its (multi-line) details are kept too
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line.startswith("ERROR"):
            in_error = True
        m = MESSAGE.match(line)
        if m:
            structure = Gst.Structure.new_from_string(m.group(2))
            if structure is not None and structure.get_name() == "clipclassify":
                print(format_result(structure, m.group(1), args.element, not args.no_time),
                      flush=True)
                continue
        if OTHER_MESSAGE.match(line) and not args.all:
            continue
        if args.quiet and not (QUIET_KEEP.match(line) or
                               (in_error and not GST_LAUNCH_CHATTER.match(line))):
            continue
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
