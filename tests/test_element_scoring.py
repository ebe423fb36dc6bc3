#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The clipclassify element's scoring features (issue 8), from Python, against numpy:

- prompt ensembles (`template` with "|", imagenet-7) give the reference's ensembled scores;
- negative labels share the softmax, and top-labels/top-label/overlay leave out whatever a
  negative label beats;
- `embeddings` attaches the L2-normalised image embedding, equal to the reference's (and to
  `clip-infer embed-image` of the same pixels);
- `json-location` writes one JSON line per result equal to the message, also with messages off;
  an unopenable path is an element error at start;
- `smoothing`: smoothed-scores recomputed here from the raw scores and the frames' running times
  (exponential smoothing with alpha = 1 - exp(-dt / tau)), reset on relabel, flush and segment;
- `changes-only`: a message exactly when top-label changes, with previous-top-label.

The element runs alone in a pipeline between two pads of this script (a small harness: events
and buffers pushed by hand, in sync mode, so every buffer carries its own frame's result).
Exit status 0 when every check passes.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import gi
import numpy as np
from PIL import Image

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

REFERENCE_DIR = os.environ.get("CLIP_REFERENCE_DIR",
                               os.path.join(os.path.dirname(__file__), "reference"))
sys.path.insert(0, REFERENCE_DIR)
import clip_reference  # noqa: E402
import clip_tokenizer  # noqa: E402
import make_checkpoint  # noqa: E402

CLIP_INFER = os.environ.get("CLIP_INFER", "build/tools/clip-infer")
META = "GstClipClassifyMeta"
WIDTH, HEIGHT = 40, 30
# float32 engine vs float64 reference, through the logit scale (test_element_python.py's)
TOLERANCE = 1e-5
EMBED_TOL = 5e-6

IMAGENET_7 = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.",
              "a photo of the large {}.", "a {} in a video game.", "art of the {}.",
              "a photo of the small {}."]

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def set_logit_scale(model_dir, scale):
    """Rewrites the checkpoint's logit_scale so that exp(logit_scale) = scale. A random model's
    cosines spread far wider than a trained one's; at CLIP's 100 its probabilities would all be
    0 or 1, where differences of scores hide."""
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        info = json.loads(f.read(n))["logit_scale"]
        assert info["dtype"] == "F32"
        f.seek(8 + n + info["data_offsets"][0])
        f.write(struct.pack("<f", math.log(scale)))

def max_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# --------------------------------------------------------------------------------------------
# Reference


def preprocess(rgb, cfg):
    """HF CLIPImageProcessor (Pillow path) for an HxWx3 uint8 array: CHW float32."""
    img = Image.fromarray(rgb, "RGB")
    w, h = img.size
    edge = cfg["size"]["shortest_edge"] if isinstance(cfg["size"], dict) else cfg["size"]
    size = (edge, int(edge * h / w)) if w <= h else (int(edge * w / h), edge)
    a = np.array(img.resize(size, resample=Image.BICUBIC, reducing_gap=None))
    crop = cfg["crop_size"]
    ch, cw = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
    top, left = (a.shape[0] - ch) // 2, (a.shape[1] - cw) // 2
    a = a[top:top + ch, left:left + cw]
    x = (a.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    x = (x - np.array(cfg["image_mean"], np.float32)) / np.array(cfg["image_std"], np.float32)
    return x.transpose(2, 0, 1)


def normalise(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


class Reference:
    def __init__(self, model_dir):
        self.model = clip_reference.ClipReference.load(model_dir)
        self.tokenizer = clip_tokenizer.ClipTokenizer(os.path.join(model_dir, "vocab.json"),
                                                      os.path.join(model_dir, "merges.txt"))
        with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
            self.cfg = json.load(f)
        self.prompts = {}
        self.images = {}

    def prompt(self, text):
        if text not in self.prompts:
            self.prompts[text] = normalise(self.model.text_embeds([self.tokenizer.encode(text)])[0])
        return self.prompts[text]

    def label(self, templates, label):
        return normalise(np.mean([self.prompt(t.replace("{}", label)) for t in templates], axis=0))

    def image(self, frame):
        key = frame.tobytes()
        if key not in self.images:
            self.images[key] = normalise(self.model.image_embeds(preprocess(frame, self.cfg)))
        return self.images[key]

    def probs(self, frame, templates, labels, negatives=()):
        """Joint softmax over labels then negatives."""
        texts = np.array([self.label(templates, x) for x in list(labels) + list(negatives)])
        return softmax(self.model.logit_scale_exp * (texts @ self.image(frame)))


# --------------------------------------------------------------------------------------------
# Harness


def frame(seed):
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def values(s, name):
    v = s.get_value(name)
    return list(v) if v is not None else None


class Harness:
    """clipclassify alone in a pipeline, fed and drained through two pads of ours."""

    def __init__(self, **props):
        self.pipeline = Gst.Pipeline.new()
        self.element = Gst.ElementFactory.make("clipclassify", "classify")
        self.element.set_property("threads", 1)
        self.element.set_property("mode", "sync")
        for k, v in props.items():
            self.element.set_property(k.replace("_", "-"), v)
        self.pipeline.add(self.element)
        self.src = Gst.Pad.new("src", Gst.PadDirection.SRC)
        self.sink = Gst.Pad.new("sink", Gst.PadDirection.SINK)
        self.out = []
        self.out_buffers = []
        self.sink.set_chain_function_full(self._chain)
        self.sink.set_event_function_full(lambda pad, parent, event: True)
        self.src.link(self.element.get_static_pad("sink"))
        self.element.get_static_pad("src").link(self.sink)
        self.src.set_active(True)
        self.sink.set_active(True)
        self.bus = self.pipeline.get_bus()
        self.started = self.pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
        if self.started:
            self.src.push_event(Gst.Event.new_stream_start("scoring"))
            caps = f"video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1"
            self.src.push_event(Gst.Event.new_caps(Gst.Caps.from_string(caps)))
            self.segment()

    def _chain(self, pad, parent, buffer):
        meta = buffer.get_custom_meta(META)
        self.out.append((buffer.pts, meta.get_structure().copy() if meta else None))
        ok, info = buffer.map(Gst.MapFlags.READ)
        self.out_buffers.append(bytes(info.data) if ok else None)
        if ok:
            buffer.unmap(info)
        return Gst.FlowReturn.OK

    def segment(self, base=0, rate=1.0):
        seg = Gst.Segment()
        seg.init(Gst.Format.TIME)
        seg.base = base
        seg.rate = rate
        self.src.push_event(Gst.Event.new_segment(seg))

    def flush(self):
        self.src.push_event(Gst.Event.new_flush_start())
        self.src.push_event(Gst.Event.new_flush_stop(True))
        self.segment()

    def push(self, rgb, pts):
        """Pushes a frame; returns the meta structure of the buffer that came out (sync mode)."""
        buffer = Gst.Buffer.new_wrapped(rgb.tobytes())
        buffer.pts = pts
        buffer.duration = Gst.SECOND // 30
        n = len(self.out)
        ret = self.src.push(buffer)
        check(ret == Gst.FlowReturn.OK and len(self.out) == n + 1, f"push at {pts}: {ret}")
        return self.out[-1][1] if len(self.out) > n else None

    def messages(self, types=Gst.MessageType.ELEMENT):
        out = []
        while True:
            m = self.bus.pop_filtered(types)
            if m is None:
                return out
            if m.type == Gst.MessageType.ELEMENT:
                if m.get_structure().get_name() == "clipclassify":
                    out.append(m.get_structure().copy())
            else:
                out.append(m)

    def errors(self):
        return self.messages(Gst.MessageType.ERROR | Gst.MessageType.WARNING)

    def close(self):
        self.pipeline.set_state(Gst.State.NULL)
        self.src.set_active(False)
        self.sink.set_active(False)


# --------------------------------------------------------------------------------------------
# Tests


def test_ensembles(ref, model_dir):
    labels = ["cat", "dog", "a red car"]
    spec = "a photo of a {}. | a drawing of the {}.|| {} \\| art"
    templates = ["a photo of a {}.", "a drawing of the {}.", "{} | art"]
    h = Harness(model=model_dir, labels=",".join(labels), template=spec)
    check(h.started, "ensembles: the element starts")
    for i in range(2):
        f = frame(10 + i)
        s = h.push(f, i * Gst.SECOND // 30)
        if s is None:
            continue
        d = max_diff(values(s, "scores"), ref.probs(f, templates, labels))
        check(d <= TOLERANCE, f"ensembles: frame {i}: scores = the reference's ensemble "
              f"(max diff {d:.2e})")
        single = max_diff(values(s, "scores"), ref.probs(f, templates[:1], labels))
        check(single > 100 * TOLERANCE, f"ensembles: frame {i}: not the first template's "
              f"scores (they differ by {single:.2e})")
    # a named set, while playing
    h.element.set_property("template", "imagenet-7")
    f = frame(12)
    s = h.push(f, Gst.SECOND)
    if s is not None:
        d = max_diff(values(s, "scores"), ref.probs(f, IMAGENET_7, labels))
        check(d <= TOLERANCE, f"ensembles: template=imagenet-7 set while playing "
              f"(max diff {d:.2e})")
    # a member without {}: a warning, the previous set stays
    h.element.set_property("template", "a photo of a {}.|oops")
    # (the failure surfaces on the streaming thread with the next buffer)
    h.push(f, Gst.SECOND * 2)
    s = h.push(f, Gst.SECOND * 3)
    warnings = [m for m in h.errors() if m.type == Gst.MessageType.WARNING]
    check(len(warnings) == 1 and "oops" in warnings[0].parse_warning()[0].message,
          f"ensembles: a member without {{}} is a warning naming it "
          f"({[w.parse_warning()[0].message for w in warnings]})")
    if s is not None:
        d = max_diff(values(s, "scores"), ref.probs(f, IMAGENET_7, labels))
        check(d <= TOLERANCE, "ensembles: after a bad template the previous set stays")
    h.close()


def check_negative_rule(s, what, threshold=0.0, top_k=3, smoothed=False):
    """top-labels/top-scores/top-label/top-score follow from scores and negative-scores (or from
    their smoothed values)."""
    prefix = "smoothed-" if smoothed else ""
    labels, scores = values(s, "labels"), values(s, prefix + "scores")
    negative = values(s, prefix + "negative-scores")
    bar = max(negative) if negative else -1.0
    ranked = sorted((i for i in range(len(labels)) if scores[i] > bar and scores[i] >= threshold),
                    key=lambda i: -scores[i])[:top_k]
    check(values(s, "top-labels") == [labels[i] for i in ranked]
          and values(s, "top-scores") == [scores[i] for i in ranked],
          f"{what}: top-labels {values(s, 'top-labels')} = the labels above every negative "
          f"({[labels[i] for i in ranked]})")
    best = max(range(len(labels)), key=lambda i: (scores[i], -i))
    if scores[best] > bar:
        want = (labels[best], scores[best])
    else:
        want = ("", 0.0)
    got = (s.get_value("top-label"), s.get_value("top-score"))
    check(got == want, f"{what}: top-label/top-score {got} (expected {want})")


def test_negatives(ref, model_dir):
    labels = ["cat", "dog", "a red car"]
    templates = ["a photo of a {}."]
    f = frame(20)
    # one negative that beats every label on this frame, one that beats none (chosen with the
    # reference from a few candidates)
    candidates = ["nothing", "an empty room", "a blank wall", "noise", "static", "darkness",
                  "a texture", "the floor", "a pattern", "fog"]
    winner = loser = None
    for c in candidates:
        p = ref.probs(f, templates, labels, [c])
        if p[3] > max(p[:3]) + 0.02 and winner is None:
            winner = c
        if p[3] < min(p[:3]) - 0.02 and loser is None:
            loser = c
    check(winner is not None and loser is not None,
          f"negatives: candidates found (beats all: {winner!r}, beats none: {loser!r})")
    if winner is None or loser is None:
        return

    h = Harness(model=model_dir, labels=",".join(labels), negative_labels=f" {loser} , cat ",
                top_k=3)
    s = h.push(f, 0)
    if s is not None:
        want = ref.probs(f, templates, labels, [loser])
        check(values(s, "negative-labels") == [loser],
              f"negatives: negative-labels {values(s, 'negative-labels')} (a label listed as "
              f"negative stays a label)")
        d = max(max_diff(values(s, "scores"), want[:3]),
                max_diff(values(s, "negative-scores"), want[3:]))
        check(d <= TOLERANCE, f"negatives: scores and negative-scores are the reference's joint "
              f"softmax (max diff {d:.2e})")
        check(abs(sum(values(s, "scores")) + sum(values(s, "negative-scores")) - 1) < 1e-5,
              "negatives: scores and negative-scores sum to 1")
        check(values(s, "top-labels") == [labels[i] for i in np.argsort(-want[:3])],
              "negatives: a negative below every label takes none out of top-labels")
        check_negative_rule(s, "negatives (loser)")

    # a negative above every label: "none of these"
    h.element.set_property("negative-labels", f"{loser},{winner}")
    s = h.push(f, Gst.SECOND)
    if s is not None:
        want = ref.probs(f, templates, labels, [loser, winner])
        d = max(max_diff(values(s, "scores"), want[:3]),
                max_diff(values(s, "negative-scores"), want[3:]))
        check(d <= TOLERANCE, f"negatives (winner): joint softmax (max diff {d:.2e})")
        check(values(s, "top-labels") == [] and s.get_value("top-label") == ""
              and s.get_value("top-score") == 0.0,
              f"negatives (winner): none of these: top-labels {values(s, 'top-labels')}, "
              f"top-label {s.get_value('top-label')!r}, top-score {s.get_value('top-score')}")
        check_negative_rule(s, "negatives (winner)")
    # the message is the meta
    msgs = h.messages()
    check(len(msgs) == 2 and values(msgs[-1], "negative-scores") == values(s, "negative-scores"),
          "negatives: the messages carry the same negative fields")
    # the threshold and the negatives together, on other frames
    h.element.set_property("negative-labels", "noise, fog, darkness")
    h.element.set_property("threshold", 0.2)
    for i in range(4):
        s = h.push(frame(30 + i), (2 + i) * Gst.SECOND)
        if s is not None:
            check_negative_rule(s, f"negatives, threshold 0.2, frame {i}", threshold=0.2)
    h.close()

    # the overlay shows nothing for "none of these": the pixels come out untouched
    h = Harness(model=model_dir, labels=",".join(labels), negative_labels=winner, overlay=True)
    f_bytes = f.tobytes()
    h.push(f, 0)
    out = h.out_buffers[-1] if h.out_buffers else None
    check(out == f_bytes, "negatives: overlay=true draws nothing when a negative wins")
    h.element.set_property("negative-labels", loser)
    h.push(f, Gst.SECOND)
    out = h.out_buffers[-1] if h.out_buffers else None
    check(out is not None and out != f_bytes, "negatives: ... and draws the labels when one wins")
    h.close()


def test_embeddings(ref, model_dir, tmp):
    labels = "cat,dog"
    h = Harness(model=model_dir, labels=labels)
    f = frame(40)
    s = h.push(f, 0)
    check(s is not None and not s.has_field("image-embedding"),
          "embeddings: no image-embedding by default")
    h.element.set_property("embeddings", True)
    frames = [frame(41), frame(42)]
    got = []
    for i, f in enumerate(frames):
        s = h.push(f, (i + 1) * Gst.SECOND)
        if s is None or not s.has_field("image-embedding"):
            check(False, f"embeddings: frame {i} carries image-embedding")
            continue
        e = values(s, "image-embedding")
        check("image-embedding=(float)<" in s.to_string(),
              "embeddings: a GstValueArray of G_TYPE_FLOAT")
        want = ref.image(f)
        d = max_diff(e, want)
        check(len(e) == len(want) and d <= EMBED_TOL,
              f"embeddings: frame {i}: {len(e)} floats = the reference's normalised image "
              f"embedding (max diff {d:.2e})")
        check(abs(np.linalg.norm(e) - 1) < 1e-5, f"embeddings: frame {i}: L2-normalised")
        got.append(np.asarray(e))
    msgs = h.messages()
    check(len(msgs) == 3 and values(msgs[-1], "image-embedding") == list(got[-1]) if got else False,
          "embeddings: the message carries the same embedding")
    h.close()

    # clip-infer embed-image of the same picture: the same embedding
    for i, f in enumerate(frames[:len(got)]):
        png = os.path.join(tmp, f"frame{i}.png")
        Image.fromarray(f).save(png)
        r = subprocess.run([CLIP_INFER, "embed-image", "--threads", "1", "--model", model_dir,
                            png], capture_output=True)
        ok = r.returncode == 0
        d = max_diff(json.loads(r.stdout)["embedding"], got[i]) if ok else math.inf
        check(d <= 1e-7, f"embeddings: frame {i} equals clip-infer embed-image of it "
              f"(max diff {d:.2e})")


def structure_dict(s):
    """A result structure as the JSON line should have it."""
    out = {}
    for i in range(s.n_fields()):
        name = s.nth_field_name(i)
        v = s.get_value(name)
        if isinstance(v, Gst.ValueArray):
            v = list(v)
        elif isinstance(v, int) and not isinstance(v, bool) and v == Gst.CLOCK_TIME_NONE:
            v = None
        out[name] = v
    return out


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    check(text.endswith("\n") or text == "", f"json-location: {path} ends with a newline")
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines(ref, model_dir, tmp):
    path = os.path.join(tmp, "results.jsonl")
    h = Harness(model=model_dir, labels="cat,dog,a red car", negative_labels="nothing",
                embeddings=True, json_location=path)
    check(h.started, "json-location: the element starts")
    for i in range(3):
        h.push(frame(50 + i), i * Gst.SECOND // 30)
    msgs = h.messages()
    lines = read_lines(path)
    check(len(lines) == 3 and len(msgs) == 3, f"json-location: {len(lines)} lines for "
          f"{len(msgs)} messages")
    for i, (line, msg) in enumerate(zip(lines, msgs)):
        want = structure_dict(msg)
        want["element"] = "classify"
        check(line == want, f"json-location: line {i} = its message, field for field, with "
              f"element (fields {sorted(line)})")
        check(list(line)[0] == "element" and list(line)[1:] == [msg.nth_field_name(j) for j in
                                                               range(msg.n_fields())],
              f"json-location: line {i}: the message's field order, after element")
        check(isinstance(line["timestamp"], int) and isinstance(line["latency"], int),
              f"json-location: line {i}: times are integers (ns)")

    # messages off: the lines still come
    h.element.set_property("post-messages", False)
    h.push(frame(53), Gst.SECOND)
    check(h.messages() == [] and len(read_lines(path)) == 4,
          "json-location: post-messages=false still writes the line")
    h.close()

    # a second run appends
    h = Harness(model=model_dir, labels="cat", json_location=path)
    h.push(frame(54), 0)
    h.close()
    lines = read_lines(path)
    check(len(lines) == 5 and lines[-1]["labels"] == ["cat"], "json-location: a new run appends")

    # a path that cannot be opened: an element error when starting, naming it
    bad = os.path.join(tmp, "no-such-dir", "results.jsonl")
    h = Harness(model=model_dir, labels="cat", json_location=bad)
    errors = [m for m in h.errors() if m.type == Gst.MessageType.ERROR]
    check(not h.started and len(errors) == 1,
          f"json-location: unopenable path: the state change fails with one error "
          f"(started {h.started}, {len(errors)} errors)")
    if errors:
        error, debug = errors[0].parse_error()
        check(error.matches(Gst.ResourceError.quark(), Gst.ResourceError.OPEN_WRITE)
              and bad in error.message,
              f"json-location: GST_RESOURCE_ERROR_OPEN_WRITE naming the path ({error.message})")
    h.close()

    # "-": standard output (gst-launch-1.0 -q prints nothing else there)
    r = subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=3", "!",
         f"video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1", "!",
         "clipclassify", "name=c2", f"model={model_dir}", "mode=sync", "threads=1",
         "labels=cat,dog", "json-location=-", "!", "fakesink"], capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace").splitlines()
    try:
        parsed = [json.loads(line) for line in out]
    except json.JSONDecodeError:
        parsed = []
    check(r.returncode == 0 and len(parsed) == 3
          and all(p["element"] == "c2" and p["labels"] == ["cat", "dog"] for p in parsed),
          f"json-location=-: three JSON lines on stdout ({out[:1]!r})")


def smooth(raws, times, tau):
    """The smoothing of the element's documentation, from the raw probabilities and the analysed
    frames' running times (ns): s1 = p1, sk = sk-1 + ak (pk - sk-1), ak = 1 - exp(-dt / tau)."""
    out = []
    for k, (p, t) in enumerate(zip(raws, times)):
        p = np.asarray(p, np.float64)
        if k == 0:
            out.append(p.copy())
        else:
            a = 1 - math.exp(-(t - times[k - 1]) / 1e9 / tau)
            out.append(out[-1] + a * (p - out[-1]))
    return out


class Track:
    """Pushes frames, keeping the raw and smoothed values of one track (label set, segment)."""

    def __init__(self, h, ref, templates=("a photo of a {}.",)):
        self.h, self.ref, self.templates = h, ref, list(templates)
        self.raws, self.times, self.got = [], [], []

    def push(self, f, pts, running_time, labels, negatives, what):
        s = self.h.push(f, pts)
        if s is None:
            return None
        raw = values(s, "scores") + values(s, "negative-scores")
        d = max_diff(raw, self.ref.probs(f, self.templates, labels, negatives))
        check(d <= TOLERANCE, f"{what}: raw scores = the reference's (max diff {d:.2e})")
        self.raws.append(raw)
        self.times.append(running_time)
        self.got.append(values(s, "smoothed-scores") + values(s, "smoothed-negative-scores"))
        return s

    def check(self, tau, what):
        want = smooth(self.raws, self.times, tau)
        d = max(max_diff(g, w) for g, w in zip(self.got, want))
        check(d <= 1e-12, f"{what}: {len(self.got)} smoothed results = the recomputed "
              f"smoothing of the raw scores (max diff {d:.1e})")
        check(max_diff(self.got[0], self.raws[0]) == 0.0, f"{what}: starts at the raw scores")


def test_smoothing(ref, model_dir):
    tau = 0.2
    labels, negatives = ["cat", "dog", "a red car"], ["nothing"]
    h = Harness(model=model_dir, labels=",".join(labels), negative_labels=",".join(negatives),
                smoothing=tau, top_k=2)
    frames = [frame(60 + i) for i in range(6)]
    times = [0, 50, 150, 400, 1000, 1020]           # ms
    track = Track(h, ref)
    for i, (f, t) in enumerate(zip(frames, times)):
        s = track.push(f, t * Gst.MSECOND, t * Gst.MSECOND, labels, negatives,
                       f"smoothing: frame {i}")
        if s is not None:
            check_negative_rule(s, f"smoothing: frame {i}: the top fields rank the smoothed "
                                f"values", top_k=2, smoothed=True)
    track.check(tau, "smoothing")
    check(max(max_diff(g, r) for g, r in zip(track.got[1:], track.raws[1:])) > 1e-3,
          "smoothing: the smoothed values are not the raw ones")

    # a new label set starts afresh, also when an earlier one comes back
    for k, labs in enumerate((["cat", "dog"], labels)):
        h.element.set_property("labels", ",".join(labs))
        track = Track(h, ref)
        for i, t in enumerate((2000, 2100, 2300)):
            t += 1000 * k
            track.push(frames[i], t * Gst.MSECOND, t * Gst.MSECOND, labs, negatives,
                       f"smoothing after relabel {k}: frame {i}")
        track.check(tau, f"smoothing after relabel {k} ({','.join(labs)})")

    # a flush starts afresh
    h.flush()
    track = Track(h, ref)
    for i, t in enumerate((0, 100, 130)):
        track.push(frames[3 + i], t * Gst.MSECOND, t * Gst.MSECOND, labels, negatives,
                   f"smoothing after a flush: frame {i}")
    track.check(tau, "smoothing after a flush")

    # so does a new segment; and the steps are running times: at rate 2, 100 ms of PTS are 50
    h.segment(base=5 * Gst.SECOND, rate=2.0)
    track = Track(h, ref)
    for i, t in enumerate((0, 100, 300)):
        track.push(frames[i], t * Gst.MSECOND, 5 * Gst.SECOND + t * Gst.MSECOND // 2, labels,
                   negatives, f"smoothing in a segment at rate 2: frame {i}")
    track.check(tau, "smoothing after a new segment (rate 2: running-time steps)")

    # smoothing off: no smoothed fields
    h.element.set_property("smoothing", 0.0)
    s = h.push(frames[0], Gst.SECOND)
    check(s is not None and not s.has_field("smoothed-scores"),
          "smoothing=0: no smoothed-scores")
    h.close()


def test_changes_only(ref, model_dir):
    labels = ["cat", "dog", "a red car"]
    templates = ["a photo of a {}."]
    h = Harness(model=model_dir, labels=",".join(labels), changes_only=True)
    pool = [frame(70 + i) for i in range(5)]
    sequence = [0, 0, 1, 1, 2, 3, 3, 0, 4, 4, 1, 2]
    metas = []
    for i, k in enumerate(sequence):
        metas.append(h.push(pool[k], i * Gst.SECOND // 10))
    tops = []
    for k in sequence:
        p = ref.probs(pool[k], templates, labels)
        tops.append(labels[int(np.argmax(p))])
    check([m.get_value("top-label") if m else None for m in metas] == tops,
          f"changes-only: every buffer carries its result, top-labels {tops}")
    posted = [i for i in range(len(tops)) if i == 0 or tops[i] != tops[i - 1]]
    check(0 < len(posted) - 1 < len(tops) - 1,
          f"changes-only: the sequence has changes and repeats (changes at {posted})")
    msgs = h.messages()
    got = [m.get_value("timestamp") for m in msgs]
    check(got == [i * Gst.SECOND // 10 for i in posted],
          f"changes-only: messages exactly at the changes ({len(got)} at "
          f"{[g // (Gst.SECOND // 10) for g in got]}, expected {posted})")
    want_prev = [""] + [tops[i] for i in posted[:-1]]
    check([m.get_value("previous-top-label") for m in msgs] == want_prev,
          f"changes-only: previous-top-label {[m.get_value('previous-top-label') for m in msgs]}")
    check([m.get_value("previous-top-label") for m in metas] == [""] + tops[:-1],
          "changes-only: the meta's previous-top-label is the previous result's top-label")

    # a new label set: its first result is posted whatever its top-label
    h.element.set_property("labels", ",".join(labels + ["a bicycle"]))
    last = pool[sequence[-1]]
    for i in range(2):
        h.push(last, (2 + i) * Gst.SECOND)
    msgs = h.messages()
    check(len(msgs) == 1 and msgs[0].get_value("previous-top-label") == ""
          and msgs[0].get_value("timestamp") == 2 * Gst.SECOND,
          f"changes-only: a new label set posts its first result, previous-top-label \"\" "
          f"({len(msgs)} messages)")
    # back to the earlier set: afresh too
    h.element.set_property("labels", ",".join(labels))
    h.push(last, 4 * Gst.SECOND)
    msgs = h.messages()
    check(len(msgs) == 1 and msgs[0].get_value("previous-top-label") == "",
          "changes-only: an earlier label set coming back starts afresh")
    # a flush, a new segment: afresh
    h.flush()
    h.push(last, 0)
    h.push(last, Gst.SECOND // 10)
    check(len(h.messages()) == 1, "changes-only: after a flush the first result is posted, the "
          "same top-label then is not")
    h.segment(base=Gst.SECOND)
    h.push(last, 0)
    check(len(h.messages()) == 1, "changes-only: a new segment posts its first result")

    # off: every result
    h.element.set_property("changes-only", False)
    for i in range(3):
        h.push(last, (1 + i) * Gst.SECOND)
    check(len(h.messages()) == 3, "changes-only=false: every result posted")
    h.close()

    # with smoothing: the changes of the smoothed top-label (here: tau large, the first frame
    # dominates, so the raw changes do not show)
    h = Harness(model=model_dir, labels=",".join(labels), changes_only=True, smoothing=1000.0)
    for i, k in enumerate(sequence):
        h.push(pool[k], i * Gst.SECOND // 10)
    msgs = h.messages()
    check(len(msgs) == 1 and msgs[0].get_value("top-label") == tops[0],
          f"changes-only with smoothing: the smoothed top-label never changes, one message "
          f"({len(msgs)})")
    h.close()


NEW_PROPERTIES = {
    # name: what gst-inspect-1.0 shows as its type line
    "negative-labels": 'String. Default: ""',
    "embeddings": "Boolean. Default: false",
    "json-location": 'String. Default: ""',
    "smoothing": "Double. Range:",
    "changes-only": "Boolean. Default: false",
}


def test_documentation():
    """gst-inspect-1.0 clipclassify shows every new property with its range and default, and
    README.md has a row for each."""
    r = subprocess.run(["gst-inspect-1.0", "clipclassify"], capture_output=True, timeout=60)
    text = r.stdout.decode(errors="replace")
    check(r.returncode == 0, "gst-inspect-1.0 clipclassify runs")
    lines = text.splitlines()
    for name, kind in NEW_PROPERTIES.items():
        at = [i for i, line in enumerate(lines) if line.strip().startswith(name + " ")]
        block = "\n".join(lines[at[0]:at[0] + 3]) if at else ""
        check(at and kind in block and "Default:" in block and len(lines[at[0]]) > 40,
              f"gst-inspect: {name}: described, with its type, range and default "
              f"({block.splitlines()[-1].strip() if block else 'missing'})")
    smoothing = [i for i, line in enumerate(lines) if line.strip().startswith("smoothing ")]
    if smoothing:
        block = " ".join(lines[smoothing[0]:smoothing[0] + 3]).split()
        check("0" in block and "Default:" in block, "gst-inspect: smoothing ranges from 0, "
              "default 0")
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    for name in list(NEW_PROPERTIES) + ["template"]:
        check(f"| `{name}` |" in text, f"README.md: a row for {name}")
    for word in ("imagenet-80", "imagenet-7", "previous-top-label", "smoothed-scores",
                 "image-embedding", "negative-scores", "--labels", "@FILE"):
        check(word in text, f"README.md mentions {word}")


def main():
    Gst.init(None)
    build_dir = os.environ.get("CLIP_TEST_BUILD_DIR")
    with tempfile.TemporaryDirectory(prefix="test-element-scoring-", dir=build_dir) as d:
        model_dir = os.path.join(d, "tiny")
        make_checkpoint.make_checkpoint(model_dir, preset="tiny", seed=6)
        set_logit_scale(model_dir, 8.0)
        ref = Reference(model_dir)

        test_ensembles(ref, model_dir)
        test_negatives(ref, model_dir)
        test_embeddings(ref, model_dir, d)
        test_json_lines(ref, model_dir, d)
        test_smoothing(ref, model_dir)
        test_changes_only(ref, model_dir)
    test_documentation()

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
