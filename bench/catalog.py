#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Catalog batches: `clip-infer classify --labels ... DIR` against one process per image.

    bench/catalog.py BUILD_DIR [--model DIR] [--images 64] [--threads 2] [--repeats 3]

Writes --images JPEG photos (640x480, smooth gradients and noise, fixed seed) into a temporary
directory, then times, --repeats times each and alternating which goes first:

- per-image: `clip-infer classify --threads T --model M IMAGE LABEL...` once per image, one
  process after the other (model load, text tower, decode, image tower, every time);
- catalog: one `clip-infer classify --threads T --model M --labels L1,L2,... DIR`.

Both print the same probabilities (checked: the top label of every image agrees). Prints one
JSON object: images/s of each way per repeat and their medians, the ratio catalog/per-image, the
CPU time the runs used (children's user+sys) and the load average around them. The model is a
B/16-shaped random checkpoint: $CLIPCLASSIFY_BENCH_MODEL (default
/tmp/clipclassify-bench/b16), generated once with tests/reference/make_checkpoint.py if missing.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
LABELS = ["a shoe", "a handbag", "a watch", "a pair of sunglasses", "a t-shirt", "a chair",
          "a lamp", "a mug"]


def make_images(directory, n, seed=0):
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        a, b, c = rng.uniform(0, 255, 3)
        img = np.stack([(a + x * 0.3) % 256, (b + y * 0.4) % 256, (c + (x + y) * 0.2) % 256], -1)
        img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(directory, "item%03d.jpg" % i), quality=90)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_per_image(tool, model, threads, images):
    tops = []
    for path in images:
        r = subprocess.run([tool, "classify", "--threads", str(threads), "--model", model, path]
                           + LABELS, capture_output=True, check=True)
        probs = json.loads(r.stdout)["probs"]
        tops.append(LABELS[int(np.argmax(probs))])
    return tops


def run_catalog(tool, model, threads, directory):
    r = subprocess.run([tool, "classify", "--threads", str(threads), "--model", model,
                        "--labels", ",".join(LABELS), directory], capture_output=True, check=True)
    return [json.loads(line)["top-label"] for line in r.stdout.decode().splitlines()]


def timed(fn, *args):
    load = os.getloadavg()[0]
    cpu = children_cpu()
    start = time.monotonic()
    out = fn(*args)
    wall = time.monotonic() - start
    return out, wall, children_cpu() - cpu, load, os.getloadavg()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build")
    parser.add_argument("--model", default=os.environ.get("CLIPCLASSIFY_BENCH_MODEL",
                                                          "/tmp/clipclassify-bench/b16"))
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tool = os.path.join(args.build, "tools", "clip-infer")
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        print(f"generating a B/16-shaped checkpoint in {args.model}", file=sys.stderr)
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "reference",
                                                         "make_checkpoint.py"), args.model,
                        "--preset", "b16"], check=True)

    runs = {"per_image": [], "catalog": []}
    with tempfile.TemporaryDirectory(prefix="clip-catalog-bench-") as d:
        make_images(d, args.images)
        images = sorted(os.path.join(d, f) for f in os.listdir(d))
        reference = None
        for rep in range(args.repeats):
            order = ["per_image", "catalog"] if rep % 2 == 0 else ["catalog", "per_image"]
            for way in order:
                if way == "per_image":
                    tops, wall, cpu, l0, l1 = timed(run_per_image, tool, args.model,
                                                    args.threads, images)
                else:
                    tops, wall, cpu, l0, l1 = timed(run_catalog, tool, args.model, args.threads,
                                                    d)
                if reference is None:
                    reference = tops
                if tops != reference:
                    sys.exit(f"{way}: the top labels differ from the first run's")
                runs[way].append({"wall_s": round(wall, 3),
                                  "images_per_s": round(len(images) / wall, 3),
                                  "cpu_s": round(cpu, 2), "loadavg_before": l0,
                                  "loadavg_after": l1})
                print(f"repeat {rep} {way}: {len(images) / wall:.2f} images/s "
                      f"({wall:.1f} s wall, {cpu:.1f} s CPU, load {l0:.1f} -> {l1:.1f})",
                      file=sys.stderr)

    med = {k: statistics.median(r["images_per_s"] for r in v) for k, v in runs.items()}
    print(json.dumps({
        "images": args.images, "threads": args.threads, "model": args.model,
        "labels": len(LABELS), "cpus": os.cpu_count(),
        "per_image": runs["per_image"], "catalog": runs["catalog"],
        "median_images_per_s": med,
        "catalog_over_per_image": round(med["catalog"] / med["per_image"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
