#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Kernel paths and precision, through clip-infer (the values themselves are test_parity.py's
business, once per path):

- `--precision bf16` on a CPU with AVX512_BF16 (read from /proc/cpuinfo, apart from the engine's
  CPUID check) really runs bf16: embeddings differ from fp32's, yet their cosine with fp32's is
  above 0.9995 for images and texts, no warning is printed, and classify's top label agrees;
- where bf16 cannot run (no AVX512_BF16, or CLIPCLASSIFY_ISA=avx2/blas) it prints a warning that
  says bf16 is unavailable and gives exactly fp32's output;
- a bad --precision, an unknown CLIPCLASSIFY_ISA and a path this CPU cannot run are clear errors
  (exit 1, the setting named on stderr).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REFERENCE_DIR = os.environ.get(
    "CLIP_REFERENCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
sys.path.insert(0, REFERENCE_DIR)
import make_checkpoint as mk  # noqa: E402

CLIP_INFER = os.environ.get("CLIP_INFER", "build/tools/clip-infer")
TEXTS = ["a photo of a cat.", "a photo of a dog.", "x", "naïve café 🍕", "a red bus at night"]
failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def run(args, isa=None):
    env = dict(os.environ)
    env.pop("CLIPCLASSIFY_ISA", None)
    if isa is not None:
        env["CLIPCLASSIFY_ISA"] = isa
    return subprocess.run([CLIP_INFER] + args, capture_output=True, env=env)


def outputs(model, pixels, precision, isa=None):
    """(image embedding, text embeddings, classify top index, stderr of the three)"""
    common = ["--model", model, "--threads", "2", "--precision", precision]
    runs = [run(["embed-image"] + common + ["--pixels", pixels], isa),
            run(["embed-text"] + common + TEXTS, isa),
            run(["classify"] + common + ["--pixels", pixels] + TEXTS, isa)]
    for r in runs:
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode(errors="replace"))
    image = np.array(json.loads(runs[0].stdout)["embedding"])
    texts = np.array(json.loads(runs[1].stdout)["embeddings"])
    top = int(np.argmax(json.loads(runs[2].stdout)["logits"]))
    return image, texts, top, "".join(r.stderr.decode(errors="replace") for r in runs)


def main():
    flags = cpu_flags()
    has_bf16 = "avx512f" in flags and "avx512_bf16" in flags
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "tiny")
        mk.make_checkpoint(model, preset="tiny", seed=21,
                           tokenizer_dir=os.environ.get("CLIP_TOKENIZER_DIR"))
        size = json.load(open(os.path.join(model, "config.json")))["vision_config"]["image_size"]
        pixels = os.path.join(d, "pixels.f32")
        np.random.default_rng(3).uniform(-1.8, 2.1, (3, size, size)).astype("<f4").tofile(pixels)

        image32, texts32, top32, err32 = outputs(model, pixels, "fp32")
        check("warning" not in err32, f"fp32 prints no warning ({err32.strip()!r})")

        image16, texts16, top16, err16 = outputs(model, pixels, "bf16")
        if has_bf16 and not os.environ.get("CLIPCLASSIFY_ISA"):
            image_cos = float(image16 @ image32)
            text_cos = float(np.min(np.sum(texts16 * texts32, axis=1)))
            check("warning" not in err16, f"bf16 on an AVX512_BF16 CPU: no warning ({err16.strip()!r})")
            check(not np.array_equal(image16, image32) and not np.array_equal(texts16, texts32),
                  "bf16 embeddings differ from fp32's (bf16 really ran)")
            check(image_cos > 0.9995, f"bf16 image embedding cosine to fp32 {image_cos:.6f} > 0.9995")
            check(text_cos > 0.9995, f"bf16 text embeddings' lowest cosine to fp32 {text_cos:.6f} > 0.9995")
            check(top16 == top32, f"classify: the same top label in bf16 ({top16}) and fp32 ({top32})")
        else:
            check("bf16 is unavailable" in err16,
                  f"bf16 without AVX512_BF16 warns that it is unavailable ({err16.strip()!r})")
            check(np.array_equal(image16, image32) and np.array_equal(texts16, texts32),
                  "... and runs exactly fp32")

        for isa in ["avx2", "blas"]:
            if isa == "avx2" and not {"avx2", "fma"} <= flags:
                continue
            image_p, texts_p, _, err = outputs(model, pixels, "bf16", isa)
            image_f, texts_f, _, _ = outputs(model, pixels, "fp32", isa)
            check("bf16 is unavailable" in err and isa in err,
                  f"CLIPCLASSIFY_ISA={isa} --precision bf16 warns ({err.strip()!r})")
            check(np.array_equal(image_p, image_f) and np.array_equal(texts_p, texts_f),
                  f"CLIPCLASSIFY_ISA={isa} --precision bf16 gives exactly fp32's output")

        r = run(["embed-text", "--model", model, "--precision", "fp16", "x"])
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 1 and "fp16" in err and r.stdout == b"",
              f"--precision fp16 is refused naming it ({err.strip()!r})")
        r = run(["embed-text", "--model", model, "x"], isa="sse9")
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 1 and "CLIPCLASSIFY_ISA=sse9" in err,
              f"CLIPCLASSIFY_ISA=sse9 is refused naming it ({err.strip()!r})")
        if "avx512f" not in flags:
            r = run(["embed-text", "--model", model, "x"], isa="avx512")
            err = r.stderr.decode(errors="replace")
            check(r.returncode == 1 and "avx512" in err,
                  f"CLIPCLASSIFY_ISA=avx512 on a CPU without AVX-512F is refused ({err.strip()!r})")

    if failures:
        print(f"\n{len(failures)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
