#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""clip-infer's scoring features (issue 8) against the numpy reference (tests/reference/):

- prompt ensembles: `embed-text --template "A|B"` prints, for each text, the L2-normalised mean
  of the L2-normalised reference embeddings of each template filled with it; `classify` scores
  against those; the named sets imagenet-7 and imagenet-80; a member without "{}" is an error;
- negative labels (`classify --negative`): one softmax over labels and negatives;
- catalog batches (`classify --labels`): directories, @lists, one JSON line per image equal to the
  one-image runs, per-image errors, --embeddings equal to embed-image, exit status.

The reference's text and image towers run in float64 (tests/reference/clip_reference.py, with
the reference tokenizer), so every number here is computed independently of the C engine; the
pixels are those of `clip-infer preprocess` (checked against Pillow by test_preprocess.py).
Exit status 0 when every check passes.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

REFERENCE_DIR = os.environ.get(
    "CLIP_REFERENCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
sys.path.insert(0, REFERENCE_DIR)
import clip_reference  # noqa: E402
import clip_tokenizer  # noqa: E402
import make_checkpoint as mk  # noqa: E402

CLIP_INFER = os.environ.get("CLIP_INFER", "build/tools/clip-infer")

EMBED_TOL = 5e-6      # float32 engine vs float64 reference (as test_parity.py)
LOGIT_TOL = 1e-3
PROB_TOL = 1e-3

# CLIP's notebook lists, typed here a second time (the engine has its own copy): the 7 it
# selects, and a few of the 80 (the C test checks all 80 are distinct and hold "{}").
IMAGENET_7 = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.",
              "a photo of the large {}.", "a {} in a video game.", "art of the {}.",
              "a photo of the small {}."]

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def run(args, **kwargs):
    return subprocess.run([CLIP_INFER] + args, capture_output=True, **kwargs)


def run_json(args, what):
    r = run(args)
    if r.returncode != 0:
        check(False, f"{what}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
        return None
    try:
        return json.loads(r.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        check(False, f"{what}: stdout is not JSON ({e}): {r.stdout[:200]!r}")
        return None


def normalise(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


class Reference:
    """Text embeddings of prompts (cached), ensembles, image embeddings and scores."""

    def __init__(self, model_dir):
        self.model = clip_reference.ClipReference.load(model_dir)
        self.tokenizer = clip_tokenizer.ClipTokenizer(os.path.join(model_dir, "vocab.json"),
                                                      os.path.join(model_dir, "merges.txt"))
        self.cache = {}

    def prompt(self, text):
        if text not in self.cache:
            ids = self.tokenizer.encode(text)
            self.cache[text] = normalise(self.model.text_embeds([ids])[0])
        return self.cache[text]

    def ensemble(self, templates, label):
        """The normalised mean of the normalised embeddings of each filled template."""
        return normalise(np.mean([self.prompt(t.replace("{}", label)) for t in templates],
                                 axis=0))

    def labels(self, templates, labels):
        return np.array([self.ensemble(templates, label) for label in labels])

    def image(self, pixels):
        return normalise(self.model.image_embeds(pixels))

    def logits(self, image, texts):
        return self.model.logit_scale_exp * (np.asarray(texts) @ image)


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
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def read_pixels(path, size):
    return np.fromfile(path, dtype="<f4").reshape(3, size, size)


def test_ensembles(ref, m, pixels, image_emb):
    # embed-text: each text's ensembled embedding; spaces around members trimmed, empty members
    # ignored, "\|" a literal bar
    templates = ["a photo of a {}.", "a drawing of the {}.", "{} | art"]
    spec = " a photo of a {}. | a drawing of the {}. || {} \\| art "
    texts = ["cat", "dog", "a red car"]
    out = run_json(["embed-text", "--threads", "1", "--template", spec] + m + texts,
                   "embed-text --template A|B|C")
    if out is not None:
        got = np.asarray(out["embeddings"])
        want = ref.labels(templates, texts)
        d = max_diff(got, want)
        check(got.shape == want.shape and d <= EMBED_TOL,
              f"embed-text --template 'A|B|C': ensembled embeddings match the reference "
              f"(max diff {d:.2e})")
        # an ensemble is not any one of its members
        single = ref.labels(templates[:1], texts)
        check(max_diff(got, single) > 100 * EMBED_TOL, "the ensemble differs from its first member")

    # a named set
    out = run_json(["embed-text", "--threads", "1", "--template", "imagenet-7"] + m + texts[:2],
                   "embed-text --template imagenet-7")
    if out is not None:
        d = max_diff(out["embeddings"], ref.labels(IMAGENET_7, texts[:2]))
        check(d <= EMBED_TOL, f"embed-text --template imagenet-7 matches the reference's 7 "
              f"notebook templates (max diff {d:.2e})")

    # classify: softmax(logit_scale * cosine) against the ensembled embeddings
    labels = ["cat", "dog", "an empty room"]
    out = run_json(["classify", "--threads", "1", "--template", spec, "--pixels", pixels] + m
                   + labels, "classify --template A|B|C")
    if out is not None:
        logits = ref.logits(image_emb, ref.labels(templates, labels))
        d_logits = max_diff(out["logits"], logits)
        d_probs = max_diff(out["probs"], softmax(logits))
        check(out["labels"] == labels and d_logits <= LOGIT_TOL and d_probs <= PROB_TOL,
              f"classify --template 'A|B|C': logits and probs match the reference "
              f"({d_logits:.2e}, {d_probs:.2e})")

    # a set named twice weighs each of its templates twice: the same mean
    out7 = run_json(["classify", "--threads", "1", "--template", "imagenet-7|imagenet-7",
                     "--pixels", pixels] + m + labels, "classify --template imagenet-7|imagenet-7")
    if out7 is not None:
        logits = ref.logits(image_emb, ref.labels(IMAGENET_7, labels))
        d = max_diff(out7["logits"], logits)
        check(d <= LOGIT_TOL, f"classify --template imagenet-7|imagenet-7 = imagenet-7 ({d:.2e})")

    # errors: a member without "{}", an empty value
    for spec_bad, what in (("a photo of a {}.|a photo", "member without {}"),
                           (" | ", "no template at all")):
        r = run(["classify", "--template", spec_bad, "--pixels", pixels] + m + ["cat"])
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 1 and r.stdout == b"" and "template" in err.lower(),
              f"classify --template {spec_bad!r} ({what}): exit 1, clear error "
              f"({err.strip()[:120]!r})")


def test_negatives(ref, m, pixels, image_emb):
    labels = ["cat", "dog", "a red car"]
    negatives = ["nothing", "an empty room"]
    templates = ["a photo of a {}."]
    # "dog" is a label already: dropped from the negatives; spaces trimmed
    out = run_json(["classify", "--threads", "1", "--negative", " nothing, an empty room ,dog",
                    "--pixels", pixels] + m + labels, "classify --negative")
    if out is not None:
        texts = ref.labels(templates, labels + negatives)
        logits = ref.logits(image_emb, texts)
        probs = softmax(logits)
        check(out.get("labels") == labels and out.get("negative-labels") == negatives,
              f"classify --negative: labels {out.get('labels')}, negative-labels "
              f"{out.get('negative-labels')} (a negative that is also a label is dropped)")
        d = max(max_diff(out.get("logits"), logits[:3]), max_diff(out.get("negative-logits"),
                                                                  logits[3:]))
        check(d <= LOGIT_TOL, f"classify --negative: logits and negative-logits match the "
              f"reference ({d:.2e})")
        d = max(max_diff(out.get("probs"), probs[:3]), max_diff(out.get("negative-probs"),
                                                                probs[3:]))
        check(d <= PROB_TOL, f"classify --negative: probs and negative-probs are one softmax "
              f"over labels and negatives ({d:.2e})")
        total = sum(out.get("probs", [])) + sum(out.get("negative-probs", []))
        check(abs(total - 1) < 1e-5, f"classify --negative: all probs sum to 1 ({total})")
    # without --negative: the form of before, no negative fields
    out = run_json(["classify", "--threads", "1", "--pixels", pixels] + m + labels, "classify")
    if out is not None:
        check(sorted(out) == ["labels", "logits", "probs"], f"classify without --negative: "
              f"fields {sorted(out)}")


def read_lines(stdout):
    lines = stdout.decode("utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as e:
        check(False, f"every line is JSON ({e}): {lines[:3]!r}")
        return []


def test_catalog(ref, m, d, size):
    rng = np.random.default_rng(9)
    cat = os.path.join(d, "catalog")
    os.makedirs(os.path.join(cat, "sub"))
    names = ["b.png", "a.jpg", "c.png", "d.ppm"]
    for i, name in enumerate(names):
        Image.fromarray(rng.integers(0, 256, (30 + 7 * i, 45, 3), dtype=np.uint8)).save(
            os.path.join(cat, name))
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
        os.path.join(cat, "sub", "deeper.png"))                     # not recursed into
    with open(os.path.join(cat, "notes.txt"), "w") as f:             # a regular file, not an image
        f.write("not an image\n")
    extra = os.path.join(d, "extra.png")
    Image.fromarray(rng.integers(0, 256, (50, 30, 3), dtype=np.uint8)).save(extra)
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write("extra.png\r\n\ncatalog/c.png\nmissing.png\n")
    labels = ["cat", "dog", "a red car"]
    lab = ["--labels", ",".join(labels)]

    def run_in(args):
        return subprocess.run([CLIP_INFER] + args, capture_output=True, cwd=d)

    # a directory, then a list (relative paths from the current directory)
    r = run_in(["classify", "--threads", "1"] + m + lab + ["catalog", "@list.txt"])
    out = read_lines(r.stdout)
    order = ([os.path.join("catalog", n) for n in sorted(names + ["notes.txt"])]
             + ["extra.png", "catalog/c.png", "missing.png"])
    check([o.get("path") for o in out] == order,
          f"catalog: one line per image in order: the directory's regular files by name (not "
          f"its subdirectory), then the list's paths ({[o.get('path') for o in out]})")
    errors = [o for o in out if "error" in o]
    check(sorted(o["path"] for o in errors) == ["catalog/notes.txt", "missing.png"]
          and all(sorted(o) == ["error", "path"] for o in errors),
          f"catalog: an unreadable image gets a line with path and error only "
          f"({[(o['path'], o['error'][:40]) for o in errors]})")
    check(r.returncode == 1, f"catalog: exit status 1 when an image failed ({r.returncode})")
    good = [o for o in out if "error" not in o]
    check(len(good) == 6 and all(list(o) == ["path", "labels", "scores", "top-label",
                                             "top-score"] for o in good),
          "catalog: path, labels, scores, top-label, top-score")

    # each line equals the run of that image alone, in its own process, and the one-image form
    for o in good:
        alone = run_in(["classify", "--threads", "1"] + m + lab + [o["path"]])
        check(alone.returncode == 0 and read_lines(alone.stdout) == [o],
              f"catalog: {o['path']}: the same line as a run of its own")
        old = json.loads(run_in(["classify", "--threads", "1"] + m + [o["path"]] + labels).stdout)
        check(np.array_equal(np.float32(old["probs"]), np.float32(o["scores"])),
              f"catalog: {o['path']}: scores = the one-image form's probs")
        best = int(np.argmax(o["scores"]))
        check(o["top-label"] == labels[best] and o["top-score"] == o["scores"][best],
              f"catalog: {o['path']}: top-label is the best label")
    # ... and the reference's, for two of them
    for o in good[:2]:
        pixels = os.path.join(d, "p.f32")
        run_in(["preprocess"] + m + ["--out", pixels, o["path"]])
        probs = softmax(ref.logits(ref.image(read_pixels(pixels, size)),
                                   ref.labels(["a photo of a {}."], labels)))
        check(max_diff(o["scores"], probs) <= PROB_TOL,
              f"catalog: {o['path']}: scores match the reference ({max_diff(o['scores'], probs):.2e})")

    # all readable: exit 0; --embeddings = embed-image; --negative; ensembles; stderr quiet
    images = [os.path.join("catalog", n) for n in ("a.jpg", "b.png")]
    r = run_in(["classify", "--threads", "1", "--embeddings", "--negative", "nothing,cat",
                "--template", "imagenet-7"] + m + lab + images)
    out = read_lines(r.stdout)
    check(r.returncode == 0 and r.stderr == b"" and len(out) == 2,
          f"catalog: every image classified: exit 0, nothing on stderr when it is no terminal "
          f"({r.returncode}, {r.stderr[:100]!r})")
    for o, path in zip(out, images):
        e = json.loads(run_in(["embed-image", "--threads", "1"] + m + [path]).stdout)["embedding"]
        check(o.get("image-embedding") == e, f"catalog --embeddings: {path}: image-embedding = "
              f"embed-image's")
        check(o.get("negative-labels") == ["nothing"] and len(o.get("negative-scores", [])) == 1,
              f"catalog --negative: {path}: negative-labels (a label listed is dropped)")
        image_emb = np.asarray(e, np.float64)
        probs = softmax(ref.logits(image_emb, ref.labels(IMAGENET_7, labels + ["nothing"])))
        got = o["scores"] + o["negative-scores"]
        check(max_diff(got, probs) <= PROB_TOL, f"catalog --negative --template imagenet-7: "
              f"{path}: one softmax, the reference's ({max_diff(got, probs):.2e})")
        best = int(np.argmax(o["scores"]))
        want = ((labels[best], o["scores"][best]) if o["scores"][best] > o["negative-scores"][0]
                else ("", 0))
        check((o["top-label"], o["top-score"]) == want, f"catalog --negative: {path}: top-label "
              f"{o['top-label']!r}")
    # a negative that beats every label: top-label ""
    r = run_in(["classify", "--threads", "1", "--negative", "cat"] + m
               + ["--labels", "dog,a red car", images[0]])
    o = read_lines(r.stdout)[0]
    if o["negative-scores"][0] >= max(o["scores"]):
        check(o["top-label"] == "" and o["top-score"] == 0, "catalog: none of these: top-label \"\"")
    else:
        check(o["top-label"] != "", "catalog: a label above the negatives is the top-label")

    # a progress bar when stderr is a terminal
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([CLIP_INFER, "classify", "--threads", "1"] + m + lab + images, cwd=d,
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    stdout, _ = p.communicate()
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    check(p.returncode == 0 and b"\r" in tty and b"2/2 [" in tty and b"img/s" in tty
          and len(read_lines(stdout)) == 2,
          f"catalog: a progress bar on a terminal's stderr, the lines on stdout ({tty[-80:]!r})")

    # usage
    for args, what in ((lab + ["--pixels", "p.f32"], "--labels with --pixels"),
                       (lab, "--labels without an IMAGE"),
                       (["--labels", " , ", images[0]], "--labels with no label"),
                       (lab + ["--template", "oops", images[0]], "a bad template")):
        r = run_in(["classify"] + m + args)
        check(r.returncode == 1 and r.stdout == b"" and r.stderr != b"",
              f"catalog: {what}: exit 1, a message, no output ({r.stderr[:80]!r})")


def test_imagenet_80(ref, m, pixels, image_emb, imagenet_80):
    labels = ["cat", "dog"]
    out = run_json(["classify", "--threads", "1", "--template", "imagenet-80", "--pixels",
                    pixels] + m + labels, "classify --template imagenet-80")
    if out is not None:
        logits = ref.logits(image_emb, ref.labels(imagenet_80, labels))
        d = max_diff(out["logits"], logits)
        check(d <= LOGIT_TOL, f"classify --template imagenet-80 matches the reference over the "
              f"80 notebook templates ({d:.2e})")


def main():
    build_dir = os.environ.get("CLIP_TEST_BUILD_DIR")
    with tempfile.TemporaryDirectory(prefix="test-scoring-", dir=build_dir) as d:
        model = os.path.join(d, "tiny")
        config = mk.make_checkpoint(model, preset="tiny", seed=5,
                                    tokenizer_dir=os.environ.get("CLIP_TOKENIZER_DIR"))
        set_logit_scale(model, 8.0)
        size = config["vision_config"]["image_size"]
        ref = Reference(model)
        m = ["--model", model]

        image = os.path.join(d, "image.png")
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
                        ).save(image)
        pixels = os.path.join(d, "image.f32")
        r = run(["preprocess"] + m + ["--out", pixels, image])
        check(r.returncode == 0, "preprocess")
        image_emb = ref.image(read_pixels(pixels, size))

        test_ensembles(ref, m, pixels, image_emb)
        test_imagenet_80(ref, m, pixels, image_emb, IMAGENET_80)
        test_negatives(ref, m, pixels, image_emb)
        test_catalog(ref, m, d, size)

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


# The notebook's 80 ImageNet templates, in its order (a second, independent copy of the list).
IMAGENET_80 = [
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
    "graffiti of a {}.", "a bad photo of the {}.", "a cropped photo of the {}.",
    "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.",
    "a dark photo of the {}.", "a drawing of a {}.", "a photo of my {}.", "the plastic {}.",
    "a photo of the cool {}.", "a close-up photo of a {}.", "a black and white photo of the {}.",
    "a painting of the {}.", "a painting of a {}.", "a pixelated photo of the {}.",
    "a sculpture of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.",
    "a rendering of the {}.", "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.",
    "a close-up photo of the {}.", "a photo of a {}.", "the origami {}.",
    "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.", "a origami {}.",
    "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.",
    "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.",
    "a cartoon {}.", "art of a {}.", "a sketch of the {}.", "a embroidered {}.",
    "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.",
    "a photo of the small {}.", "a photo of the weird {}.", "the cartoon {}.", "art of the {}.",
    "a drawing of the {}.", "a photo of the large {}.", "a black and white photo of a {}.",
    "the plushie {}.", "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.",
    "a toy {}.", "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.",
    "a tattoo of the {}.",
]
assert len(IMAGENET_80) == 80 and len(set(IMAGENET_80)) == 80


if __name__ == "__main__":
    sys.exit(main())
