#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Random-weight CLIP checkpoints in the exact HuggingFace `CLIPModel` layout, numpy only.

No weights can be downloaded in our test environment, so every fixture is generated: a directory
with config.json (CLIPConfig), model.safetensors (every tensor CLIPModel has, names and shapes as
transformers' modeling_clip.py), vocab.json + merges.txt (the real CLIP tokenizer, copied) and
preprocessor_config.json (CLIPImageProcessor).

The values are random but not trivial: LayerNorm weights scatter around 1, biases are non-zero,
and matrices are scaled by 1/sqrt(fan_in) so activations stay O(1) through every layer (a parity
test on vanishing activations would pass for the wrong reasons).

Command line:
    /usr/bin/python3 make_checkpoint.py OUT_DIR [--preset tiny|tiny-gelu|b16|b32|l14] [--seed N]
        [--dtype f32|f16|bf16] [--eos-token-id 2|49407] [--layer-norm-eps X] [--hidden-act A]
        [--image-size N] [--patch-size N] [--no-position-ids] [--legacy-preprocessor]
        [--tokenizer-dir DIR] [--set text.hidden_size=96 --set projection_dim=16 ...]

Python:
    from make_checkpoint import make_checkpoint, read_safetensors
    config = make_checkpoint(out_dir, preset="tiny", seed=1, dtype="f16")
    tensors, metadata = read_safetensors(out_dir + "/model.safetensors")  # name -> np array
"""

import argparse
import copy
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

# Per-tower architecture. Fields follow HF's CLIPTextConfig / CLIPVisionConfig.
PRESETS = {
    # Small enough for unit tests, but with the real vocabulary (real token ids must work) and the
    # real 77-position context.
    "tiny": {
        "projection_dim": 32,
        "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=77, vocab_size=49408,
                     hidden_act="quick_gelu", layer_norm_eps=1e-5),
        "vision": dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, image_size=32, patch_size=8, num_channels=3,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5),
    },
    # openai/clip-vit-base-patch16
    "b16": {
        "projection_dim": 512,
        "text": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, vocab_size=49408,
                     hidden_act="quick_gelu", layer_norm_eps=1e-5),
        "vision": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, image_size=224, patch_size=16, num_channels=3,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5),
    },
    # openai/clip-vit-large-patch14
    "l14": {
        "projection_dim": 768,
        "text": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                     num_attention_heads=12, max_position_embeddings=77, vocab_size=49408,
                     hidden_act="quick_gelu", layer_norm_eps=1e-5),
        "vision": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                       num_attention_heads=16, image_size=224, patch_size=14, num_channels=3,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5),
    },
}
PRESETS["tiny-gelu"] = copy.deepcopy(PRESETS["tiny"])
PRESETS["tiny-gelu"]["text"]["hidden_act"] = "gelu"
PRESETS["tiny-gelu"]["vision"]["hidden_act"] = "gelu"
# openai/clip-vit-base-patch32: B/16 with 32-pixel patches.
PRESETS["b32"] = copy.deepcopy(PRESETS["b16"])
PRESETS["b32"]["vision"]["patch_size"] = 32

# safetensors dtype name -> (numpy storage dtype, bytes per element)
DTYPES = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2),
    "BF16": (np.uint16, 2), "I64": (np.int64, 8), "I32": (np.int32, 4), "I16": (np.int16, 2),
    "I8": (np.int8, 1), "U8": (np.uint8, 1), "BOOL": (np.bool_, 1),
    "U16": (np.uint16, 2), "U32": (np.uint32, 4), "U64": (np.uint64, 8),
    "F8_E4M3": (np.uint8, 1), "F8_E5M2": (np.uint8, 1),
}
ARG_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def default_tokenizer_dir():
    """$CLIP_TOKENIZER_DIR, else the copy shipped in tests/data/clip-tokenizer."""
    return os.environ.get("CLIP_TOKENIZER_DIR",
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                       "clip-tokenizer"))


# --- bfloat16 (numpy has no such dtype: keep the 16-bit patterns in uint16) -------------------

def f32_to_bf16_bits(x):
    """Round-to-nearest-even, as torch's .to(torch.bfloat16); NaN stays a quiet NaN."""
    x = np.asarray(x, dtype=np.float32)
    bits = np.ascontiguousarray(x).reshape(-1).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    out = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x.reshape(-1))
    if nan.any():
        out[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return out.reshape(x.shape)


def bf16_bits_to_f32(bits):
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32).reshape(-1) << 16).view(np.float32).reshape(bits.shape)


# --- safetensors --------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, safetensors dtype name, shape, numpy array with the stored bytes).

    Laid out as the safetensors library writes it: tensors sorted by alignment (element size,
    largest first) then name, so that every tensor starts aligned; a compact JSON header padded
    with spaces to a multiple of 8 bytes; offsets relative to the start of the data section.
    """
    entries = sorted(tensors, key=lambda t: (-DTYPES[t[1]][1], t[0]))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, dtype, shape, array in entries:
        blob = np.ascontiguousarray(array).tobytes()
        n_elements = math.prod(shape)
        if len(blob) != n_elements * DTYPES[dtype][1]:
            raise ValueError(f"{name}: {len(blob)} bytes for {dtype} {list(shape)}")
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path, raw=False):
    """Returns ({name: np.ndarray}, metadata). BF16 becomes float32 unless raw (then uint16 bits);
    F16 stays float16."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", None)
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        np_dtype, _ = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=np_dtype).reshape(info["shape"])
        if info["dtype"] == "BF16" and not raw:
            array = bf16_bits_to_f32(array)
        tensors[name] = array.copy()
    return tensors, metadata


# --- weights ------------------------------------------------------------------------------------

class _Weights:
    def __init__(self, seed, dtype):
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.tensors = []

    def _normal(self, shape, std, mean=0.0):
        a = self.rng.standard_normal(shape, dtype=np.float32)
        a *= np.float32(std)
        if mean:
            a += np.float32(mean)
        return a

    def add(self, name, array):
        if self.dtype == "F32":
            stored = array.astype(np.float32, copy=False)
        elif self.dtype == "F16":
            stored = array.astype(np.float16)
        else:
            stored = f32_to_bf16_bits(array)
        self.tensors.append((name, self.dtype, array.shape, stored))

    def add_i64(self, name, array):
        self.tensors.append((name, "I64", array.shape, array.astype(np.int64)))

    def linear(self, prefix, n_out, n_in, bias=True):
        self.add(prefix + ".weight", self._normal((n_out, n_in), 1.0 / math.sqrt(n_in)))
        if bias:
            self.add(prefix + ".bias", self._normal((n_out,), 0.05))

    def layer_norm(self, prefix, n):
        self.add(prefix + ".weight", self._normal((n,), 0.1, mean=1.0))
        self.add(prefix + ".bias", self._normal((n,), 0.05))

    def embedding(self, name, shape, std):
        self.add(name, self._normal(shape, std))

    def scalar(self, name, value):
        self.add(name, np.asarray(value, dtype=np.float32).reshape(()))


def _encoder(w, prefix, tower):
    hidden, inter = tower["hidden_size"], tower["intermediate_size"]
    for i in range(tower["num_hidden_layers"]):
        p = f"{prefix}.encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            w.linear(f"{p}.self_attn.{proj}", hidden, hidden)
        w.layer_norm(f"{p}.layer_norm1", hidden)
        w.linear(f"{p}.mlp.fc1", inter, hidden)
        w.linear(f"{p}.mlp.fc2", hidden, inter)
        w.layer_norm(f"{p}.layer_norm2", hidden)


def _make_weights(config, seed, dtype, position_ids):
    text, vision = config["text_config"], config["vision_config"]
    proj = config["projection_dim"]
    w = _Weights(seed, dtype)

    # CLIPTextTransformer
    th = text["hidden_size"]
    w.embedding("text_model.embeddings.token_embedding.weight", (text["vocab_size"], th), 0.5)
    w.embedding("text_model.embeddings.position_embedding.weight",
                (text["max_position_embeddings"], th), 0.2)
    if position_ids:
        w.add_i64("text_model.embeddings.position_ids",
                  np.arange(text["max_position_embeddings"]).reshape(1, -1))
    _encoder(w, "text_model", text)
    w.layer_norm("text_model.final_layer_norm", th)

    # CLIPVisionTransformer
    vh, patch = vision["hidden_size"], vision["patch_size"]
    n_positions = (vision["image_size"] // patch) ** 2 + 1
    channels = vision.get("num_channels", 3)
    w.embedding("vision_model.embeddings.class_embedding", (vh,), 0.5)
    w.add("vision_model.embeddings.patch_embedding.weight",
          w._normal((vh, channels, patch, patch), 1.0 / math.sqrt(channels * patch * patch)))
    w.embedding("vision_model.embeddings.position_embedding.weight", (n_positions, vh), 0.2)
    if position_ids:
        w.add_i64("vision_model.embeddings.position_ids", np.arange(n_positions).reshape(1, -1))
    w.layer_norm("vision_model.pre_layrnorm", vh)
    _encoder(w, "vision_model", vision)
    w.layer_norm("vision_model.post_layernorm", vh)

    # CLIPModel heads (no bias), and the learned temperature (trained CLIP ends at log(100)).
    w.linear("visual_projection", proj, vh, bias=False)
    w.linear("text_projection", proj, th, bias=False)
    w.scalar("logit_scale", math.log(100.0) + 0.05 * float(w.rng.standard_normal()))
    return w.tensors


# --- config files -------------------------------------------------------------------------------

def _config_json(preset, eos_token_id, layer_norm_eps, hidden_act, image_size, patch_size,
                 overrides, dtype):
    p = copy.deepcopy(PRESETS[preset])
    text, vision = p["text"], p["vision"]
    if layer_norm_eps is not None:
        text["layer_norm_eps"] = vision["layer_norm_eps"] = float(layer_norm_eps)
    if hidden_act is not None:
        text["hidden_act"] = vision["hidden_act"] = hidden_act
    if image_size is not None:
        vision["image_size"] = int(image_size)
    if patch_size is not None:
        vision["patch_size"] = int(patch_size)
    projection_dim = p["projection_dim"]
    for key, value in (overrides or {}).items():
        if key.startswith("text."):
            text[key[5:]] = value
        elif key.startswith("vision."):
            vision[key[7:]] = value
        elif key == "projection_dim":
            projection_dim = value
        else:
            raise ValueError(f"unknown override {key!r} (text.X, vision.X or projection_dim)")

    # As transformers >= 4.31 saves a CLIPModel: sub-configs carry their model_type and the
    # projection_dim; special token ids live in text_config.
    text_config = dict(text)
    text_config.update(model_type="clip_text_model", projection_dim=projection_dim,
                       attention_dropout=0.0, dropout=0.0, initializer_factor=1.0,
                       initializer_range=0.02, pad_token_id=1,
                       bos_token_id=0 if eos_token_id == 2 else 49406,
                       eos_token_id=eos_token_id)
    vision_config = dict(vision)
    vision_config.update(model_type="clip_vision_model", projection_dim=projection_dim,
                         attention_dropout=0.0, dropout=0.0, initializer_factor=1.0,
                         initializer_range=0.02)
    return {
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": projection_dim,
        "text_config": dict(sorted(text_config.items())),
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "transformers_version": "4.44.2",
        "vision_config": dict(sorted(vision_config.items())),
    }


def _preprocessor_json(image_size, legacy):
    if legacy:
        # As openai/clip-vit-base-patch16 ships it (CLIPFeatureExtractor era): plain integers.
        return {
            "crop_size": image_size, "do_center_crop": True, "do_normalize": True,
            "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": OPENAI_MEAN, "image_std": OPENAI_STD, "resample": 3,
            "size": image_size,
        }
    return {
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
        "do_rescale": True, "do_resize": True,
        "image_mean": OPENAI_MEAN, "image_processor_type": "CLIPImageProcessor",
        "image_std": OPENAI_STD, "resample": 3, "rescale_factor": 1 / 255,
        "size": {"shortest_edge": image_size},
    }


def make_checkpoint(out_dir, preset="tiny", seed=0, dtype="f32", eos_token_id=49407,
                    layer_norm_eps=None, hidden_act=None, image_size=None, patch_size=None,
                    position_ids=True, legacy_preprocessor=False, tokenizer_dir=None,
                    overrides=None):
    """Writes a checkpoint directory and returns its config (the dict written to config.json).

    overrides: {"text.hidden_size": 96, "vision.num_hidden_layers": 3, "projection_dim": 16...}.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {', '.join(sorted(PRESETS))}")
    st_dtype = ARG_DTYPES[dtype.lower()] if dtype.lower() in ARG_DTYPES else dtype.upper()
    if st_dtype not in ("F32", "F16", "BF16"):
        raise ValueError(f"dtype must be f32, f16 or bf16, not {dtype!r}")
    os.makedirs(out_dir, exist_ok=True)

    config = _config_json(preset, eos_token_id, layer_norm_eps, hidden_act, image_size,
                          patch_size, overrides, st_dtype)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    tensors = _make_weights(config, seed, st_dtype, position_ids)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors,
                      metadata={"format": "pt"})

    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(_preprocessor_json(config["vision_config"]["image_size"], legacy_preprocessor),
                  f, indent=2)
        f.write("\n")

    tokenizer_dir = tokenizer_dir or default_tokenizer_dir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out_dir, name))
    return config


def _parse_value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="f32", choices=sorted(ARG_DTYPES))
    ap.add_argument("--eos-token-id", type=int, default=49407,
                    help="49407 (current HF) or 2 (legacy configs: pool at argmax of the ids)")
    ap.add_argument("--layer-norm-eps", type=float)
    ap.add_argument("--hidden-act", choices=["quick_gelu", "gelu"])
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--patch-size", type=int)
    ap.add_argument("--no-position-ids", action="store_true",
                    help="omit the I64 position_ids buffers (recent transformers do not save them)")
    ap.add_argument("--legacy-preprocessor", action="store_true",
                    help="integer size/crop_size, as CLIPFeatureExtractor wrote them")
    ap.add_argument("--tokenizer-dir", help="dir with vocab.json + merges.txt "
                    "(default $CLIP_TOKENIZER_DIR or tests/data/clip-tokenizer)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field: text.X=V, vision.X=V or projection_dim=V")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = _parse_value(value)
    make_checkpoint(args.out_dir, preset=args.preset, seed=args.seed, dtype=args.dtype,
                    eos_token_id=args.eos_token_id, layer_norm_eps=args.layer_norm_eps,
                    hidden_act=args.hidden_act, image_size=args.image_size,
                    patch_size=args.patch_size, position_ids=not args.no_position_ids,
                    legacy_preprocessor=args.legacy_preprocessor,
                    tokenizer_dir=args.tokenizer_dir, overrides=overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
