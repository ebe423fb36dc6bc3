#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Exports the CLIP image tower of a checkpoint (HF CLIPModel layout, e.g. the B/16-shaped random
one bench/run.sh generates) to ONNX, for the ONNX Runtime peer (bench/ort-peer/bench_ort.js).

    /usr/bin/python3 bench/ort-peer/export_onnx.py MODEL_DIR OUT_DIR

Needs Debian's python3-torch (1.13: torch.onnx.export, opset 14, no `onnx` package needed).
The tower is an nn.Module with HF's CLIPVisionTransformer structure (separate q/k/v Linear
layers, eager attention: matmul -> softmax -> matmul, quick_gelu) + visual_projection, loaded with
the checkpoint's own weights, so ORT runs the same weights as clip-bench and bench/peer_torch.py.
Output: the projected embedding, L2-normalised (as clip_embed_image returns it).

Writes to OUT_DIR: clip_vision.onnx, vision_in_b1.f32 (1x3xSxS input), vision_out_b1.f32 (the
PyTorch output for it, which bench_ort.js checks ORT's against), vision.json (image size, GFLOP
per image counted as clip-bench's vision_gflop, the checkpoint exported). Prints one JSON line on
stderr, with the check of this module against bench/peer_torch.py's forward pass on the same
weights (max_abs_diff_vs_peer_torch)."""
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "reference"))
import peer_torch  # noqa: E402  (bench/peer_torch.py: load() and the reference forward pass)

OPSET = 14


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.scale = self.hd ** -0.5
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        q = self.q_proj(x) * self.scale
        k, v = self.k_proj(x), self.v_proj(x)
        q, k, v = (t.view(B, T, self.heads, self.hd).transpose(1, 2) for t in (q, k, v))
        o = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, dim, inter):
        super().__init__()
        self.fc1 = nn.Linear(dim, inter)
        self.fc2 = nn.Linear(inter, dim)

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, inter, eps):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, inter)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionTower(nn.Module):
    """HF CLIPVisionTransformer + visual_projection; parameter names are the checkpoint's with
    the "vision_model." / "embeddings." / "encoder." prefixes dropped."""

    def __init__(self, cfg, proj):
        super().__init__()
        dim, patch = cfg["hidden_size"], cfg["patch_size"]
        eps = cfg.get("layer_norm_eps", 1e-5)
        n = (cfg["image_size"] // patch) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.zeros(dim))
        self.patch_embedding = nn.Conv2d(cfg.get("num_channels", 3), dim, patch, stride=patch, bias=False)
        self.position_embedding = nn.Embedding(n, dim)
        self.register_buffer("position_ids", torch.arange(n).unsqueeze(0), persistent=False)
        self.pre_layrnorm = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(EncoderLayer(dim, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))
        self.post_layernorm = nn.LayerNorm(dim, eps=eps)
        self.visual_projection = nn.Linear(dim, proj, bias=False)

    def forward(self, pixel_values):
        B = pixel_values.shape[0]
        p = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(B, 1, -1), p], dim=1)
        x = self.pre_layrnorm(x + self.position_embedding(self.position_ids))
        for layer in self.layers:
            x = layer(x)
        e = self.visual_projection(self.post_layernorm(x[:, 0, :]))
        return F.normalize(e, dim=-1)


def vision_gflop(cfg):
    """clip-bench's vision_gflop(): patch embedding + the encoder layers' GEMMs."""
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    np_ = (cfg["image_size"] // cfg["patch_size"]) ** 2
    n = np_ + 1
    patch_dim = cfg.get("num_channels", 3) * cfg["patch_size"] ** 2
    per_layer = 2 * n * hidden * hidden * 4 + 2 * n * hidden * inter * 2 + 2 * n * n * hidden * 2
    return (2 * np_ * patch_dim * hidden + cfg["num_hidden_layers"] * per_layer) / 1e9


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model_dir, out = sys.argv[1], sys.argv[2]
    cfg, w = peer_torch.load(model_dir)
    proj = w["visual_projection.weight"].shape[0]
    tower = VisionTower(cfg, proj).eval()
    state = {}
    for k, v in w.items():
        name = k.replace("vision_model.", "").replace("embeddings.", "").replace("encoder.", "")
        if name != "position_ids":
            state[name] = v
    tower.load_state_dict(state, strict=True)  # every tensor of the tower, and nothing else

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    s = cfg["image_size"]
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1.8, 2.1, (1, 3, s, s)).astype(np.float32))
    with torch.inference_mode():
        y = tower(x)
        ref = peer_torch.vision_forward(cfg, w, x)
    os.makedirs(out, exist_ok=True)
    # torch 1.13 warns, harmlessly, about shape inference for prim::Constant on every export
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
    x.numpy().tofile(os.path.join(out, "vision_in_b1.f32"))
    y.numpy().tofile(os.path.join(out, "vision_out_b1.f32"))
    path = os.path.join(out, "clip_vision.onnx")
    torch.onnx.export(tower, (x,), path + ".part", opset_version=OPSET,
                      input_names=["pixel_values"], output_names=["image_embeds"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
                      do_constant_folding=True)
    os.replace(path + ".part", path)
    with open(os.path.join(out, "vision.json"), "w") as f:
        json.dump({"image_size": s, "vision_gflop": vision_gflop(cfg),
                   "weights": os.path.abspath(model_dir)}, f)
    print(json.dumps({"exported": path, "torch": torch.__version__, "opset": OPSET,
                      "bytes": os.path.getsize(path), "weights": os.path.abspath(model_dir),
                      "max_abs_diff_vs_peer_torch": float((y - ref).abs().max())}), file=sys.stderr)


if __name__ == "__main__":
    main()
