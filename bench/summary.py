#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/run.sh's closing line: ours (clip-bench) against the peers, vision ms/image per thread count.

    summary.py OURS_JSON [PEER_FILE ...]

OURS_JSON is clip-bench's output; a peer file holds JSON lines, either bench/peer_torch.py's one
object ({"peer", "runs": [{"threads", "vision_ms"}]}) or bench_ort.js's one object per thread
count ({"peer", "threads", "vision_ms", ...}). Missing or empty peer files are skipped. Prints one
JSON object: per thread count, each side's median ms and ours_over_<peer> (above 1: ours slower)."""
import json
import os
import sys


def peer_runs(path):
    """{peer key: (peer name, {threads: run})} from one file of JSON lines."""
    found = {}
    if not os.path.exists(path):
        return found
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            name = obj.get("peer", "")
            key = "ort" if name.startswith("onnxruntime") else name.split()[0] if name else "peer"
            runs = obj["runs"] if "runs" in obj else [obj]
            found.setdefault(key, (name, {}))[1].update({r["threads"]: r for r in runs})
    return found


def main():
    with open(sys.argv[1]) as f:
        ours = json.load(f)
    peers = {}
    for path in sys.argv[2:]:
        peers.update(peer_runs(path))
    rows = []
    for run in ours["runs"]:
        n = run["threads"]
        row = {"threads": n, "ours_ms": run["vision_ms"]}
        for key, (_, by_threads) in peers.items():
            p = by_threads.get(n)
            if p is None:
                continue
            row[f"{key}_ms"] = p["vision_ms"]
            row[f"ours_over_{key}"] = round(run["vision_ms"] / p["vision_ms"], 3)
            if key == "ort":
                row["ort_reps_clean"] = f'{p["reps_clean"]}/{p["reps_total"]}'
        rows.append(row)
    print(json.dumps({"summary": "image tower, batch 1, median ms/image; ours_over_X > 1: ours slower",
                      "ours": "clip-bench", "peers": {k: v[0] for k, v in peers.items()},
                      "runs": rows}))


if __name__ == "__main__":
    main()
