#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The benchmark programs keep working: clip-bench and clipclassify-bench run briefly on a tiny
random checkpoint and print JSON whose figures hold together (timings positive, the floor ratio
equal to the two timings it divides, every frame handed to the worker analysed, no frame lost
between the element and the sink, each relabel observed). Speed itself is not judged here."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ['CLIP_REFERENCE_DIR'])
import make_checkpoint as mk  # noqa: E402

failures = []


def check(ok, what):
    print(('ok     ' if ok else 'FAILED ') + what)
    if not ok:
        failures.append(what)


def run_json(argv, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
    if p.returncode != 0:
        raise RuntimeError(f'{argv[0]} exit {p.returncode}: {p.stderr[-500:]}')
    return json.loads(p.stdout[p.stdout.index('{'):])


def main():
    build = sys.argv[1]
    work = tempfile.mkdtemp(prefix='bench-smoke-', dir=os.environ.get('CLIP_TEST_BUILD_DIR'))
    model = os.path.join(work, 'tiny')
    mk.make_checkpoint(model, preset='tiny', seed=5, tokenizer_dir=os.environ.get('CLIP_TOKENIZER_DIR'))

    out = run_json([os.path.join(build, 'tools', 'clip-bench'), '--model', model,
                    '--iterations', '3', '--threads', '1,2', '--labels', '20'])
    runs = out.get('runs', [])
    check([r['threads'] for r in runs] == [1, 2], 'clip-bench: one run per thread count')
    for r in runs:
        check(all(r[k] > 0 for k in ('vision_ms', 'sgemm_floor_ms', 'text_ms_per_label')),
              f'clip-bench {r["threads"]} threads: positive timings')
        ratio = r['vision_ms'] / r['sgemm_floor_ms']
        check(abs(r['vision_over_floor'] - ratio) <= 0.02 * ratio + 0.002,
              f'clip-bench {r["threads"]} threads: vision_over_floor {r["vision_over_floor"]} '
              f'is vision_ms / sgemm_floor_ms ({ratio:.3f})')
    size = os.path.getsize(os.path.join(model, 'model.safetensors')) / 1048576
    check(abs(out['model_file_mib'] - size) < 0.1 and out['peak_rss_mib'] > 0,
          f'clip-bench: file size {out["model_file_mib"]} MiB, peak RSS {out["peak_rss_mib"]} MiB')

    bench = os.path.join(build, 'bench', 'clipclassify-bench')
    if os.path.exists(bench):
        out = run_json([bench, '--model', model, '--seconds', '2', '--warmup', '1',
                        '--width', '320', '--height', '240', '--relabels', '2',
                        '--relabel-gap-ms', '300', '--threads', '1'], env=os.environ)
        t = out['totals']
        check(t['handed_to_worker'] == t['frames_analysed'] > 0,
              f'clipclassify-bench: every handed frame analysed ({t["handed_to_worker"]} = '
              f'{t["frames_analysed"]})')
        check(t['buffers_through_element'] == t['sink_arrived'] > 0,
              f'clipclassify-bench: every buffer reached the sink ({t["sink_arrived"]})')
        rel = out['relabel']
        check(rel['timeouts'] == 0 and len(rel['latency_ms']) == 2,
              f'clipclassify-bench: both relabels observed ({rel["latency_ms"]})')
        # regions: ROI metas on every buffer, region=roi (issue 7)
        out = run_json([bench, '--model', model, '--seconds', '2', '--warmup', '1',
                        '--width', '320', '--height', '240', '--relabels', '0', '--threads', '1',
                        '--region', 'roi', '--rois', '6', '--crop', 'pad'], env=os.environ)
        t, e = out['totals'], out['element']
        check(e['region'] == 'roi' and e['rois_per_buffer'] == 6 and e['crop'] == 'pad',
              f'clipclassify-bench --region roi --rois 6: reported ({e})')
        check(t['handed_to_worker'] == t['frames_analysed'] > 0
              and out['phases']['steady']['per_buffer_us']['sampled_handed_to_worker']['count'] > 0,
              f'clipclassify-bench with regions: frames analysed ({t["frames_analysed"]})')
    else:
        print('skip   clipclassify-bench (built without GStreamer)')

    if failures:
        print(f'\n{len(failures)} check(s) failed')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
