#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What precision=bf16 costs in accuracy: bf16 against fp32 embeddings of the same checkpoint.

    bench/bf16_cost.py [BUILD_DIR] [--model DIR] [--images N]

For N test images (the kinds tests/test_preprocess.py draws: noise, gradients, checkerboards,
discs, stripes, at several sizes) and 20 typical labels under the default template, runs
`clip-infer embed-image` and `embed-text` in fp32 and in bf16 and prints one JSON object:
the cosine of each bf16 embedding to its fp32 one (min, mean; images and texts), and how often
the top-1 label (argmax of image . text, which is what classify ranks by) agrees.

The model defaults to the B/16-shaped random checkpoint bench/run.sh generates
($CLIPCLASSIFY_BENCH_MODEL, default /tmp/clipclassify-bench/b16). On a CPU without AVX512_BF16
bf16 runs fp32, and the JSON says so ("bf16_ran": false).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

LABELS = ["person", "dog", "cat", "car", "bicycle", "empty room", "kitchen", "laptop",
          "coffee cup", "tree", "traffic light", "bus", "a person riding a horse", "pizza",
          "television", "bird", "mountain landscape", "city street at night", "sofa",
          "potted plant"]


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(224, 224), (320, 240), (640, 480), (1280, 720), (300, 500), (97, 131)]
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        kind = i % 5
        y, x = np.mgrid[0:h, 0:w]
        if kind == 0:
            a = rng.integers(0, 256, (h, w, 3))
        elif kind == 1:
            a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                          (x + y) * 255 // max(w + h - 2, 1)], axis=-1)
        elif kind == 2:
            s = int(rng.integers(4, 40))
            c = ((x // s + y // s) % 2)[..., None] * rng.integers(0, 256, 3)
            a = c + (1 - ((x // s + y // s) % 2))[..., None] * rng.integers(0, 256, 3)
        elif kind == 3:
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, max(w, h) / 2)
            inside = ((x - cx) ** 2 + (y - cy) ** 2 < r * r)[..., None]
            a = inside * rng.integers(0, 256, 3) + (1 - inside) * rng.integers(0, 256, 3)
        else:
            s = int(rng.integers(2, 30))
            a = ((np.sin(x / s + rng.uniform(0, 6)) + 1) * 127.5)[..., None] * np.ones(3)
        yield Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def infer(tool, model, precision, args):
    r = subprocess.run([tool] + args[:1] + ["--model", model, "--precision", precision]
                       + args[1:], capture_output=True, check=True)
    return json.loads(r.stdout), r.stderr.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--model", default=os.environ.get("CLIPCLASSIFY_BENCH_MODEL",
                                                      "/tmp/clipclassify-bench/b16"))
    ap.add_argument("--images", type=int, default=24)
    args = ap.parse_args()
    tool = os.path.join(args.build, "tools", "clip-infer")

    prompts = [f"a photo of a {label}." for label in LABELS]
    texts = {}
    warning = ""
    for precision in ("fp32", "bf16"):
        out, err = infer(tool, args.model, precision, ["embed-text", "--template", "{}"] + prompts)
        texts[precision] = np.array(out["embeddings"])
        warning += err

    image_cos, agree = [], 0
    with tempfile.TemporaryDirectory() as d:
        for i, image in enumerate(images(args.images)):
            path = os.path.join(d, f"{i}.png")
            image.save(path)
            emb = {}
            for precision in ("fp32", "bf16"):
                out, err = infer(tool, args.model, precision, ["embed-image", path])
                emb[precision] = np.array(out["embedding"])
            image_cos.append(float(emb["fp32"] @ emb["bf16"]))
            top32 = int(np.argmax(texts["fp32"] @ emb["fp32"]))
            top16 = int(np.argmax(texts["bf16"] @ emb["bf16"]))
            agree += top32 == top16

    text_cos = np.sum(texts["fp32"] * texts["bf16"], axis=1)
    print(json.dumps({
        "model": args.model,
        "bf16_ran": "unavailable" not in warning,
        "images": args.images,
        "image_cosine_min": round(min(image_cos), 6),
        "image_cosine_mean": round(float(np.mean(image_cos)), 6),
        "texts": len(prompts),
        "text_cosine_min": round(float(np.min(text_cos)), 6),
        "text_cosine_mean": round(float(np.mean(text_cos)), 6),
        "top1_agreement": f"{agree}/{args.images}",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
