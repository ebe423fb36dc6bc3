#!/usr/bin/python3
"""Serves a classified video stream over RTSP: the picture with the top labels drawn on it,
H.264 in RTP, for any RTSP player (VLC, ffplay, gst-play-1.0, an NVR...).

    pipelines/rtsp-server.py [--source webcam|test|FILE|rtsp://...] [--labels "a,b,c"]
                             [--port 8554] [--mount /classified]

    then:  gst-play-1.0 rtsp://127.0.0.1:8554/classified
      or:  vlc rtsp://HOST:8554/classified

One pipeline is shared by every client (the model runs once however many watch), started by the
first client and stopped when the last one leaves. The results are also printed here, one line
each.

Needs, besides clipclassify's own dependencies (Debian 12):
    sudo apt-get install gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly
(gst-rtsp-server's Python bindings, and x264enc). They are not in scripts/install-deps.sh: the
RTSP server library pulls in gstreamer1.0-plugins-bad and some fifty other packages.
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


def missing(what, package):
    sys.exit("rtsp-server: %s is missing. On Debian 12:  sudo apt-get install %s" % (what, package))


try:
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GstRtspServer  # noqa: E402
except (ValueError, ImportError):
    missing("the GstRtspServer Python binding", "gir1.2-gst-rtsp-server-1.0")


def gst_quote(value):
    """A property value for a gst-launch description, whatever characters it holds."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def source_description(source):
    if source == "webcam":
        return "v4l2src device=/dev/video0"
    if source == "test":
        return "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1"
    if "://" in source:
        if source.startswith("rtsp://"):
            return "rtspsrc location=%s latency=200 ! decodebin" % gst_quote(source)
        return "uridecodebin uri=%s" % gst_quote(source)
    path = pathlib.Path(source)
    if not path.exists():
        sys.exit("rtsp-server: no such file: %s" % source)
    # A file plays once at its own pace; the queue decouples the decoder from the encoder.
    return "uridecodebin uri=%s ! queue" % gst_quote(path.resolve().as_uri())


def launch_description(args):
    return (
        "( {src} ! videoconvert ! videoscale ! video/x-raw,width=[16,{w}],height=[16,{h}],"
        "pixel-aspect-ratio=1/1 "
        "! clipclassify name=classify labels={labels} overlay=true top-k={top_k} "
        "! videoconvert ! video/x-raw,format=I420 "
        "! x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate} key-int-max=30 "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    ).format(src=source_description(args.source), labels=gst_quote(args.labels),
             top_k=args.top_k, bitrate=args.bitrate, w=args.max_width, h=args.max_height)


def print_result(structure):
    labels = structure.get_value("top-labels")
    scores = structure.get_value("top-scores")
    ranked = "  | ".join("%s %.1f%%" % (labels[i], 100.0 * scores[i]) for i in range(len(labels)))
    ok, latency = structure.get_uint64("latency")
    print("%s   (analysed in %d ms)" % (ranked or structure.get_string("top-label"),
                                       latency // 1000000 if ok else -1), flush=True)


def on_media_configure(factory, media, quiet):
    # The RTSP media already watches its pipeline's bus; sync messages reach us as well, from the
    # thread that posts them, which is all printing needs. media.get_element() is the bin made
    # from the launch line; its own bus is internal, the messages surface on the top-level one.
    top = media.get_element()
    while top.get_parent() is not None:
        top = top.get_parent()
    bus = top.get_bus()
    if bus is None:
        return
    bus.enable_sync_message_emission()

    def on_sync_message(_bus, message):
        if message.type == Gst.MessageType.ELEMENT:
            s = message.get_structure()
            if s is not None and s.get_name() == "clipclassify" and not quiet:
                print_result(s)
        elif message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            print("rtsp-server: pipeline error: %s (%s)" % (err.message, debug), file=sys.stderr,
                  flush=True)

    bus.connect("sync-message", on_sync_message)


def main():
    parser = argparse.ArgumentParser(
        description="Serve a clipclassify-annotated stream over RTSP.",
        epilog="Needs gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-ugly (x264enc).")
    parser.add_argument("--source", default="webcam",
                        help="webcam (/dev/video0), test (a moving test pattern), a file, or a "
                             "URI such as rtsp://camera/stream (default: webcam)")
    parser.add_argument("--labels", default="a person,a dog,a cat,an empty room",
                        help="comma-separated labels")
    parser.add_argument("--top-k", type=int, default=3, help="labels drawn on the picture")
    parser.add_argument("--port", default="8554")
    parser.add_argument("--address", default="0.0.0.0",
                        help="address to listen on (127.0.0.1 to serve this machine only)")
    parser.add_argument("--mount", default="/classified")
    parser.add_argument("--bitrate", type=int, default=2000, help="H.264 kbit/s")
    parser.add_argument("--max-width", type=int, default=1280)
    parser.add_argument("--max-height", type=int, default=720)
    parser.add_argument("--quiet", action="store_true", help="do not print the results")
    parser.add_argument("--print-launch", action="store_true",
                        help="print the pipeline description and exit")
    args = parser.parse_args()

    description = launch_description(args)
    if args.print_launch:
        print(description)
        return 0

    # The plugin built in this checkout, unless one is installed.
    build = pathlib.Path(os.environ.get("CLIPCLASSIFY_BUILD_DIR", ROOT / "build")) / "gst"
    if build.is_dir():
        os.environ["GST_PLUGIN_PATH"] = os.pathsep.join(
            filter(None, [str(build), os.environ.get("GST_PLUGIN_PATH")]))
    Gst.init(None)
    if Gst.ElementFactory.find("clipclassify") is None:
        sys.exit("rtsp-server: the clipclassify element is not found; build it first "
                 "(meson setup build && meson compile -C build) or set CLIPCLASSIFY_BUILD_DIR")
    if Gst.ElementFactory.find("x264enc") is None:
        missing("the x264enc element", "gstreamer1.0-plugins-ugly")

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(args.port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(description)
    factory.set_shared(True)
    factory.connect("media-configure", on_media_configure, args.quiet)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit("rtsp-server: cannot listen on %s:%s (port in use?)" % (args.address, args.port))

    host = "127.0.0.1" if args.address in ("0.0.0.0", "::") else args.address
    print("Serving rtsp://%s:%s%s  (source: %s; labels: %s)" %
          (host, server.get_bound_port(), args.mount, args.source, args.labels), flush=True)
    print("Watch it with:  gst-play-1.0 rtsp://%s:%s%s" % (host, server.get_bound_port(),
                                                          args.mount), flush=True)

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
