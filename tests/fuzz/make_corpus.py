#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the fuzz targets' seed corpora and the mini model they load, all in real layouts.

    /usr/bin/python3 tests/fuzz/make_corpus.py        (rewrites tests/fuzz/model and corpus/)

Deterministic (fixed seeds), so rerunning it changes nothing unless this script or
tests/reference/make_checkpoint.py changed. Everything stays small (libFuzzer mutates whole
files, and the repository carries them):

- model/: a mini CLIP checkpoint's config.json, preprocessor_config.json and a mini tokenizer
  (OpenAI's real vocabulary cut to its 256 bytes, 256 end-of-word bytes, the first MERGES merges
  and the two special tokens, ids as in the real file). fuzz-safetensors loads every input as the
  model.safetensors of this directory and runs both towers on what loads.
- corpus/safetensors/: that mini model's model.safetensors in f32, f16 (without position_ids)
  and bf16 (without __metadata__), laid out as make_checkpoint (the safetensors library's
  layout) writes them.
- corpus/config/: config.json NUL preprocessor_config.json, as make_checkpoint writes them for
  every preset (tiny, B/32, B/16, L/14), legacy and current preprocessor layouts, legacy EOS.
- corpus/tokenizer/: vocab.json NUL merges.txt NUL text, with the mini tokenizer.
- corpus/tokenize/: texts for the real tokenizer (tests/data/clip-tokenizer).
- corpus/image/: PNG (every colour type and bit depth, interlaced or not), JPEG (baseline,
  progressive, grey, 4:2:0, CMYK), PPM and PGM; a few pixels each.
"""
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, 'reference'))
import make_checkpoint as mk  # noqa: E402

TOKENIZER_DIR = os.path.join(TESTS, 'data', 'clip-tokenizer')
MERGES = 100

# The mini model: every tensor of CLIPModel, two layers a tower, sizes that keep a file ~20 kB.
MINI = {
    'text.hidden_size': 8, 'text.intermediate_size': 16, 'text.num_hidden_layers': 2,
    'text.num_attention_heads': 2, 'text.max_position_embeddings': 16,
    'vision.hidden_size': 8, 'vision.intermediate_size': 16, 'vision.num_hidden_layers': 2,
    'vision.num_attention_heads': 2, 'vision.image_size': 16, 'vision.patch_size': 8,
    'projection_dim': 8,
}


def mini_tokenizer(out_dir):
    """The real vocabulary cut to bytes, end-of-word bytes, MERGES merges and the specials."""
    vocab = json.load(open(os.path.join(TOKENIZER_DIR, 'vocab.json'), encoding='utf-8'))
    lines = open(os.path.join(TOKENIZER_DIR, 'merges.txt'), encoding='utf-8').read().split('\n')
    merges = lines[1:1 + MERGES]
    keep = 512 + MERGES
    mini = {t: i for t, i in vocab.items() if i < keep}
    for m in merges:                       # each merge's parts and result are kept tokens
        a, b = m.split(' ')
        assert a in mini and b in mini and a + b in mini, m
    mini['<|startoftext|>'] = keep
    mini['<|endoftext|>'] = keep + 1
    os.makedirs(out_dir, exist_ok=True)
    vocab_text = json.dumps(dict(sorted(mini.items(), key=lambda kv: kv[1])),
                            ensure_ascii=False, separators=(',', ':'))
    merges_text = '\n'.join([lines[0]] + merges) + '\n'
    with open(os.path.join(out_dir, 'vocab.json'), 'w', encoding='utf-8') as f:
        f.write(vocab_text)
    with open(os.path.join(out_dir, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write(merges_text)
    return vocab_text.encode(), merges_text.encode(), keep + 2


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def checkpoint(tmp, name, **kw):
    d = os.path.join(tmp, name)
    mk.make_checkpoint(d, **kw)
    return d


def read(path):
    with open(path, 'rb') as f:
        return f.read()


# --- images --------------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png(width, height, color_type, bit_depth, samples, interlace=False, palette=None, trns=None):
    """A PNG from rows of samples (numpy, [h, w * channels]), any colour type, depth, Adam7."""
    def pack_rows(a):
        rows = []
        for row in a:
            if bit_depth == 16:
                raw = row.astype('>u2').tobytes()
            elif bit_depth == 8:
                raw = row.astype(np.uint8).tobytes()
            else:
                bits = ''.join(format(int(v), f'0{bit_depth}b') for v in row)
                bits += '0' * (-len(bits) % 8)
                raw = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            rows.append(b'\x00' + raw)       # filter type 0 (None)
        return b''.join(rows)

    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    pixels = samples.reshape(height, width, channels)
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b''
        for x0, y0, dx, dy in passes:
            sub = pixels[y0::dy, x0::dx]
            if sub.size:
                raw += pack_rows(sub.reshape(sub.shape[0], -1))
    else:
        raw = pack_rows(pixels.reshape(height, -1))
    out = b'\x89PNG\r\n\x1a\n'
    out += png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0,
                                          1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b'PLTE', bytes(palette))
    if trns is not None:
        out += png_chunk(b'tRNS', bytes(trns))
    out += png_chunk(b'IDAT', zlib.compress(raw, 9))
    return out + png_chunk(b'IEND', b'')


def images(rng):
    out = {}
    for color_type, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)),
                               (4, (8, 16)), (6, (8, 16))):
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
        for depth in depths:
            for interlace in (False, True):
                w, h = (5, 3) if not interlace else (9, 9)
                top = (1 << depth) - 1
                if color_type == 3:
                    top = min(top, 5)
                samples = rng.integers(0, top + 1, size=h * w * channels)
                palette = trns = None
                if color_type == 3:
                    palette = rng.integers(0, 256, size=6 * 3).tolist()
                    trns = [0, 128]
                name = f'png-ct{color_type}-{depth}bit{"-adam7" if interlace else ""}.png'
                out[name] = png(w, h, color_type, depth, samples, interlace, palette, trns)
    # odd sizes: the row pointers sit after a pixel block of any length (issue 9's UBSan report)
    out['png-rgb-7x1.png'] = png(7, 1, 2, 8, rng.integers(0, 256, size=21))
    out['png-grey-1x13.png'] = png(1, 13, 0, 8, rng.integers(0, 256, size=13))

    picture = Image.fromarray(rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8), 'RGB')
    for name, img, kw in (
            ('jpeg-baseline.jpg', picture, dict(quality=90)),
            ('jpeg-420.jpg', picture, dict(quality=75, subsampling=2)),
            ('jpeg-444-optimized.jpg', picture, dict(quality=95, subsampling=0, optimize=True)),
            ('jpeg-progressive.jpg', picture, dict(quality=80, progressive=True)),
            ('jpeg-grey.jpg', picture.convert('L'), dict(quality=85)),
            ('jpeg-cmyk.jpg', picture.convert('CMYK'), dict(quality=85)),
            ('jpeg-restart.jpg', picture, dict(quality=85, restart_marker_blocks=1))):
        buf = io.BytesIO()
        try:
            img.save(buf, 'JPEG', **kw)
        except TypeError:                   # an older Pillow without restart markers
            continue
        out[name] = buf.getvalue()

    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    out['ppm-p6.ppm'] = b'P6\n6 4\n255\n' + rgb.tobytes()
    out['ppm-p6-comment.ppm'] = b'P6 # a comment\n6\t4 255 ' + rgb.tobytes()
    out['pgm-p5.pgm'] = b'P5\n3 5\n255\n' + rng.integers(0, 256, size=15, dtype=np.uint8).tobytes()
    return out


# --- texts ---------------------------------------------------------------------------------------

TEXTS = {
    'prompt': 'a photo of a cat.',
    'labels': 'A Photo of a DOG, playing frisbee!!',
    'contractions': "it's what we'd've said: they're 'quoted' don't",
    'numbers': 'pi is 3.14159, 1,000,000 and 2026-11-28',
    'whitespace': '  \t lots   of\n\nwhite  space \r\n ',
    'accents': 'Crème brûlée à la café, naïve façade, Ångström',
    'cjk': '一张猫的照片 写真 고양이 사진',
    'emoji': 'a 🐱 and a 🐶 👨‍👩‍👧 on a 🚲',
    'special': '<|startoftext|>hello<|endoftext|> world <|endoftext|>',
    'html': '&amp; &lt;b&gt; bold &quot;',
    'long': ' '.join(['the quick brown fox jumps over the lazy dog'] * 12),
    'symbols': '$100 #hashtag @user ~tilde^ (brackets) [x] {y} a|b',
    'invalid-utf8': b'caf\xc3 \xff\xfe broken'.decode('latin-1'),
    'empty': '',
}


def main():
    rng = np.random.default_rng(20261128)
    model_dir = os.path.join(HERE, 'model')
    corpus = os.path.join(HERE, 'corpus')
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    vocab_text, merges_text, vocab_size = mini_tokenizer(model_dir)
    eos = vocab_size - 1
    mini = dict(MINI, **{'text.vocab_size': vocab_size})

    with tempfile.TemporaryDirectory() as tmp:
        # the mini model, its files in model/ and its weights in every layout as seeds
        for i, (dtype, position_ids) in enumerate((('f32', True), ('f16', False),
                                                   ('bf16', True))):
            d = checkpoint(tmp, f'mini-{i}', preset='tiny', seed=i, dtype=dtype,
                           eos_token_id=eos, position_ids=position_ids, overrides=mini,
                           tokenizer_dir=model_dir)
            suffix = '' if position_ids else '-no-position-ids'
            write(os.path.join(corpus, 'safetensors', f'mini-{dtype}{suffix}'),
                  read(os.path.join(d, 'model.safetensors')))
            if i == 0:
                for name in ('config.json', 'preprocessor_config.json'):
                    shutil.copyfile(os.path.join(d, name), os.path.join(model_dir, name))
        # the bf16 one without __metadata__ (the header's first entry is then a tensor)
        path = os.path.join(corpus, 'safetensors', 'mini-bf16')
        st = read(path)
        n = struct.unpack('<Q', st[:8])[0]
        header = json.loads(st[8:8 + n])
        del header['__metadata__']
        text = json.dumps(header, separators=(',', ':')).encode()
        text += b' ' * (-len(text) % 8)
        os.unlink(path)
        write(path + '-no-metadata', struct.pack('<Q', len(text)) + text + st[8 + n:])

        # config.json NUL preprocessor_config.json, as each preset writes them
        for preset, kw in (('tiny', {}), ('tiny-gelu', {}), ('b32', {}), ('b16', {}),
                           ('l14', {}), ('b16', dict(legacy_preprocessor=True)),
                           ('tiny', dict(eos_token_id=2)),
                           ('tiny', dict(overrides=mini, eos_token_id=eos))):
            d = os.path.join(tmp, 'config')
            config = mk._config_json(preset, kw.get('eos_token_id', 49407), None, None, None,
                                     None, kw.get('overrides'), 'F32')
            pre = mk._preprocessor_json(config['vision_config']['image_size'],
                                        kw.get('legacy_preprocessor', False))
            name = preset + ('-legacy-preprocessor' if kw.get('legacy_preprocessor') else '') \
                + ('-eos2' if kw.get('eos_token_id') == 2 else '') \
                + ('-mini' if kw.get('overrides') else '')
            write(os.path.join(corpus, 'config', name),
                  json.dumps(config, indent=2).encode() + b'\0' + json.dumps(pre, indent=2).encode())
        # transformers < 4.27: the *_config_dict forms next to the plain ones
        config = mk._config_json('tiny', 49407, None, None, None, None, None, 'F32')
        config['text_config_dict'] = {'hidden_size': 64, 'num_attention_heads': 4}
        config['vision_config_dict'] = {'image_size': 32, 'patch_size': 8}
        write(os.path.join(corpus, 'config', 'tiny-config-dict'), json.dumps(config).encode())

    # the tokenizer files and a text
    for name in ('prompt', 'accents', 'emoji', 'special'):
        write(os.path.join(corpus, 'tokenizer', name),
              vocab_text + b'\0' + merges_text + b'\0' + TEXTS[name].encode('utf-8'))
    for name, text in TEXTS.items():
        data = text.encode('latin-1') if name == 'invalid-utf8' else text.encode('utf-8')
        write(os.path.join(corpus, 'tokenize', name), data)

    # regression cases of findings (regressions/ also keeps crashers libFuzzer wrote itself)
    regressions = os.path.join(HERE, 'regressions')
    st = read(os.path.join(corpus, 'safetensors', 'mini-f16-no-position-ids'))
    n = struct.unpack('<Q', st[:8])[0]
    header = json.loads(st[8:8 + n])
    # NaN weights make NaN activations: the softmax's exp converted NaN to int (UBSan,
    # src/ops.c fast_expf); a damaged model that loads must run
    begin, end = header['vision_model.encoder.layers.0.self_attn.q_proj.weight']['data_offsets']
    damaged = bytearray(st)
    damaged[8 + n + begin:8 + n + end] = b'\x00\x7e' * ((end - begin) // 2)
    write(os.path.join(regressions, 'safetensors', 'nan-attention-scores'), bytes(damaged))

    for name, data in images(rng).items():
        write(os.path.join(corpus, 'image', name), data)

    total = sum(os.path.getsize(os.path.join(r, f)) for top in (corpus, model_dir)
                for r, _, fs in os.walk(top) for f in fs)
    print(f'corpora and mini model written: {total} bytes')


if __name__ == '__main__':
    main()
