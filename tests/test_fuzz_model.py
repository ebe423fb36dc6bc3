#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Corrupt model files never crash the engine: seeded random damage to a tiny checkpoint's
safetensors file (bytes and digits of the JSON header, the header length, truncation), each
loaded by `clip-infer embed-image`. Every run must end with exit status 0 (the damage was
harmless) or 1 (refused with a message naming the file); a signal, another status or a hang
fails the test. The damaged files of failures are kept for reproduction."""
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


def damage(rng, data, header_length):
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randrange(1, 6)):
            b[8 + rng.randrange(header_length)] = rng.randrange(256)
    elif kind == 1:
        digits = [8 + i for i, c in enumerate(b[8:8 + header_length]) if 48 <= c <= 57]
        for _ in range(rng.randrange(1, 4)):
            b[rng.choice(digits)] = ord(rng.choice('0123456789'))
    elif kind == 2:
        b = b[:rng.randrange(len(b))]
    else:
        b[:8] = struct.pack('<Q', rng.choice([0, 1, header_length - 1, header_length + 1, len(b),
                                              2 ** 63, rng.randrange(2 ** 64)]))
    return bytes(b)


def main():
    infer = os.environ['CLIP_INFER']
    work = tempfile.mkdtemp(prefix='fuzz-model-', dir=os.environ.get('CLIP_TEST_BUILD_DIR'))
    model = os.path.join(work, 'model')
    mk.make_checkpoint(model, preset='tiny', seed=3, tokenizer_dir=os.environ.get('CLIP_TOKENIZER_DIR'))
    path = os.path.join(model, 'model.safetensors')
    data = open(path, 'rb').read()
    header_length = struct.unpack('<Q', data[:8])[0]
    rng = random.Random(20261127)
    failures = 0
    outcomes = {0: 0, 1: 0}
    for i in range(ITERATIONS):
        damaged = damage(rng, data, header_length)
        with open(path, 'wb') as f:
            f.write(damaged)
        try:
            p = subprocess.run([infer, 'embed-image', '--model', model, '--pixels', os.devnull],
                               capture_output=True, timeout=60)
            status = p.returncode
        except subprocess.TimeoutExpired:
            status = 'timeout'
        if status in outcomes:
            outcomes[status] += 1
            if status == 1 and b'model' not in p.stderr and b'pixels' not in p.stderr:
                print(f'not ok {i}: refused without naming the file: {p.stderr[-200:]!r}')
                failures += 1
            continue
        failures += 1
        keep = os.path.join(work, f'crash-{i}.safetensors')
        shutil.copy(path, keep)
        print(f'not ok {i}: exit {status}; damaged file kept as {keep}')
    print(f'{ITERATIONS} damaged files: {outcomes[1]} refused, {outcomes[0]} harmless, '
          f'{failures} failures')
    if failures == 0:
        shutil.rmtree(work)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
