#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Parity: our C engine (through the clip-infer tool) against the numpy reference of HF's
CLIPModel in tests/reference/clip_reference.py, on random-weight checkpoints in HF layout.

For each checkpoint configuration (activation, layer_norm_eps, eos_token_id convention, stored
position_ids, f32/f16/bf16, odd image/patch sizes, head counts), with --threads 1 and 2:
  - text:  ids from `clip-infer tokenize`, reference embeddings from those ids (also padded with
           EOS to the full context, as HF's tokenizer pads: padding must not change them), against
           `clip-infer embed-text` (L2-normalised): max abs diff <= 5e-6;
  - image: a random [3, S, S] float32 tensor, reference against `clip-infer embed-image`:
           max abs diff <= 5e-6;
  - score: `clip-infer classify` logits within 1e-3 of CLIPModel.logits_per_image, probs the
           softmax of those logits and close to the reference's.

    test_parity.py           tiny configurations (meson suites engine, python)
    test_parity.py --slow    the B/16 architecture (meson suite slow)

meson runs the tiny cases once with the engine's own choice of kernels and once per forced
path (CLIPCLASSIFY_ISA=avx512, avx2, blas); a path this CPU cannot run is skipped (exit 77).

Environment (set by tests/meson.build): CLIP_INFER, CLIP_REFERENCE_DIR, CLIP_TOKENIZER_DIR,
CLIP_TEST_BUILD_DIR. Exits non-zero on any failure, after running every case.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.environ.get('CLIP_REFERENCE_DIR',
                                  os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               'reference')))
import clip_reference as ref  # noqa: E402
import make_checkpoint as mk  # noqa: E402

EMBED_TOL = 5e-6
LOGIT_TOL = 1e-3
PROB_TOL = 1e-3        # probs follow from logits: |dp| <= |dlogit| / 2 per softmax's Lipschitz
SOFTMAX_TOL = 1e-6     # the tool's probs against the softmax of its own logits
PAD_TOL = 1e-12        # reference, padded vs unpadded: same arithmetic on the same rows

PROMPTS = [
    'a photo of a cat.',
    'A DOG, jumping!!',
    "it's 3:00 o'clock",
    'naïve café 🍕 with ünïcödé',
    'x',
    # Longer than the 77-token context: the tokenizer truncates keeping EOS last.
    ' '.join(['a very long prompt about the many colourful birds of the tropical forest'] * 12),
]

# (name, make_checkpoint kwargs). Every knob the engine reads from config.json or the file
# format is flipped at least once.
TINY_CASES = [
    ('tiny-f32', dict(preset='tiny', seed=11, dtype='f32', eos_token_id=49407,
                      layer_norm_eps=1e-5, position_ids=True)),
    ('gelu-f16-eps1e-6-legacy-eos', dict(preset='tiny-gelu', seed=12, dtype='f16',
                                         eos_token_id=2, layer_norm_eps=1e-6,
                                         position_ids=False)),
    ('bf16-odd-image-heads', dict(preset='tiny', seed=13, dtype='bf16', eos_token_id=2,
                                  layer_norm_eps=1e-5, position_ids=True, image_size=30,
                                  patch_size=7,
                                  overrides={'vision.num_attention_heads': 3,
                                             'text.num_attention_heads': 2,
                                             'text.num_hidden_layers': 3,
                                             'projection_dim': 24})),
    ('gelu-f32-eps1e-6-shapes', dict(preset='tiny-gelu', seed=14, dtype='f32',
                                     eos_token_id=49407, layer_norm_eps=1e-6,
                                     position_ids=False, image_size=36, patch_size=12,
                                     overrides={'text.hidden_size': 40,
                                                'text.num_attention_heads': 5,
                                                'text.intermediate_size': 88,
                                                'vision.hidden_size': 36,
                                                'vision.num_attention_heads': 6,
                                                'vision.num_hidden_layers': 1,
                                                'projection_dim': 20})),
    # eps 1e-5 vs 1e-6 moves the embeddings by only ~5e-6: a tower reading the wrong eps (or the
    # other tower's) would slip through the cases above. Large, distinct eps per tower make it
    # show; a short context checks truncation and the position table against config.json.
    ('f16-large-eps-short-context', dict(preset='tiny', seed=15, dtype='f16',
                                         eos_token_id=49407, position_ids=False,
                                         overrides={'text.layer_norm_eps': 0.05,
                                                    'vision.layer_norm_eps': 0.02,
                                                    'text.max_position_embeddings': 40})),
]

TEMPLATE_LABELS = ['cat', 'dog', 'cat in a box', 'person riding a horse', 'empty room', 'x']

SLOW_CASES = [
    ('b16-f32', dict(preset='b16', seed=21, dtype='f32', eos_token_id=49407,
                     position_ids=False)),
]
SLOW_PROMPTS = ['a photo of a cat.', 'a photo of a dog.', 'a diagram', 'an oil painting of a '
                'lighthouse at night']

THREADS = (1, 2)


class Failures:
    def __init__(self):
        self.items = []

    def check(self, ok, message):
        print(('ok     ' if ok else 'FAIL   ') + message, flush=True)
        if not ok:
            self.items.append(message)
        return ok


def run_tool(infer, args):
    proc = subprocess.run([infer] + args, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f'{os.path.basename(infer)} {" ".join(args[:3])}... exited '
                           f'{proc.returncode}: {proc.stderr.strip()}')
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f'{os.path.basename(infer)} {args[0]}: output is not JSON ({e}): '
                           f'{proc.stdout[:200]!r}') from None


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float('inf')
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def worst(a, b):
    """Where the largest difference is, for a failure message."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return f'shape {a.shape} vs reference {b.shape}'
    i = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
    return f'at {tuple(int(j) for j in i)}: {a[i]:.9g} vs reference {b[i]:.9g}'


def check_reader(fails, name, model_dir, model):
    """Our reference's safetensors reader against make_checkpoint's (written separately).
    BF16 is compared as stored bit patterns: the widened float32 must keep them in its top half
    and zeros below."""
    theirs, _ = mk.read_safetensors(os.path.join(model_dir, 'model.safetensors'), raw=True)

    def same(a, mine):
        if a.dtype == np.uint16:
            bits = np.array(mine, dtype=np.float32).reshape(-1).view(np.uint32)
            return np.array_equal(bits >> 16, a.reshape(-1)) and not np.any(bits & 0xFFFF)
        return np.array_equal(a.astype(np.int64 if a.dtype.kind == 'i' else np.float64), mine)

    same = set(theirs) == set(model.t) and all(same(theirs[k], model.t[k]) for k in theirs)
    fails.check(same, f'{name}: reference safetensors reader agrees with make_checkpoint')


def run_case(fails, infer, work_dir, name, kwargs, prompts, self_check):
    model_dir = os.path.join(work_dir, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    config = mk.make_checkpoint(model_dir, tokenizer_dir=os.environ.get('CLIP_TOKENIZER_DIR'),
                                **kwargs)
    model = ref.ClipReference.load(model_dir)
    tc, vc = model.config['text'], model.config['vision']
    # The reference must read back exactly the knobs this case sets.
    fails.check(tc['eos_token_id'] == kwargs['eos_token_id']
                and tc['hidden_act'] == config['text_config']['hidden_act']
                and vc['layer_norm_eps'] == config['vision_config']['layer_norm_eps']
                and vc['image_size'] == config['vision_config']['image_size'],
                f'{name}: reference config matches the generated config.json')
    check_reader(fails, name, model_dir, model)
    if self_check:
        try:
            ref.self_check(model)
            fails.check(True, f'{name}: reference self-check')
        except AssertionError as e:
            fails.check(False, f'{name}: reference self-check: {e}')

    ctx = tc['max_position_embeddings']
    tokens = run_tool(infer, ['tokenize', '--model', model_dir, '--max-length', str(ctx)]
                      + prompts)['tokens']
    well_formed = (len(tokens) == len(prompts) and all(
        2 <= len(t) <= ctx and t[0] == 49406 and t[-1] == 49407 and 49407 not in t[:-1]
        for t in tokens))
    fails.check(well_formed, f'{name}: tokenize gives BOS ... EOS within {ctx} ids '
                f'(lengths {[len(t) for t in tokens]})')
    if any(len(p.split()) > ctx for p in prompts):
        fails.check(any(len(t) == ctx for t in tokens),
                    f'{name}: the long prompt is truncated to the {ctx}-token context')

    ref_text = ref.normalise(model.text_embeds(tokens))
    ref_text_padded = ref.normalise(model.text_embeds(tokens, pad_to=ctx))
    d = max_diff(ref_text_padded, ref_text)
    fails.check(d <= PAD_TOL, f'{name}: reference: EOS padding to {ctx} changes nothing '
                f'(max diff {d:.2e})')

    if tc['layer_norm_eps'] != vc['layer_norm_eps']:
        # This case must tell the towers' eps apart: with them swapped the reference moves by
        # far more than the tolerance.
        tc['layer_norm_eps'], vc['layer_norm_eps'] = vc['layer_norm_eps'], tc['layer_norm_eps']
        d = max_diff(ref.normalise(model.text_embeds(tokens)), ref_text)
        tc['layer_norm_eps'], vc['layer_norm_eps'] = vc['layer_norm_eps'], tc['layer_norm_eps']
        fails.check(d > 20 * EMBED_TOL, f'{name}: reference: swapping the towers\' eps moves '
                    f'the text embeddings by {d:.2e} (> {20 * EMBED_TOL:g})')

    # Under a template every prompt of a batch begins with the same tokens ("<bos> a photo of
    # a"), which the engine computes once for the whole batch; one label is a prefix of another
    # so that the shared part reaches right up to a prompt's last own token.
    templated = ['a photo of a {}.'.format(label) for label in TEMPLATE_LABELS]
    templated_tokens = run_tool(infer, ['tokenize', '--model', model_dir, '--max-length',
                                        str(ctx)] + templated)['tokens']
    ref_templated = ref.normalise(model.text_embeds(templated_tokens))

    rng = np.random.default_rng(kwargs['seed'] + 1000)
    size = vc['image_size']
    # Roughly the range CLIP-normalised pixels take.
    pixels = (rng.standard_normal((3, size, size)) * 0.8).astype('<f4')
    pixels_path = os.path.join(model_dir, 'pixels.f32')
    pixels.tofile(pixels_path)
    ref_image = ref.normalise(model.image_embeds(pixels.astype(np.float64)))
    ref_logits = model.logit_scale_exp * (ref_text @ ref_image)
    ref_probs = ref.softmax(ref_logits)

    for threads in THREADS:
        tag = f'{name} --threads {threads}'
        common = ['--model', model_dir, '--threads', str(threads)]
        try:
            out = run_tool(infer, ['embed-text'] + common + ['--template', '{}'] + prompts)
            got = np.asarray(out['embeddings'])
            d = max_diff(got, ref_text)
            fails.check(d <= EMBED_TOL, f'{tag}: embed-text max abs diff {d:.2e} '
                        f'(<= {EMBED_TOL:g}) {"" if d <= EMBED_TOL else worst(got, ref_text)}')

            out = run_tool(infer, ['embed-text'] + common + ['--template', 'a photo of a {}.']
                           + TEMPLATE_LABELS)
            got = np.asarray(out['embeddings'])
            d = max_diff(got, ref_templated)
            fails.check(d <= EMBED_TOL, f'{tag}: embed-text, templated batch sharing a prefix, '
                        f'max abs diff {d:.2e} (<= {EMBED_TOL:g})')

            out = run_tool(infer, ['embed-image'] + common + ['--pixels', pixels_path])
            got = np.asarray(out['embedding'])
            d = max_diff(got, ref_image)
            fails.check(d <= EMBED_TOL, f'{tag}: embed-image max abs diff {d:.2e} '
                        f'(<= {EMBED_TOL:g}) {"" if d <= EMBED_TOL else worst(got, ref_image)}')

            out = run_tool(infer, ['classify'] + common + ['--template', '{}', '--pixels',
                                                           pixels_path] + prompts)
            fails.check(out.get('labels') == prompts, f'{tag}: classify echoes the labels')
            logits, probs = np.asarray(out['logits']), np.asarray(out['probs'])
            d = max_diff(logits, ref_logits)
            fails.check(d <= LOGIT_TOL, f'{tag}: classify logits max abs diff {d:.2e} '
                        f'(<= {LOGIT_TOL:g}) {"" if d <= LOGIT_TOL else worst(logits, ref_logits)}')
            d_self = max_diff(probs, ref.softmax(logits)) if logits.size else float('inf')
            d = max_diff(probs, ref_probs)
            fails.check(d_self <= SOFTMAX_TOL and d <= PROB_TOL,
                        f'{tag}: classify probs = softmax(logits) (diff {d_self:.2e}), '
                        f'max abs diff from reference {d:.2e}')
        except (RuntimeError, KeyError, subprocess.TimeoutExpired) as e:
            fails.check(False, f'{tag}: {e}')


def cpu_runs(isa):
    """Whether this CPU has the features the kernel path CLIPCLASSIFY_ISA=isa needs, read from
    /proc/cpuinfo (apart from the engine's own CPUID check)."""
    if isa == 'blas':
        return True
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return False
    need = {'avx512': ['avx512f'], 'avx2': ['avx2', 'fma']}.get(isa)
    return need is not None and all(flag in flags for flag in need)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--slow', action='store_true', help='the B/16 architecture instead')
    args = ap.parse_args()

    infer = os.environ.get('CLIP_INFER')
    if not infer or not os.access(infer, os.X_OK):
        print(f'CLIP_INFER={infer!r} is not an executable: run through meson test')
        return 1
    isa = os.environ.get('CLIPCLASSIFY_ISA', '')
    if isa and not cpu_runs(isa):
        print(f'SKIP: this CPU cannot run CLIPCLASSIFY_ISA={isa}')
        return 77
    work_dir = os.path.join(os.environ.get('CLIP_TEST_BUILD_DIR', '.'),
                            ('parity-slow' if args.slow else 'parity') + (f'-{isa}' if isa else ''))
    os.makedirs(work_dir, exist_ok=True)

    fails = Failures()
    cases, prompts = (SLOW_CASES, SLOW_PROMPTS) if args.slow else (TINY_CASES, PROMPTS)
    for i, (name, kwargs) in enumerate(cases):
        try:
            run_case(fails, infer, work_dir, name, kwargs, prompts, self_check=(i == 0))
        except Exception as e:  # one broken case must not hide the others' results
            fails.check(False, f'{name}: {type(e).__name__}: {e}')
        # A B/16 checkpoint is 600 MB: do not leave it in the build dir.
        if args.slow:
            shutil.rmtree(os.path.join(work_dir, name), ignore_errors=True)

    if fails.items:
        print(f'\n{len(fails.items)} failure(s):')
        for m in fails.items:
            print('  ' + m)
        return 1
    print('\nall parity checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
