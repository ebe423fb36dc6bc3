#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Independent numpy reference of HuggingFace transformers' CLIPModel forward pass.

Written from the semantics of transformers' models/clip/modeling_clip.py (CLIPTextTransformer,
CLIPVisionTransformer, CLIPModel.forward) and configuration_clip.py, NOT from our C engine: the
parity test compares the engine against this file. Everything is computed in float64 from the
checkpoint's stored values (f16/bf16 are widened exactly), so the reference's own rounding error
is negligible next to the engine's float32.

Deliberately naive where the C engine is clever: the text tower always runs the whole sequence it
is given (padding included) under an explicit causal mask, attention is computed head by head,
and the patch embedding is a reshape + matmul written from the definition of a stride-P conv.

Usage as a module:
    model = ClipReference.load(model_dir)
    text = model.text_embeds(ids)            # [n, projection_dim], not normalised
    image = model.image_embeds(pixels)       # [projection_dim], pixels [3, S, S]
    out = model.classify(pixels, ids)        # logits/probs as CLIPModel.logits_per_image

CLI (prints JSON; embeddings L2-normalised as clip-infer prints them):
    clip_reference.py MODEL_DIR embed-text --ids '[[49406, ..., 49407], ...]' [--pad]
    clip_reference.py MODEL_DIR embed-image --pixels FILE      (raw float32 LE [3, S, S])
    clip_reference.py MODEL_DIR classify --pixels FILE --ids '[[...], ...]'
    clip_reference.py MODEL_DIR selfcheck
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# CLIP BPE's end-of-text token: HF's tokenizer pads with it (pad_token = "<|endoftext|>").
CLIP_EOS_ID = 49407

# --------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, then the data section.
# Offsets in the header are relative to the start of the data section.

_DTYPES = {
    'F64': np.dtype('<f8'),
    'F32': np.dtype('<f4'),
    'F16': np.dtype('<f2'),
    'I64': np.dtype('<i8'),
    'I32': np.dtype('<i4'),
}


def read_safetensors(path):
    """Returns {name: ndarray}: F32/F16/BF16 widened exactly to float32 (kept at 4 bytes so a
    B/16 checkpoint fits comfortably; every computation below promotes to float64), F64 as
    float64, integers as int64."""
    with open(path, 'rb') as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f'{path}: too short for a safetensors header')
    (header_len,) = struct.unpack('<Q', blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError(f'{path}: header length {header_len} exceeds the file')
    header = json.loads(blob[8:8 + header_len].decode('utf-8'))
    data = memoryview(blob)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        shape = tuple(info['shape'])
        raw = data[begin:end]
        dtype = info['dtype']
        if dtype == 'BF16':
            # bfloat16 is the top half of an IEEE float32: widen by shifting into the high bits.
            half = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
            arr = half.view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(raw, dtype=_DTYPES[dtype])
            if arr.dtype.kind == 'i':
                arr = arr.astype(np.int64)
            else:
                arr = arr.astype(np.float64 if dtype == 'F64' else np.float32)
        else:
            raise ValueError(f'{path}: tensor {name}: unsupported dtype {dtype}')
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f'{path}: tensor {name}: {arr.size} elements for shape {shape}')
        tensors[name] = arr.reshape(shape)
    return tensors


# --------------------------------------------------------------------------------------------
# config.json with HF's defaults (configuration_clip.py: CLIPTextConfig, CLIPVisionConfig,
# CLIPConfig). text_config_dict / vision_config_dict (old checkpoints) override text_config /
# vision_config, as CLIPConfig.__init__ does.

TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048,
                     num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                     hidden_act='quick_gelu', layer_norm_eps=1e-5,
                     # CLIPTextConfig's default since transformers 4.31 (PR #24773); configs saved
                     # before it spell out eos_token_id 2, the legacy "pool at argmax" marker.
                     eos_token_id=49407)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, num_channels=3, image_size=224, patch_size=32,
                       hidden_act='quick_gelu', layer_norm_eps=1e-5)


def read_config(path):
    with open(path, encoding='utf-8') as f:
        raw = json.load(f)
    text = dict(TEXT_DEFAULTS)
    text.update(raw.get('text_config') or {})
    text.update(raw.get('text_config_dict') or {})
    vision = dict(VISION_DEFAULTS)
    vision.update(raw.get('vision_config') or {})
    vision.update(raw.get('vision_config_dict') or {})
    return {'text': text, 'vision': vision, 'projection_dim': raw.get('projection_dim', 512)}


# --------------------------------------------------------------------------------------------
# Building blocks, float64.

_erf = np.frompyfunc(math.erf, 1, 1)


def activation(name, x):
    if name == 'quick_gelu':
        # ACT2FN['quick_gelu'] = QuickGELUActivation: x * sigmoid(1.702 x)
        return x / (1.0 + np.exp(-1.702 * x))
    if name == 'gelu':
        # ACT2FN['gelu'] = GELUActivation: torch's exact gelu, 0.5 x (1 + erf(x / sqrt 2))
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    raise ValueError(f'unsupported hidden_act {name!r}')


def layer_norm(x, weight, bias, eps):
    # nn.LayerNorm over the last axis, biased variance.
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, weight, bias=None):
    # nn.Linear: weight is [out, in].
    y = np.asarray(x, dtype=np.float64) @ weight.T.astype(np.float64)
    return y if bias is None else y + bias


def softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def attention(x, p, n_heads, causal):
    """CLIPAttention (eager) on x [seq, hidden] for one sequence."""
    seq, hidden = x.shape
    head_dim = hidden // n_heads
    scale = head_dim ** -0.5
    q = linear(x, p['q_proj.weight'], p['q_proj.bias'])
    k = linear(x, p['k_proj.weight'], p['k_proj.bias'])
    v = linear(x, p['v_proj.weight'], p['v_proj.bias'])
    out = np.empty_like(x)
    # view(seq, heads, head_dim): head h is the contiguous slice [h*head_dim, (h+1)*head_dim).
    for h in range(n_heads):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        scores = (q[:, cols] @ k[:, cols].T) * scale
        if causal:
            # HF adds finfo.min above the diagonal; exp of it is exactly 0, as -inf gives here.
            scores = scores + np.triu(np.full((seq, seq), -np.inf), k=1)
        out[:, cols] = softmax(scores, axis=-1) @ v[:, cols]
    return linear(out, p['out_proj.weight'], p['out_proj.bias'])


def encoder_layer(x, p, cfg, causal):
    """CLIPEncoderLayer: pre-norm attention and MLP, each with a residual."""
    eps = cfg['layer_norm_eps']
    h = layer_norm(x, p['layer_norm1.weight'], p['layer_norm1.bias'], eps)
    x = x + attention(h, {k[len('self_attn.'):]: v for k, v in p.items()
                          if k.startswith('self_attn.')}, cfg['num_attention_heads'], causal)
    h = layer_norm(x, p['layer_norm2.weight'], p['layer_norm2.bias'], eps)
    h = linear(h, p['mlp.fc1.weight'], p['mlp.fc1.bias'])
    h = activation(cfg['hidden_act'], h)
    h = linear(h, p['mlp.fc2.weight'], p['mlp.fc2.bias'])
    return x + h


def patch_embed(pixels, weight, patch):
    """nn.Conv2d(C, hidden, kernel=patch, stride=patch, bias=False) then flatten(2).transpose:
    returns [grid*grid, hidden], patches in row-major (row, col) order. Trailing pixels that do
    not fill a whole patch are ignored, as a conv without padding does."""
    channels, height, width = pixels.shape
    grid_h, grid_w = height // patch, width // patch
    x = pixels[:, :grid_h * patch, :grid_w * patch]
    # [C, gh, P, gw, P] -> [gh, gw, C, P, P]: each row is one patch in the kernel's (c, y, x) order.
    x = x.reshape(channels, grid_h, patch, grid_w, patch).transpose(1, 3, 0, 2, 4)
    x = x.reshape(grid_h * grid_w, channels * patch * patch)
    return x @ weight.reshape(weight.shape[0], -1).T.astype(np.float64)


def patch_embed_loops(pixels, weight, patch):
    """The same convolution as explicit loops (self-check only: slow)."""
    channels, height, width = pixels.shape
    grid_h, grid_w = height // patch, width // patch
    out = np.zeros((grid_h * grid_w, weight.shape[0]))
    for o in range(weight.shape[0]):
        for gy in range(grid_h):
            for gx in range(grid_w):
                acc = 0.0
                for c in range(channels):
                    for ky in range(patch):
                        for kx in range(patch):
                            acc += (weight[o, c, ky, kx]
                                    * pixels[c, gy * patch + ky, gx * patch + kx])
                out[gy * grid_w + gx, o] = acc
    return out


def pooled_index(ids, eos_token_id):
    """CLIPTextTransformer's pooling position for one sequence (transformers 4.31+)."""
    ids = np.asarray(ids)
    if eos_token_id == 2:
        # Legacy configs: the EOS token has the highest id; first maximum (torch and numpy argmax
        # both return the first occurrence, which matters when padding repeats EOS).
        return int(np.argmax(ids))
    hits = np.nonzero(ids == eos_token_id)[0]
    # HF takes argmax of (ids == eos) and so pools at 0 when EOS is absent.
    return int(hits[0]) if hits.size else 0


# --------------------------------------------------------------------------------------------


class ClipReference:
    def __init__(self, config, tensors):
        self.config = config
        self.t = tensors
        self._check_shapes()

    @classmethod
    def load(cls, model_dir):
        config = read_config(os.path.join(model_dir, 'config.json'))
        tensors = read_safetensors(os.path.join(model_dir, 'model.safetensors'))
        return cls(config, tensors)

    def _tensor(self, name, shape):
        if name not in self.t:
            raise KeyError(f'missing tensor {name}')
        if tuple(self.t[name].shape) != tuple(shape):
            raise ValueError(f'tensor {name}: shape {self.t[name].shape}, expected {shape}')
        return self.t[name]

    def _layers(self, prefix, cfg):
        hidden, inter = cfg['hidden_size'], cfg['intermediate_size']
        shapes = {
            'layer_norm1.weight': (hidden,), 'layer_norm1.bias': (hidden,),
            'layer_norm2.weight': (hidden,), 'layer_norm2.bias': (hidden,),
            'mlp.fc1.weight': (inter, hidden), 'mlp.fc1.bias': (inter,),
            'mlp.fc2.weight': (hidden, inter), 'mlp.fc2.bias': (hidden,),
        }
        for proj in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            shapes[f'self_attn.{proj}.weight'] = (hidden, hidden)
            shapes[f'self_attn.{proj}.bias'] = (hidden,)
        return [{k: self._tensor(f'{prefix}.encoder.layers.{i}.{k}', s) for k, s in shapes.items()}
                for i in range(cfg['num_hidden_layers'])]

    def _check_shapes(self):
        tc, vc, proj = self.config['text'], self.config['vision'], self.config['projection_dim']
        for cfg in (tc, vc):
            if cfg['hidden_size'] % cfg['num_attention_heads']:
                raise ValueError('hidden_size not divisible by num_attention_heads')
        th, vh = tc['hidden_size'], vc['hidden_size']
        self.text_layers = self._layers('text_model', tc)
        self.vision_layers = self._layers('vision_model', vc)
        self._tensor('text_model.embeddings.token_embedding.weight', (tc['vocab_size'], th))
        self._tensor('text_model.embeddings.position_embedding.weight',
                     (tc['max_position_embeddings'], th))
        self._tensor('text_model.final_layer_norm.weight', (th,))
        self._tensor('text_model.final_layer_norm.bias', (th,))
        self._tensor('text_projection.weight', (proj, th))
        grid = vc['image_size'] // vc['patch_size']
        self._tensor('vision_model.embeddings.class_embedding', (vh,))
        self._tensor('vision_model.embeddings.patch_embedding.weight',
                     (vh, vc['num_channels'], vc['patch_size'], vc['patch_size']))
        self._tensor('vision_model.embeddings.position_embedding.weight', (grid * grid + 1, vh))
        for ln in ('pre_layrnorm', 'post_layernorm'):
            self._tensor(f'vision_model.{ln}.weight', (vh,))
            self._tensor(f'vision_model.{ln}.bias', (vh,))
        self._tensor('visual_projection.weight', (proj, vh))
        self._tensor('logit_scale', ())
        # position_ids is a non-persistent buffer in HF (arange); old checkpoints still carry it.
        # Our engine, like HF, uses arange: make sure a stored one says the same.
        for name in ('text_model.embeddings.position_ids', 'vision_model.embeddings.position_ids'):
            if name in self.t:
                pos = self.t[name].reshape(-1)
                if not np.array_equal(pos, np.arange(pos.size)):
                    raise ValueError(f'{name} is not arange: this reference assumes it is')

    # -- text tower ------------------------------------------------------------------------

    def text_hidden(self, ids):
        """CLIPTextTransformer up to final_layer_norm for one sequence: [len, hidden]."""
        cfg = self.config['text']
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0 or ids.size > cfg['max_position_embeddings']:
            raise ValueError(f'bad id sequence length {ids.size}')
        x = (self.t['text_model.embeddings.token_embedding.weight'][ids].astype(np.float64)
             + self.t['text_model.embeddings.position_embedding.weight'][:ids.size])
        for p in self.text_layers:
            x = encoder_layer(x, p, cfg, causal=True)
        return layer_norm(x, self.t['text_model.final_layer_norm.weight'],
                          self.t['text_model.final_layer_norm.bias'], cfg['layer_norm_eps'])

    def text_embeds(self, ids_list, pad_to=None, pad_id=CLIP_EOS_ID):
        """get_text_features: text_projection(pooled), NOT normalised. [n, projection_dim].
        pad_to pads every sequence with pad_id to that length first, as the HF tokenizer does
        with padding='max_length'."""
        out = []
        eos = self.config['text']['eos_token_id']
        for ids in ids_list:
            ids = list(ids)
            if pad_to is not None:
                ids = ids + [pad_id] * (pad_to - len(ids))
            hidden = self.text_hidden(ids)
            pooled = hidden[pooled_index(ids, eos)]
            out.append(linear(pooled, self.t['text_projection.weight']))
        return np.array(out)

    # -- vision tower ----------------------------------------------------------------------

    def image_embeds(self, pixels):
        """get_image_features for one image [C, S, S]: [projection_dim], NOT normalised."""
        cfg = self.config['vision']
        size = cfg['image_size']
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.shape != (cfg['num_channels'], size, size):
            raise ValueError(f'pixels shape {pixels.shape}, expected '
                             f'{(cfg["num_channels"], size, size)}')
        patches = patch_embed(pixels, self.t['vision_model.embeddings.patch_embedding.weight'],
                              cfg['patch_size'])
        x = np.concatenate([self.t['vision_model.embeddings.class_embedding'][None, :]
                            .astype(np.float64), patches])
        x = x + self.t['vision_model.embeddings.position_embedding.weight']
        eps = cfg['layer_norm_eps']
        x = layer_norm(x, self.t['vision_model.pre_layrnorm.weight'],
                       self.t['vision_model.pre_layrnorm.bias'], eps)
        for p in self.vision_layers:
            x = encoder_layer(x, p, cfg, causal=False)
        pooled = layer_norm(x[0], self.t['vision_model.post_layernorm.weight'],
                            self.t['vision_model.post_layernorm.bias'], eps)
        return linear(pooled, self.t['visual_projection.weight'])

    # -- CLIPModel head --------------------------------------------------------------------

    @property
    def logit_scale_exp(self):
        return float(np.exp(np.float64(self.t['logit_scale'])))

    def classify(self, pixels, ids_list):
        """CLIPModel.forward for one image: logits_per_image[0] and its softmax."""
        image = normalise(self.image_embeds(pixels))
        texts = normalise(self.text_embeds(ids_list))
        logits = self.logit_scale_exp * (texts @ image)
        return {'logits': logits, 'probs': softmax(logits)}


def self_check(model, seed=0):
    """Checks the reference against slower restatements of the same definitions; returns a list
    of (name, max abs diff). Raises AssertionError on a mismatch."""
    rng = np.random.default_rng(seed)
    results = []

    def check(name, got, want, tol):
        diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))
        results.append((name, diff))
        assert diff <= tol, f'self-check {name}: max abs diff {diff:g} > {tol:g}'

    # Activations and layer norm against values derivable by hand.
    check('gelu', activation('gelu', np.array([-1.0, 0.0, 1.0])),
          [-0.15865525393145707, 0.0, 0.8413447460685429], 1e-15)
    check('quick_gelu', activation('quick_gelu', np.array([1.0, -2.0])),
          [1.0 / (1.0 + math.exp(-1.702)), -2.0 / (1.0 + math.exp(3.404))], 1e-15)
    x = rng.standard_normal((5, 16)) * 3 + 1
    y = layer_norm(x, np.ones(16), np.zeros(16), 0.0)
    check('layer_norm mean', y.mean(axis=-1), 0.0, 1e-12)
    check('layer_norm var', (y ** 2).mean(axis=-1), 1.0, 1e-12)

    # The patch embedding against an explicit convolution loop, on an image whose side is not a
    # multiple of the patch (the trailing pixels must be ignored).
    vc = model.config['vision']
    patch = vc['patch_size']
    w = rng.standard_normal((6, vc['num_channels'], patch, patch))
    side = 2 * patch + patch // 2 + 1
    px = rng.standard_normal((vc['num_channels'], side, side))
    check('patch_embed vs loops', patch_embed(px, w, patch), patch_embed_loops(px, w, patch),
          1e-10)

    # Attention head by head against one einsum over the [seq, heads, head_dim] view.
    tc = model.config['text']
    p = {k[len('self_attn.'):]: v for k, v in model.text_layers[0].items()
         if k.startswith('self_attn.')}
    n_heads, hidden = tc['num_attention_heads'], tc['hidden_size']
    hd = hidden // n_heads
    x = rng.standard_normal((7, hidden))
    q = linear(x, p['q_proj.weight'], p['q_proj.bias']).reshape(7, n_heads, hd)
    k = linear(x, p['k_proj.weight'], p['k_proj.bias']).reshape(7, n_heads, hd)
    v = linear(x, p['v_proj.weight'], p['v_proj.bias']).reshape(7, n_heads, hd)
    s = np.einsum('qhd,khd->hqk', q, k) / math.sqrt(hd)
    s = np.where(np.tril(np.ones((7, 7), dtype=bool))[None], s, -1e300)
    o = np.einsum('hqk,khd->qhd', softmax(s), v).reshape(7, hidden)
    check('causal attention vs einsum', attention(x, p, n_heads, True),
          linear(o, p['out_proj.weight'], p['out_proj.bias']), 1e-10)

    # The causal mask: row i of the full sequence equals the last row of prefix i computed alone.
    ids = [49406] + list(rng.integers(300, 40000, size=6)) + [CLIP_EOS_ID]
    full = model.text_hidden(ids)
    prefix_last = np.array([model.text_hidden(ids[:i + 1])[-1] for i in range(len(ids))])
    check('causal mask vs prefixes', full, prefix_last, 1e-10)

    # Padding to the full context with EOS (as HF's tokenizer pads) must not move the result.
    ctx = tc['max_position_embeddings']
    check('padding invariance', model.text_embeds([ids], pad_to=ctx), model.text_embeds([ids]),
          1e-10)
    return results


def normalise(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt((x * x).sum(axis=-1, keepdims=True))


def read_pixels(path, size, channels=3):
    data = np.fromfile(path, dtype='<f4')
    if data.size != channels * size * size:
        raise ValueError(f'{path}: {data.size} floats, expected {channels}x{size}x{size}')
    return data.reshape(channels, size, size).astype(np.float64)


def main(argv=None):
    ap = argparse.ArgumentParser(description='numpy reference of HF CLIPModel')
    ap.add_argument('model_dir')
    sub = ap.add_subparsers(dest='command', required=True)
    p = sub.add_parser('embed-text')
    p.add_argument('--ids', required=True, help='JSON list of id lists')
    p.add_argument('--pad', action='store_true',
                   help='pad with EOS to max_position_embeddings first (must not change anything)')
    p = sub.add_parser('embed-image')
    p.add_argument('--pixels', required=True, help='raw float32 LE [3, S, S]')
    p = sub.add_parser('classify')
    p.add_argument('--pixels', required=True)
    p.add_argument('--ids', required=True)
    sub.add_parser('selfcheck', help='check the reference against slower restatements')
    args = ap.parse_args(argv)

    model = ClipReference.load(args.model_dir)
    size = model.config['vision']['image_size']
    if args.command == 'embed-text':
        pad = model.config['text']['max_position_embeddings'] if args.pad else None
        emb = normalise(model.text_embeds(json.loads(args.ids), pad_to=pad))
        out = {'embeddings': emb.tolist()}
    elif args.command == 'embed-image':
        emb = normalise(model.image_embeds(read_pixels(args.pixels, size)))
        out = {'embedding': emb.tolist()}
    elif args.command == 'selfcheck':
        out = {'selfcheck': {name: diff for name, diff in self_check(model)}}
    else:
        res = model.classify(read_pixels(args.pixels, size), json.loads(args.ids))
        out = {'logits': res['logits'].tolist(), 'probs': res['probs'].tolist()}
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
