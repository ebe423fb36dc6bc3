#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A short soak of the element (bench/clipclassify-soak, see bench/README.md): 3,000 frames of a
live pipeline in sync mode on the tiny model, labels changed every 10 frames, NULL -> PLAYING
every 250 frames, caps changed every 1,000. Passes when the program's own checks do: every
frame carries its own result, scored against the label set in force, one bus message each;
descriptors and threads flat; resident memory (after malloc_trim) at most 2 MiB above its level
at frame 500. Under the sanitizers memory is not judged (their allocators keep freed memory on
purpose), the rest is.

    test_soak.py SOAK_PROGRAM
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ['CLIP_REFERENCE_DIR'])
import make_checkpoint as mk  # noqa: E402


def main():
    program = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix='soak-', dir=os.environ.get('CLIP_TEST_BUILD_DIR')) as work:
        model = os.path.join(work, 'tiny')
        mk.make_checkpoint(model, preset='tiny', seed=9,
                           tokenizer_dir=os.environ.get('CLIP_TOKENIZER_DIR'))
        argv = [program, '--model', model, '--frames', '3000', '--relabel-every', '10',
                '--cycle-every', '250', '--sample-every', '250', '--caps-every', '1000',
                '--baseline', '500']
        sanitized = any(k in os.environ for k in ('ASAN_OPTIONS', 'TSAN_OPTIONS'))
        if sanitized:
            argv += ['--max-rss-growth-kib', str(1 << 30), '--pull-timeout', '120']
        p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        sys.stderr.write(p.stderr[-4000:])
        try:
            result = json.loads(p.stdout)
        except ValueError:
            print(f'not ok: no JSON from {program} (exit {p.returncode}): {p.stdout[-500:]!r}')
            return 1
        samples = result.pop('samples')
        print(json.dumps(result, indent=1))
        print('rss_kib (after malloc_trim):', samples['rss_trimmed_kib'])
        print('fds:', samples['fds'], 'threads:', samples['threads'])
        if p.returncode != 0 or not result['pass']:
            print(f'not ok: soak failed (exit {p.returncode})' +
                  (' [memory not judged under the sanitizers]' if sanitized else ''))
            return 1
        print('ok: soak passed' + (' (memory not judged under the sanitizers)' if sanitized else ''))
        return 0


if __name__ == '__main__':
    sys.exit(main())
