#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`clip-infer preprocess` against HF CLIPImageProcessor (the slow, Pillow-based one), rebuilt
here from Pillow + numpy: Image.open(path).convert("RGB"), Image.resize(BICUBIC,
reducing_gap=None) to the shortest edge, HF's center_crop (zero padding when the image is
smaller than the crop), rescale in float64 then float32, normalise in float32, CHW.

Images: random noise and smooth gradients at awkward sizes (1x1 up to 1280x720, odd, portrait,
landscape, extreme aspect), written as PNG in every colour type Pillow reads differently (grey,
grey+alpha, palette with and without transparency, 1/2/4-bit grey, RGBA, 16-bit), JPEG (grey,
4:2:0, 4:4:4, progressive, CMYK) and PPM/PGM. Configs: HF's dict form and the legacy integer
form, a non-square crop, a crop larger than the resized image, no crop, no resize, no
rescale/normalise.

Crop policies (`--crop`): `center` is the processor above; `squash` resizes the whole image
straight to crop_size with the same Pillow call (no crop, whatever do_resize/do_center_crop
say); `pad` pastes the image onto a square Image.new canvas of side max(w, h) at
((side - w) // 2, (side - h) // 2) filled with round(255 * image_mean), then runs the processor
above on the canvas. Each on every size/aspect and config.

The contract: every value within one grey level of the reference, i.e. |diff| <= 1/255/std in
normalised units (the implementation aims for, and currently reaches, bit-exact output; the
count of inexact values is printed). Exit status 0 when every check passes.
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

CLIP_INFER = os.environ.get("CLIP_INFER", "build/tools/clip-infer")
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


# ------------------------------------------------------------------------------------------
# Reference: transformers' CLIPImageProcessor.preprocess, step by step.

def hf_config(cfg):
    """preprocessor_config.json -> the values CLIPImageProcessor would use (its defaults for
    absent keys; an integer size is {"shortest_edge": n}, an integer crop_size is square)."""
    size = cfg.get("size", {"shortest_edge": 224})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop = cfg.get("crop_size", {"height": 224, "width": 224})
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    return dict(
        do_resize=cfg.get("do_resize", True), shortest_edge=size["shortest_edge"],
        do_center_crop=cfg.get("do_center_crop", True),
        crop_height=crop["height"], crop_width=crop["width"],
        do_rescale=cfg.get("do_rescale", True), rescale_factor=cfg.get("rescale_factor", 1 / 255),
        do_normalize=cfg.get("do_normalize", True),
        image_mean=cfg.get("image_mean", OPENAI_MEAN), image_std=cfg.get("image_std", OPENAI_STD))


def hf_center_crop(a, crop_h, crop_w):
    """transformers.image_transforms.center_crop on an HWC array."""
    h, w = a.shape[:2]
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    if top >= 0 and left >= 0:
        return a[top:top + crop_h, left:left + crop_w]
    new_h, new_w = max(crop_h, h), max(crop_w, w)
    padded = np.zeros((new_h, new_w) + a.shape[2:], dtype=a.dtype)
    top_pad, left_pad = -(-(new_h - h) // 2), -(-(new_w - w) // 2)   # ceil
    padded[top_pad:top_pad + h, left_pad:left_pad + w] = a
    top, left = top + top_pad, left + left_pad
    return padded[max(0, top):min(new_h, top + crop_h), max(0, left):min(new_w, left + crop_w)]


def reference(path, cfg, crop="center"):
    p = hf_config(cfg)
    img = Image.open(path).convert("RGB")
    if crop == "squash":
        img = img.resize((p["crop_width"], p["crop_height"]), resample=Image.BICUBIC,
                         reducing_gap=None)
        p = dict(p, do_resize=False, do_center_crop=False)
    elif crop == "pad":
        w, h = img.size
        side = max(w, h)
        fill = tuple(min(255, max(0, round(255 * m))) for m in p["image_mean"])
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    if p["do_resize"]:
        # get_resize_output_image_size(default_to_square=False)
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = p["shortest_edge"], int(p["shortest_edge"] * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        img = img.resize(size, resample=Image.BICUBIC, reducing_gap=None)
    a = np.array(img)
    if p["do_center_crop"]:
        a = hf_center_crop(a, p["crop_height"], p["crop_width"])
    x = a
    if p["do_rescale"]:
        x = (x.astype(np.float64) * p["rescale_factor"]).astype(np.float32)
    if p["do_normalize"]:
        x = x.astype(np.float32)
        x = (x - np.array(p["image_mean"], dtype=np.float32)) / np.array(p["image_std"],
                                                                         dtype=np.float32)
    grey_level = np.float32(p["rescale_factor"] if p["do_rescale"] else 1.0)
    if p["do_normalize"]:
        grey_level = grey_level / np.array(p["image_std"], dtype=np.float32)
    return x.astype(np.float32).transpose(2, 0, 1), np.broadcast_to(grey_level, (3,))


# ------------------------------------------------------------------------------------------
# Images

def noise(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def gradient(w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * xx / max(w - 1, 1)
    g = 255 * yy / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(xx / 7.0 + yy / 11.0)        # smooth, but with detail
    return np.stack([r, g, b], -1).round().astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, samples, bit_depth, color_type):
    """A PNG Pillow cannot write itself (16-bit colour, 2/4-bit grey): samples is HxWxC
    (C = channels, values < 2**bit_depth)."""
    h, w, c = samples.shape
    if bit_depth == 16:
        rows = [samples[y].astype(">u2").tobytes() for y in range(h)]
    elif bit_depth == 8:
        rows = [samples[y].astype(np.uint8).tobytes() for y in range(h)]
    else:
        per_byte = 8 // bit_depth
        rows = []
        for y in range(h):
            v = samples[y, :, 0].astype(np.uint32)
            v = np.concatenate([v, np.zeros(-len(v) % per_byte, np.uint32)]).reshape(-1, per_byte)
            shifts = bit_depth * np.arange(per_byte - 1, -1, -1)
            rows.append((v << shifts).sum(1).astype(np.uint8).tobytes())
    raw = b"".join(b"\0" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n"
                + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
                + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def make_images(d):
    """[(name, path)] of every test image."""
    images = []
    rng = np.random.default_rng(7)

    def add(name, save):
        path = os.path.join(d, name)
        save(path)
        images.append((name, path))

    sizes = [(1, 1), (7, 5), (31, 17), (224, 224), (225, 223), (640, 480), (480, 640),
             (1280, 720), (50, 300), (301, 49)]
    for i, (w, h) in enumerate(sizes):
        add(f"noise-{w}x{h}.png", lambda p, w=w, h=h, i=i: Image.fromarray(noise(w, h, i)).save(p))
        add(f"gradient-{w}x{h}.png", lambda p, w=w, h=h: Image.fromarray(gradient(w, h)).save(p))

    rgb = np.concatenate([gradient(97, 61)[:, :48], noise(49, 61, 99)], axis=1)  # 97x61
    grey = rgb[:, :, 1]
    alpha = rng.integers(0, 256, grey.shape, dtype=np.uint8)
    add("grey.png", lambda p: Image.fromarray(grey, "L").save(p))
    add("grey-alpha.png", lambda p: Image.fromarray(np.stack([grey, alpha], -1), "LA").save(p))
    add("rgba.png", lambda p: Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(p))
    add("bilevel.png", lambda p: Image.fromarray(grey > 128).save(p))       # 1-bit
    pal = Image.fromarray(rgb).quantize(colors=200)
    add("palette.png", lambda p: pal.save(p))
    add("palette-trns.png", lambda p: pal.save(p, transparency=5))
    pal4 = Image.fromarray(rgb).quantize(colors=4)
    add("palette-2bit.png", lambda p: pal4.save(p, bits=2))
    add("grey-2bit.png", lambda p: write_png(p, (grey[:, :, None] >> 6), 2, 0))
    add("grey-4bit.png", lambda p: write_png(p, (grey[:, :, None] >> 4), 4, 0))
    # 16-bit grey opens as Pillow mode "I", whose RGB conversion clamps at 255 (not a rescale):
    # values on both sides of 255.
    grey16 = rng.integers(0, 600, grey.shape)[:, :, None]
    add("grey-16bit.png", lambda p: write_png(p, grey16, 16, 0))
    add("grey-alpha-16bit.png",
        lambda p: write_png(p, rng.integers(0, 65536, grey.shape + (2,)), 16, 4))
    add("rgb-16bit.png", lambda p: write_png(p, rng.integers(0, 65536, rgb.shape), 16, 2))
    add("rgba-16bit.png",
        lambda p: write_png(p, rng.integers(0, 65536, grey.shape + (4,)), 16, 6))

    photo = gradient(320, 200)
    add("rgb-420.jpg", lambda p: Image.fromarray(photo).save(p, quality=85))
    add("rgb-444.jpg", lambda p: Image.fromarray(photo).save(p, quality=95, subsampling=0))
    add("rgb-progressive.jpg",
        lambda p: Image.fromarray(noise(123, 77, 5)).save(p, quality=75, progressive=True))
    add("grey.jpg", lambda p: Image.fromarray(photo[:, :, 0]).save(p, quality=90))
    cmyk = np.dstack([photo, photo[:, :, :1] // 2])
    add("cmyk.jpg", lambda p: Image.fromarray(cmyk, "CMYK").save(p, quality=90))

    add("rgb.ppm", lambda p: Image.fromarray(rgb).save(p))
    add("grey.pgm", lambda p: Image.fromarray(grey).save(p))

    def ppm_with_comments(p):
        with open(p, "wb") as f:
            f.write(b"P6\n# made by test_preprocess.py\n97 # width\n61\n255\n" + rgb.tobytes())
    add("comments.ppm", ppm_with_comments)
    return images


# ------------------------------------------------------------------------------------------

MODERN = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True,
          "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
          "image_mean": OPENAI_MEAN, "image_processor_type": "CLIPImageProcessor",
          "image_std": OPENAI_STD, "resample": 3, "rescale_factor": 1 / 255,
          "size": {"shortest_edge": 224}}
LEGACY = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
          "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": OPENAI_MEAN,
          "image_std": OPENAI_STD, "resample": 3, "size": 224}
CONFIGS = {
    "modern": MODERN,
    "legacy": LEGACY,
    # non-square crop, wider than a portrait image's resized width (padding in x only)
    "crop-200x160": dict(MODERN, size={"shortest_edge": 180},
                         crop_size={"height": 160, "width": 200},
                         image_mean=[0.5, 0.25, 0.75], image_std=[0.5, 0.3, 0.2]),
    "tiny-32": dict(MODERN, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
    "pad-100-in-128": dict(MODERN, size={"shortest_edge": 100},
                           crop_size={"height": 128, "width": 128}),
    "no-crop": dict(MODERN, do_center_crop=False, size={"shortest_edge": 64}),
    "no-resize": dict(MODERN, do_resize=False),
    "no-rescale": dict(MODERN, do_rescale=False),
    "raw": dict(MODERN, do_rescale=False, do_normalize=False),
}


def run_case(d, image_name, image_path, config_name, stats, crop=None):
    model_dir = os.path.join(d, "cfg-" + config_name)
    out = os.path.join(d, "out.f32")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([CLIP_INFER, "preprocess", "--model", model_dir, image_path, "--out", out]
                       + (["--crop", crop] if crop else []), capture_output=True, text=True)
    what = f"{image_name} / {config_name}" + (f" / crop={crop}" if crop else "")
    if r.returncode != 0:
        check(False, f"{what}: clip-infer exit {r.returncode}: {r.stderr.strip()}")
        return
    expected, grey_level = reference(image_path, CONFIGS[config_name], crop or "center")
    shape = json.loads(r.stdout)["shape"]
    got = np.fromfile(out, dtype="<f4")
    if list(expected.shape) != shape or got.size != expected.size:
        check(False, f"{what}: shape {shape} ({got.size} floats), expected {list(expected.shape)}")
        return
    got = got.reshape(expected.shape)
    diff = np.abs(got.astype(np.float64) - expected)
    levels = (diff / np.asarray(grey_level, np.float64)[:, None, None]).max()
    inexact = int((got != expected).sum())
    stats["values"] += got.size
    stats["inexact"] += inexact
    # one grey level, plus float rounding of the normalised value
    ok = levels <= 1.0 + 1e-4
    if not ok or inexact:
        check(ok, f"{what}: max diff {levels:.4f} grey levels, {inexact} inexact values")
    else:
        stats["exact_cases"] += 1


def main():
    build_dir = os.environ.get("CLIP_TEST_BUILD_DIR")
    with tempfile.TemporaryDirectory(prefix="test-preprocess-", dir=build_dir) as d:
        for name, cfg in CONFIGS.items():
            os.makedirs(os.path.join(d, "cfg-" + name))
            with open(os.path.join(d, "cfg-" + name, "preprocessor_config.json"), "w") as f:
                json.dump(cfg, f)
        images = make_images(d)
        stats = {"values": 0, "inexact": 0, "exact_cases": 0}
        n_cases = 0
        for name, path in images:
            # Sizes get every config; the format variants the ones that differ in kind.
            configs = CONFIGS if name.startswith(("noise-", "gradient-")) else \
                ["modern", "crop-200x160", "no-resize"]
            for config_name in configs:
                run_case(d, name, path, config_name, stats)
                n_cases += 1
        print(f"       {n_cases} cases, {stats['exact_cases']} bit-exact; {stats['inexact']} of "
              f"{stats['values']} values inexact (allowed: within one grey level)")

        # Crop policies: every size and aspect (square, landscape, portrait, extreme, tiny) with
        # every config, and a few format variants; center explicitly must be the default.
        crop_stats = {"values": 0, "inexact": 0, "exact_cases": 0}
        n_crop_cases = 0
        for name, path in images:
            sized = name.startswith(("noise-", "gradient-"))
            if not sized and name not in ("rgba.png", "grey.png", "rgb-420.jpg"):
                continue
            for config_name in (CONFIGS if sized else ["modern", "crop-200x160"]):
                for crop in ("squash", "pad", "center"):
                    if crop == "center" and not name.startswith("noise-"):
                        continue
                    run_case(d, name, path, config_name, crop_stats, crop)
                    n_crop_cases += 1
        print(f"       crop policies: {n_crop_cases} cases, {crop_stats['exact_cases']} "
              f"bit-exact; {crop_stats['inexact']} of {crop_stats['values']} values inexact")
        check(crop_stats["exact_cases"] == n_crop_cases,
              "every crop-policy case is bit-exact with the Pillow reference")

        # The pad colour is the mean's grey level: a 1x2 image padded to 2x2 without resize or
        # normalisation shows it, and the image's own column, exactly.
        pad_cfg = os.path.join(d, "cfg-pad-raw")
        os.makedirs(pad_cfg)
        with open(os.path.join(pad_cfg, "preprocessor_config.json"), "w") as f:
            json.dump(dict(MODERN, do_resize=False, do_center_crop=False, do_rescale=False,
                           do_normalize=False, image_mean=[0.5, 0.25, 1.5]), f)
        tall = os.path.join(d, "tall-1x2.png")
        Image.fromarray(np.array([[[10, 20, 30]], [[40, 50, 60]]], np.uint8)).save(tall)
        out = os.path.join(d, "pad.f32")
        r = subprocess.run([CLIP_INFER, "preprocess", "--model", pad_cfg, "--crop", "pad", tall,
                            "--out", out], capture_output=True, text=True)
        got = np.fromfile(out, dtype="<f4").reshape(3, 2, 2) if r.returncode == 0 else None
        # side 2, image at x = (2 - 1) // 2 = 0; fill round(127.5) = 128 (half to even),
        # round(63.75) = 64, 382.5 clamped to 255
        want = np.array([[[10, 128], [40, 128]], [[20, 64], [50, 64]], [[30, 255], [60, 255]]],
                        np.float32)
        check(got is not None and np.array_equal(got, want),
              f"pad: 1x2 image at offset 0 on a 2x2 canvas of round(255 * mean): {got}")

        # The same pixels through a JSON config that only differs in form give the same output.
        a, b = os.path.join(d, "a.f32"), os.path.join(d, "b.f32")
        img = os.path.join(d, "noise-640x480.png")
        for cfg, out in (("modern", a), ("legacy", b)):
            subprocess.run([CLIP_INFER, "preprocess", "--model", os.path.join(d, "cfg-" + cfg),
                            img, "--out", out], check=True, capture_output=True)
        check(open(a, "rb").read() == open(b, "rb").read(),
              "legacy integer size/crop_size == {shortest_edge}/{height,width} form")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
