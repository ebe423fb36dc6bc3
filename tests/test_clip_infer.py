#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""clip-infer's command-line behaviour (the values themselves are test_parity.py's business):

- usage errors (no command, unknown command or option, missing --model/--out/arguments, bad
  --threads/--max-length, IMAGE and --pixels together, a template without "{}", invalid UTF-8)
  exit 1 with a message on stderr and nothing on stdout; --help exits 0;
- a missing model directory, image or pixels file, and unreadable images (truncated PNG/JPEG,
  unsupported formats, PPM maxval != 255), exit 1 with a message naming the file;
- every command prints one valid JSON object of the documented shape: tokens framed by BOS/EOS
  and truncated to 77 (or --max-length), L2-normalised embeddings of projection_dim floats,
  classify's labels echoed verbatim (quotes, backslashes, control characters, non-ASCII) in
  order with probs = softmax(logits);
- the plumbing between commands: --template "{}" and the default template "a photo of a {}."
  give the prompts embed-text sees, an IMAGE and the --pixels of its `preprocess` output give the
  same embedding, and classify's logits are exp(logit_scale) x <image, text>;
- --crop center|squash|pad on preprocess, embed-image and classify: IMAGE with --crop P gives
  what --pixels of `preprocess --crop P` gives, center is the default, the policies differ on a
  non-square image, and a bad policy, --crop with --pixels or on another command are errors
  (the pixel values of each policy are test_preprocess.py's business).

A tiny random-weight checkpoint is generated with tests/reference/make_checkpoint.py.
Exit status 0 when every check passes.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

REFERENCE_DIR = os.environ.get(
    "CLIP_REFERENCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
sys.path.insert(0, REFERENCE_DIR)
import make_checkpoint as mk  # noqa: E402

CLIP_INFER = os.environ.get("CLIP_INFER", "build/tools/clip-infer")
BOS, EOS = 49406, 49407

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def run(args, **kwargs):
    return subprocess.run([CLIP_INFER] + args, capture_output=True, **kwargs)


def expect_error(args, what, needle=None):
    """Exit status 1, a message on stderr (containing needle), nothing on stdout."""
    r = run(args)
    err = r.stderr.decode(errors="replace").strip()
    ok = r.returncode == 1 and err != "" and r.stdout == b""
    if needle is not None:
        ok = ok and needle in err
    check(ok, f"{what}: exit {r.returncode}, stderr {err.splitlines()[:2]!r}"
          + (f" (expected to mention {needle!r})" if needle and needle not in err else ""))


def run_json(args, what):
    r = run(args)
    if r.returncode != 0:
        check(False, f"{what}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
        return None
    try:
        out = json.loads(r.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        check(False, f"{what}: stdout is not JSON ({e}): {r.stdout[:200]!r}")
        return None
    if not isinstance(out, dict):
        check(False, f"{what}: stdout is not a JSON object")
        return None
    return out


def is_floats(v, n):
    return (isinstance(v, list) and len(v) == n
            and all(isinstance(x, (int, float)) and math.isfinite(x) for x in v))


def softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


def main():
    build_dir = os.environ.get("CLIP_TEST_BUILD_DIR")
    with tempfile.TemporaryDirectory(prefix="test-clip-infer-", dir=build_dir) as d:
        model = os.path.join(d, "tiny")
        config = mk.make_checkpoint(model, preset="tiny", seed=3,
                                    tokenizer_dir=os.environ.get("CLIP_TOKENIZER_DIR"))
        dim = config["projection_dim"]
        size = config["vision_config"]["image_size"]
        tensors, _ = mk.read_safetensors(os.path.join(model, "model.safetensors"))
        logit_scale = math.exp(float(tensors["logit_scale"]))

        image = os.path.join(d, "image.png")
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
                        ).save(image)
        missing = os.path.join(d, "no-such-model")
        m = ["--model", model]

        # --- usage ---------------------------------------------------------------------------
        r = run([])
        check(r.returncode == 1 and b"Usage" in r.stderr and r.stdout == b"",
              "no arguments: usage on stderr, exit 1")
        r = run(["--help"])
        check(r.returncode == 0 and all(c in r.stdout for c in (
            b"tokenize", b"preprocess", b"embed-text", b"embed-image", b"classify")),
            "--help lists every command, exit 0")
        for cmd in ("tokenize", "preprocess", "embed-text", "embed-image", "classify"):
            r = run([cmd, "--help"])
            check(r.returncode == 0 and b"--model" in r.stdout, f"{cmd} --help, exit 0")
        r = run(["classify", "--help"])
        check(b"--template" in r.stdout and b"--threads" in r.stdout and b"--pixels" in r.stdout,
              "classify --help shows --template, --threads, --pixels")
        expect_error(["frobnicate"], "unknown command", "frobnicate")
        expect_error(["tokenize", "--bogus"] + m + ["x"], "unknown option", "--bogus")
        expect_error(["tokenize", "--template", "{}"] + m + ["x"],
                     "an option the command does not take", "--template")
        expect_error(["tokenize", "hello"], "missing --model", "--model")
        expect_error(["tokenize"] + m, "tokenize without TEXT", "TEXT")
        expect_error(["tokenize", "--max-length", "1"] + m + ["x"], "--max-length 1",
                     "--max-length")
        expect_error(["embed-text", "--threads", "-1"] + m + ["x"], "--threads -1", "--threads")
        expect_error(["embed-text", "--threads", "two"] + m + ["x"], "--threads two", "two")
        expect_error(["preprocess"] + m + [image], "preprocess without --out", "--out")
        expect_error(["preprocess", "--out", os.path.join(d, "x.f32")] + m,
                     "preprocess without IMAGE", "IMAGE")
        expect_error(["embed-image"] + m, "embed-image without IMAGE or --pixels", "--pixels")
        expect_error(["embed-image", "--pixels", image] + m + [image],
                     "embed-image with both IMAGE and --pixels", "--pixels")
        expect_error(["classify"] + m + [image], "classify without labels", "LABEL")
        expect_error(["classify", "--template", "a photo"] + m + [image, "cat"],
                     "a template without {}", "{}")
        expect_error(["embed-text"] + m + [b"caf\xe9"],
                     "invalid UTF-8 text", "UTF-8")

        # --- files ---------------------------------------------------------------------------
        for cmd, extra in (("tokenize", ["x"]), ("embed-text", ["x"]),
                           ("embed-image", [image]), ("classify", [image, "cat"]),
                           ("preprocess", [image, "--out", os.path.join(d, "x.f32")])):
            expect_error([cmd, "--model", missing] + extra, f"{cmd}: missing model directory",
                         missing)
        expect_error(["embed-image"] + m + [os.path.join(d, "nope.png")], "missing image",
                     os.path.join(d, "nope.png"))
        bad_pixels = os.path.join(d, "bad.f32")
        np.zeros(3 * size * size - 1, "<f4").tofile(bad_pixels)
        expect_error(["embed-image", "--pixels", bad_pixels] + m, "pixels of the wrong size",
                     bad_pixels)
        expect_error(["embed-image", "--pixels", os.path.join(d, "nope.f32")] + m,
                     "missing pixels file", "nope.f32")

        with open(image, "rb") as f:
            png = f.read()
        jpeg_path = os.path.join(d, "image.jpg")
        Image.open(image).save(jpeg_path, quality=90)
        with open(jpeg_path, "rb") as f:
            jpeg = f.read()
        bad_images = {
            "truncated.png": png[:len(png) // 2],
            "truncated.jpg": jpeg[:len(jpeg) // 2],
            "empty.png": b"",
            "text.png": b"this is not an image\n",
            "ascii.ppm": b"P3\n1 1\n255\n0 0 0\n",
            "deep.ppm": b"P6\n1 1\n65535\n" + b"\0" * 6,
            "short.ppm": b"P6\n4 4\n255\n" + b"\0" * 10,
            "header.ppm": b"P6\n4\n",
        }
        gif = os.path.join(d, "image.gif")
        Image.open(image).convert("P").save(gif)
        for name, data in bad_images.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        for name in list(bad_images) + ["image.gif"]:
            path = os.path.join(d, name)
            expect_error(["preprocess", "--out", os.path.join(d, "x.f32")] + m + [path],
                         f"unreadable image {name}", path)

        # Decompression bombs: a few hundred bytes whose header claims more pixels than
        # Pillow's limit (2 * Image.MAX_IMAGE_PIXELS). Pillow refuses them, so HF's pipeline
        # never sees one; a JPEG's missing data used to be padded out to 200 million pixels.
        def png_chunk(kind, data):
            return (len(data).to_bytes(4, "big") + kind + data
                    + zlib.crc32(kind + data).to_bytes(4, "big"))
        big = 13400     # 13,400^2 = 179,560,000 > 2 * 89,478,485
        bombs = {
            "bomb.png": b"\x89PNG\r\n\x1a\n"
                        + png_chunk(b"IHDR", big.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0]))
                        + png_chunk(b"IDAT", zlib.compress(b"\0" * 1024))
                        + png_chunk(b"IEND", b""),
        }
        sof = jpeg.index(b"\xff\xc0")   # SOF0: length, precision, height, width
        bombs["bomb.jpg"] = (jpeg[:sof + 5] + (10000).to_bytes(2, "big")
                             + (20000).to_bytes(2, "big") + jpeg[sof + 9:])
        for name, data in bombs.items():
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            try:
                Image.open(path).load()
                pillow_refuses = False
            except Image.DecompressionBombError:
                pillow_refuses = True
            check(pillow_refuses, f"Pillow refuses {name} as a decompression bomb")
            expect_error(["preprocess", "--out", os.path.join(d, "x.f32")] + m + [path],
                         f"{name}: larger than Pillow's limit", "too large")

        # --- hostile model files: a clean error naming the file, never a signal --------------
        # json-glib's parser recurses once per nesting level; 1,000,000 levels overflowed the
        # stack (SIGSEGV) before the depth was checked.
        deep = b"[" * 1000000 + b"]" * 1000000
        with open(os.path.join(model, "model.safetensors"), "rb") as f:
            weights = f.read()
        header_len = int.from_bytes(weights[:8], "little")
        hostile = {
            "model.safetensors": (lambda h: len(h).to_bytes(8, "little") + h)(
                b'{"__metadata__":{"a":' + deep + b'}}') + weights[8 + header_len:],
            "config.json": b'{"text_config": {"x": ' + deep + b'}}',
            "preprocessor_config.json": b'{"size": ' + deep + b'}',
        }
        for name, data in hostile.items():
            bad_model = os.path.join(d, "deep-" + name.split(".")[0])
            shutil.copytree(model, bad_model)
            with open(os.path.join(bad_model, name), "wb") as f:
                f.write(data)
            expect_error(["embed-text"] + ["--model", bad_model, "x"],
                         f"{name} nested 1,000,000 deep", os.path.join(bad_model, name))

        # an empty merges.txt used to be accepted: every word spelt out byte by byte
        bad_model = os.path.join(d, "empty-merges")
        shutil.copytree(model, bad_model)
        with open(os.path.join(bad_model, "merges.txt"), "w") as f:
            f.write("#version: 0.2\n")
        expect_error(["tokenize", "--model", bad_model, "a photo of a cat"],
                     "merges.txt without merges", os.path.join(bad_model, "merges.txt"))

        # --- JSON of each command ------------------------------------------------------------
        long_text = " ".join(["many colourful birds"] * 40)
        out = run_json(["tokenize"] + m + ["a photo of a cat.", "", long_text], "tokenize")
        if out is not None:
            t = out.get("tokens")
            ok = (isinstance(t, list) and len(t) == 3
                  and all(isinstance(x, list) and all(isinstance(i, int) for i in x) for x in t))
            check(ok and all(x[0] == BOS and x[-1] == EOS for x in t),
                  "tokenize: one id list per TEXT, each BOS ... EOS")
            check(ok and t[1] == [BOS, EOS] and len(t[2]) == 77 and len(t[0]) < 77,
                  "tokenize: '' is [BOS, EOS], long text truncated to 77, short one unpadded")
        out = run_json(["tokenize", "--max-length", "5"] + m + ["a photo of a cat."],
                       "tokenize --max-length 5")
        if out is not None:
            t = out.get("tokens", [[]])[0]
            check(len(t) == 5 and t[0] == BOS and t[-1] == EOS,
                  f"tokenize --max-length 5: 5 ids, EOS last ({t})")

        pixels = os.path.join(d, "pixels.f32")
        out = run_json(["preprocess", "--out", pixels] + m + [image], "preprocess")
        if out is not None:
            check(out.get("shape") == [3, size, size]
                  and os.path.getsize(pixels) == 4 * 3 * size * size,
                  f"preprocess: shape [3, {size}, {size}] and as many float32 in the file")

        texts = ["a photo of a cat.", "a photo of a dog.", "cat", 'say "hi" \\ 🍕']
        out = run_json(["embed-text", "--threads", "1"] + m + texts, "embed-text")
        text_emb = None
        if out is not None:
            e = out.get("embeddings")
            ok = isinstance(e, list) and len(e) == len(texts) and all(is_floats(v, dim) for v in e)
            check(ok, f"embed-text: {len(texts)} embeddings of {dim} floats")
            if ok:
                text_emb = np.asarray(e)
                norms = np.linalg.norm(text_emb, axis=1)
                check(np.all(np.abs(norms - 1) < 1e-5), f"embed-text: L2-normalised ({norms})")
        # the same two prompts, spelled out and templated: a batch's result depends on the whole
        # batch (tokens all its prompts share are computed once), so compare like batches
        out = run_json(["embed-text", "--threads", "1", "--template", "a photo of a {}."] + m
                       + ["cat", "dog"], "embed-text --template")
        spelled = run_json(["embed-text", "--threads", "1"] + m + texts[:2], "embed-text")
        if out is not None and spelled is not None:
            check(np.array_equal(np.asarray(out["embeddings"]), np.asarray(spelled["embeddings"])),
                  "embed-text --template 'a photo of a {}.' cat == 'a photo of a cat.'")

        image_emb = None
        out = run_json(["embed-image", "--threads", "1"] + m + [image], "embed-image IMAGE")
        if out is not None:
            e = out.get("embedding")
            check(is_floats(e, dim) and abs(np.linalg.norm(e) - 1) < 1e-5,
                  f"embed-image: {dim} floats, L2-normalised")
            image_emb = np.asarray(e) if is_floats(e, dim) else None
        out = run_json(["embed-image", "--threads", "1", "--pixels", pixels] + m,
                       "embed-image --pixels")
        if out is not None and image_emb is not None:
            check(np.array_equal(np.asarray(out.get("embedding")), image_emb),
                  "embed-image: --pixels of preprocess's output == the IMAGE itself")
        out = run_json(["embed-image", "--threads", "2"] + m + [image], "embed-image --threads 2")
        if out is not None and image_emb is not None:
            check(np.abs(np.asarray(out.get("embedding")) - image_emb).max() < 1e-5,
                  "embed-image: --threads 2 agrees with --threads 1")

        labels = ["cat", "dog", 'a "quoted" \\ label', "tab\there\nnewline\x01", "naïve 🍕"]
        out = run_json(["classify", "--threads", "1"] + m + [image] + labels, "classify")
        if out is not None:
            lg, pr = out.get("logits"), out.get("probs")
            check(out.get("labels") == labels, "classify: labels echoed verbatim, in order")
            ok = is_floats(lg, len(labels)) and is_floats(pr, len(labels))
            check(ok, "classify: one logit and one prob per label")
            if ok:
                check(np.abs(softmax(lg) - pr).max() < 1e-6 and abs(sum(pr) - 1) < 1e-5,
                      "classify: probs = softmax(logits)")
            if ok and text_emb is not None and image_emb is not None:
                # default template: the first two labels are embed-text's first two prompts
                expect = logit_scale * text_emb[:2] @ image_emb
                check(np.abs(np.asarray(lg[:2]) - expect).max() < 1e-3,
                      f"classify: default template, logits = exp(logit_scale) <image, text> "
                      f"({lg[:2]} vs {expect})")
        out = run_json(["classify", "--threads", "1", "--template", "{}", "--pixels", pixels] + m
                       + ["cat", "a photo of a cat."], "classify --template {} --pixels")
        if out is not None and text_emb is not None and image_emb is not None:
            expect = logit_scale * text_emb[[2, 0]] @ image_emb
            check(out.get("labels") == ["cat", "a photo of a cat."]
                  and np.abs(np.asarray(out["logits"]) - expect).max() < 1e-3,
                  "classify --template '{}': labels verbatim as prompts")
        out = run_json(["classify"] + m + ["--", image, "-dash-label"], "classify -- LABEL")
        if out is not None:
            check(out.get("labels") == ["-dash-label"], "classify: '--' ends the options")

        # --- --crop ----------------------------------------------------------------------------
        for cmd in ("preprocess", "embed-image", "classify"):
            r = run([cmd, "--help"])
            check(b"--crop" in r.stdout, f"{cmd} --help shows --crop")
        expect_error(["embed-text", "--crop", "pad"] + m + ["x"], "--crop on embed-text",
                     "--crop")
        expect_error(["embed-image", "--crop", "zoom"] + m + [image], "--crop zoom", "zoom")
        expect_error(["embed-image", "--crop", "pad", "--pixels", pixels] + m,
                     "--crop with --pixels", "--pixels")
        embeddings = {}
        for crop in ("center", "squash", "pad"):
            cropped = os.path.join(d, f"pixels-{crop}.f32")
            out = run_json(["preprocess", "--crop", crop, "--out", cropped] + m + [image],
                           f"preprocess --crop {crop}")
            if out is not None:
                check(out.get("shape") == [3, size, size], f"preprocess --crop {crop}: shape")
            a = run_json(["embed-image", "--threads", "1", "--crop", crop] + m + [image],
                         f"embed-image --crop {crop}")
            b = run_json(["embed-image", "--threads", "1", "--pixels", cropped] + m,
                         f"embed-image --pixels (preprocessed with --crop {crop})")
            if a is not None and b is not None:
                check(a["embedding"] == b["embedding"],
                      f"embed-image --crop {crop} IMAGE == --pixels of preprocess --crop {crop}")
                embeddings[crop] = np.asarray(a["embedding"])
            a = run_json(["classify", "--threads", "1", "--crop", crop] + m + [image, "cat",
                                                                              "dog"],
                         f"classify --crop {crop}")
            b = run_json(["classify", "--threads", "1", "--pixels", cropped] + m + ["cat", "dog"],
                         f"classify --pixels (preprocessed with --crop {crop})")
            if a is not None and b is not None:
                check(a["probs"] == b["probs"],
                      f"classify --crop {crop} IMAGE == --pixels of preprocess --crop {crop}")
        # the catalog form (--labels IMAGE...) preprocesses with --crop too
        r = run(["classify", "--threads", "1", "--crop", "pad", "--labels", "cat,dog"] + m
                + [image])
        one = run_json(["classify", "--threads", "1", "--crop", "pad"] + m + [image, "cat", "dog"],
                       "classify --crop pad")
        if r.returncode == 0 and one is not None:
            line = json.loads(r.stdout.decode().splitlines()[0])
            check(np.abs(np.asarray(line["scores"]) - np.asarray(one["probs"])).max() < 1e-6,
                  "classify --labels (catalog) --crop pad == classify --crop pad")
        else:
            check(False, f"classify --labels --crop pad: exit {r.returncode}: {r.stderr!r}")
        if image_emb is not None and len(embeddings) == 3:
            check(np.array_equal(embeddings["center"], image_emb), "--crop center is the default")
            check(not np.array_equal(embeddings["squash"], image_emb)
                  and not np.array_equal(embeddings["pad"], image_emb)
                  and not np.array_equal(embeddings["pad"], embeddings["squash"]),
                  "the three policies see different pixels of a 70x50 image")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
