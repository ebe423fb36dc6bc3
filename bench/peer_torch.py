#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A peer for clip-bench: the same CLIP image tower in PyTorch (Debian's python3-torch), on the
same checkpoint, timed the same way (median ms/image of N after warm-up, batch 1, fp32).

    /usr/bin/python3 bench/peer_torch.py MODEL_DIR [--threads 1,2] [--iterations 10]

Prints one JSON object. It writes the tower with torch's own ops (F.linear, F.layer_norm, matmul,
softmax), as a PyTorch user without transformers would; torch.set_num_threads(n) sets its
intra-op threads (PyTorch 1.13 on Debian calls OpenBLAS for GEMMs)."""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from make_checkpoint import read_safetensors  # noqa: E402


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    tensors, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    weights = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
               for k, v in tensors.items() if k.startswith("vision_model") or k == "visual_projection.weight"}
    return config["vision_config"], weights


def vision_forward(cfg, w, pixels):
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    patch, eps = cfg["patch_size"], cfg.get("layer_norm_eps", 1e-5)
    head_dim = hidden // heads
    x = F.conv2d(pixels, w["vision_model.embeddings.patch_embedding.weight"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(1, 1, -1)
    x = torch.cat([cls, x], dim=1) + w["vision_model.embeddings.position_embedding.weight"]
    x = F.layer_norm(x, (hidden,), w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], eps)
    n = x.shape[1]
    for i in range(cfg["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        h = F.layer_norm(x, (hidden,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], eps)
        q = F.linear(h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.q_proj.bias"]) * head_dim ** -0.5
        k = F.linear(h, w[p + "self_attn.k_proj.weight"], w[p + "self_attn.k_proj.bias"])
        v = F.linear(h, w[p + "self_attn.v_proj.weight"], w[p + "self_attn.v_proj.bias"])
        q, k, v = (t.view(1, n, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        a = a.transpose(1, 2).reshape(1, n, hidden)
        x = x + F.linear(a, w[p + "self_attn.out_proj.weight"], w[p + "self_attn.out_proj.bias"])
        h = F.layer_norm(x, (hidden,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], eps)
        h = F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    pooled = F.layer_norm(x[:, 0], (hidden,), w["vision_model.post_layernorm.weight"], w["vision_model.post_layernorm.bias"], eps)
    e = F.linear(pooled, w["visual_projection.weight"])
    return e / e.norm(dim=-1, keepdim=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()
    cfg, w = load(args.model_dir)
    s = cfg["image_size"]
    pixels = torch.from_numpy(np.random.default_rng(1).uniform(-1.8, 2.1, (1, 3, s, s)).astype(np.float32))
    runs = []
    with torch.inference_mode():
        for n in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(n)
            times = []
            for it in range(args.iterations + 2):
                t0 = time.perf_counter()
                vision_forward(cfg, w, pixels)
                if it >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
            runs.append({"threads": n, "vision_ms": round(statistics.median(times), 1)})
    print(json.dumps({"peer": f"pytorch {torch.__version__}", "runs": runs}))


if __name__ == "__main__":
    main()
