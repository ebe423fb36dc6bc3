#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The clipclassify element from Python (PyGObject), as an application uses it.

A real pipeline, videotestsrc ! clipclassify mode=sync ! appsink, on a tiny random-weight
model generated here. Checks, with nothing of ours imported or linked:
- each buffer carries a GstClipClassifyMeta, read with Gst.Buffer.get_custom_meta() and
  Gst.CustomMeta.get_structure(), whose fields have the documented types;
- the bus carries one `clipclassify` element message per result with the same fields;
- the scores are what the numpy reference CLIPModel (tests/reference/clip_reference.py, with
  the reference tokenizer and a Pillow CLIPImageProcessor rebuilt below) gives for the very
  pixels that came out of the element.
Exit status 0 when every check passes.
"""
import json
import os
import sys

import gi
import numpy as np
from PIL import Image

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401

REFERENCE_DIR = os.environ.get("CLIP_REFERENCE_DIR",
                               os.path.join(os.path.dirname(__file__), "reference"))
sys.path.insert(0, REFERENCE_DIR)
import clip_reference  # noqa: E402
import clip_tokenizer  # noqa: E402
import make_checkpoint  # noqa: E402

# semicolons separate as soon as there is one: the way to write labels with commas on a
# launch line (whose parser eats backslashes)
LABELS = "cat; dog; a red car; salt, pepper"
LABEL_LIST = ["cat", "dog", "a red car", "salt, pepper"]
TEMPLATE = "a photo of a {}."
WIDTH, HEIGHT, N_BUFFERS = 64, 48, 6
TOP_K = 2
# float32 engine vs float64 reference, through a logit scale of 100 (seen: < 1e-6)
TOLERANCE = 1e-5

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def preprocess(rgb, cfg):
    """HF CLIPImageProcessor (Pillow path) for an HxWx3 uint8 array: resize the shortest edge
    (bicubic), center crop, rescale, normalise; CHW float32."""
    img = Image.fromarray(rgb, "RGB")
    w, h = img.size
    edge = cfg["size"]["shortest_edge"] if isinstance(cfg["size"], dict) else cfg["size"]
    if w <= h:
        size = (edge, int(edge * h / w))
    else:
        size = (int(edge * w / h), edge)
    a = np.array(img.resize(size, resample=Image.BICUBIC, reducing_gap=None))
    crop = cfg["crop_size"]
    ch, cw = (crop["height"], crop["width"]) if isinstance(crop, dict) else (crop, crop)
    top, left = (a.shape[0] - ch) // 2, (a.shape[1] - cw) // 2
    a = a[top:top + ch, left:left + cw]
    x = (a.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    x = (x - np.array(cfg["image_mean"], np.float32)) / np.array(cfg["image_std"], np.float32)
    return x.transpose(2, 0, 1)


def values(structure, name):
    """A GST_TYPE_ARRAY field as a Python list (Gst.ValueArray in gst-python 1.22)."""
    value = structure.get_value(name)
    check(isinstance(value, Gst.ValueArray), f"{name} is a GstValueArray ({type(value)})")
    return list(value)


def check_structure(s, what):
    labels = values(s, "labels")
    scores = values(s, "scores")
    top_labels = values(s, "top-labels")
    top_scores = values(s, "top-scores")
    check(labels == LABEL_LIST, f"{what}: labels {labels}")
    check(all(isinstance(x, float) for x in scores) and len(scores) == len(labels),
          f"{what}: scores are {len(labels)} doubles")
    check(abs(sum(scores) - 1) < 1e-4, f"{what}: scores sum to 1")
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:TOP_K]
    check(top_labels == [labels[i] for i in order], f"{what}: top-labels {top_labels}")
    check(top_scores == [scores[i] for i in order], f"{what}: top-scores")
    top_label = s.get_value("top-label")
    check(isinstance(top_label, str) and top_label == labels[order[0]],
          f"{what}: top-label {top_label}")
    check(s.get_value("top-score") == scores[order[0]], f"{what}: top-score")
    for field in ("analysed-pts", "latency", "timestamp", "stream-time", "running-time"):
        ok, number = s.get_uint64(field)
        check(ok, f"{what}: {field} is a guint64 ({number})")
    # sync mode: every result is its own frame's, never a re-score
    rescored = s.get_value("rescored")
    check(isinstance(rescored, bool) and not rescored, f"{what}: rescored is False ({rescored!r})")
    return scores


def main():
    build_dir = os.environ.get("CLIP_TEST_BUILD_DIR", "/tmp")
    model_dir = os.path.join(build_dir, "element-python", "tiny")
    make_checkpoint.make_checkpoint(model_dir, preset="tiny", seed=3)

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={N_BUFFERS} pattern=ball ! "
        f"video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1 ! "
        f'clipclassify name=classify model="{model_dir}" mode=sync threads=1 '
        f'labels="{LABELS}" top-k={TOP_K} ! appsink name=sink sync=false')
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)

    frames = {}
    metas = {}
    while True:
        sample = sink.pull_sample()
        if sample is None:
            break
        buffer = sample.get_buffer()
        meta = buffer.get_custom_meta("GstClipClassifyMeta")
        check(meta is not None, f"buffer {buffer.pts} carries GstClipClassifyMeta")
        if meta is None:
            continue
        s = meta.get_structure()
        check(s.get_name() == "GstClipClassifyMeta", "meta structure name")
        ok, info = buffer.map(Gst.MapFlags.READ)
        stride = (WIDTH * 3 + 3) & ~3
        rows = np.frombuffer(info.data, np.uint8)[:stride * HEIGHT].reshape(HEIGHT, stride)
        frames[buffer.pts] = rows[:, :WIDTH * 3].reshape(HEIGHT, WIDTH, 3).copy()
        buffer.unmap(info)
        metas[buffer.pts] = s.copy()

    messages = []
    while True:
        message = bus.pop_filtered(Gst.MessageType.ELEMENT | Gst.MessageType.ERROR)
        if message is None:
            break
        check(message.type == Gst.MessageType.ELEMENT, f"no error ({message.type})")
        if message.get_structure().get_name() == "clipclassify":
            check(message.src.get_name() == "classify", "message from the element")
            messages.append(message.get_structure().copy())
    pipeline.set_state(Gst.State.NULL)

    check(len(metas) == N_BUFFERS, f"{len(metas)} of {N_BUFFERS} buffers have the meta")
    check(len(messages) == N_BUFFERS, f"{len(messages)} messages for {N_BUFFERS} buffers")

    model = clip_reference.ClipReference.load(model_dir)
    tokenizer = clip_tokenizer.ClipTokenizer(os.path.join(model_dir, "vocab.json"),
                                             os.path.join(model_dir, "merges.txt"))
    ids = [tokenizer.encode(TEMPLATE.replace("{}", label)) for label in LABEL_LIST]
    with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
        cfg = json.load(f)

    for message in messages:
        ok, pts = message.get_uint64("timestamp")
        what = f"message at {pts}"
        scores = check_structure(message, what)
        meta = metas.get(pts)
        check(meta is not None, f"{what}: a buffer with that timestamp")
        if meta is None:
            continue
        check_structure(meta, f"meta at {pts}")
        for i in range(meta.n_fields()):
            name = meta.nth_field_name(i)
            check(message.has_field(name), f"{what}: field {name} in both")
        check(values(meta, "scores") == scores, f"{what}: meta scores equal message scores")
        check(message.get_uint64("analysed-pts") == (True, pts), f"{what}: analysed-pts (sync)")

        want = model.classify(preprocess(frames[pts], cfg), ids)["probs"]
        diff = float(np.max(np.abs(np.array(scores) - want)))
        check(diff <= TOLERANCE, f"{what}: scores match the numpy reference (max diff {diff:.2e})")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
