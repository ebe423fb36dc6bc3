#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Corrupt model files never crash the engine: seeded random damage to a tiny checkpoint's
safetensors file (bytes and digits of the JSON header, the header length, truncation, the
tensors' bytes: NaN, infinities, huge values, noise), each run by `clip-infer classify` on a
real pixel tensor with two labels: load, image tower, text tower, scores. Every run must end with
exit status 1 (refused with a message naming the file) or 0 after a whole forward pass (the
damaged model loaded and ran: its scores come out); a signal, another status or a hang fails
the test, and so does a run where no damaged model loads (the forward pass would go untested).
The damaged files of failures are kept for reproduction."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ['CLIP_REFERENCE_DIR'])
import make_checkpoint as mk  # noqa: E402

ITERATIONS = 150


# float32 bit patterns a damaged tensor may hold: NaNs, infinities, the largest and a denormal
SPECIAL_F32 = [struct.pack('<I', v) for v in (0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000,
                                              0x7f7fffff, 0x00000001, 0x80000000)]


def damage(rng, data, header_length):
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randrange(1, 6)):
            b[8 + rng.randrange(header_length)] = rng.randrange(256)
    elif kind == 1:
        digits = [8 + i for i, c in enumerate(b[8:8 + header_length]) if 48 <= c <= 57]
        for _ in range(rng.randrange(1, 4)):
            b[rng.choice(digits)] = ord(rng.choice('0123456789'))
    elif kind == 2:
        b = b[:rng.randrange(len(b))]
    elif kind == 3:
        b[:8] = struct.pack('<Q', rng.choice([0, 1, header_length - 1, header_length + 1, len(b),
                                              2 ** 63, rng.randrange(2 ** 64)]))
    else:
        # the tensors' bytes (the header intact: this model loads, and must run)
        start = 8 + header_length
        for _ in range(rng.randrange(1, 200)):
            at = start + rng.randrange((len(b) - start) // 4) * 4
            b[at:at + 4] = rng.choice(SPECIAL_F32) if rng.random() < 0.7 else rng.randbytes(4)
    return bytes(b)


def main():
    infer = os.environ['CLIP_INFER']
    work = tempfile.mkdtemp(prefix='fuzz-model-', dir=os.environ.get('CLIP_TEST_BUILD_DIR'))
    model = os.path.join(work, 'model')
    mk.make_checkpoint(model, preset='tiny', seed=3, tokenizer_dir=os.environ.get('CLIP_TOKENIZER_DIR'))
    path = os.path.join(model, 'model.safetensors')
    data = open(path, 'rb').read()
    config = json.load(open(os.path.join(model, 'config.json')))
    size = config['vision_config']['image_size']
    pixels = os.path.join(work, 'pixels.f32')
    prng = random.Random(5)
    with open(pixels, 'wb') as f:
        f.write(struct.pack(f'<{3 * size * size}f',
                            *(prng.uniform(-2.0, 2.0) for _ in range(3 * size * size))))
    header_length = struct.unpack('<Q', data[:8])[0]
    rng = random.Random(20261127)
    failures = 0
    outcomes = {0: 0, 1: 0}
    for i in range(ITERATIONS):
        damaged = damage(rng, data, header_length)
        with open(path, 'wb') as f:
            f.write(damaged)
        try:
            p = subprocess.run([infer, 'classify', '--model', model, '--pixels', pixels,
                                '--threads', '2', 'cat', 'a photo of a dog'],
                               capture_output=True, timeout=60)
            status = p.returncode
        except subprocess.TimeoutExpired:
            status = 'timeout'
        if status != 'timeout' and (b'Sanitizer' in p.stderr or b'runtime error:' in p.stderr):
            # under scripts/test.sh --sanitize: a report is a failure whatever the exit status
            print(f'not ok {i}: sanitizer report: {p.stderr[-2000:].decode(errors="replace")}')
            status = 'sanitizer report'
        elif status == 1 and b'model' not in p.stderr:
            print(f'not ok {i}: refused without naming the file: {p.stderr[-200:]!r}')
            failures += 1
        elif status == 0:
            # loaded and ran: the scores of both labels come out
            try:
                result = json.loads(p.stdout)
                ran = len(result['probs']) == 2 and len(result['logits']) == 2
            except (ValueError, KeyError, TypeError):
                ran = False
            if not ran:
                print(f'not ok {i}: exit 0 without the scores: {p.stdout[-200:]!r}')
                failures += 1
        if status in outcomes:
            outcomes[status] += 1
            continue
        failures += 1
        keep = os.path.join(work, f'crash-{i}.safetensors')
        shutil.copy(path, keep)
        print(f'not ok {i}: exit {status}; damaged file kept as {keep}')
    print(f'{ITERATIONS} damaged files: {outcomes[1]} refused, {outcomes[0]} loaded and ran '
          f'(forward pass of both towers, scores out), {failures} failures')
    if outcomes[0] < ITERATIONS // 10:
        print(f'not ok: only {outcomes[0]} damaged models loaded and ran: the forward pass on '
              f'damaged weights went (almost) untested')
        failures += 1
    if failures == 0:
        shutil.rmtree(work)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
