#!/usr/bin/python3
"""scripts/download-model.sh, offline: a loopback HTTP server (with Range support) or a file://
mirror stands in for huggingface.co, with fake files and a checksum file made for them.

Checks: success, no refetch when verified, resume from a .part (the server sees the Range), a
corrupt download refused and removed, a wrong file set aside, HTTP 404, an unreachable host, too
little disk space, unverified files refused unless allowed, --check, a file:// mirror, and that
the pinned checksum file is complete and agrees with the tokenizer files we hold.

Exit status 0 when every check passes.
"""
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "scripts", "download-model.sh")
PINNED = os.path.join(HERE, "..", "scripts", "clip-vit-base-patch16.sha256")
REPO = "openai/clip-vit-base-patch16"
FILES = ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt",
         "model.safetensors"]

failures = []


def check(cond, what):
    """Prints the first line of `what`; the rest (the script's output) only on failure."""
    print(("ok     " + what.split("\n")[0]) if cond else ("FAILED " + what))
    if not cond:
        failures.append(what.split("\n")[0])


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fake_files():
    rnd = __import__("random").Random(1234)
    files = {name: ("fake %s\n" % name).encode() * (3 + i) for i, name in enumerate(FILES)}
    # Big enough that a half-written .part is meaningful.
    files["model.safetensors"] = bytes(rnd.getrandbits(8) for _ in range(300000))
    return files


def write_manifest(path, files, revision, overrides=None):
    overrides = overrides or {}
    with open(path, "w") as f:
        f.write("# test manifest\nrepo %s\nrevision %s\n" % (REPO, revision))
        for name, data in files.items():
            digest, size = overrides.get(name, (sha256(data), str(len(data))))
            f.write("%s  %s  %s\n" % (digest, size, name))


class Hub:
    """A loopback stand-in for the hub: /<repo>/resolve/<quoted rev>/<file>, with Range."""

    def __init__(self, files, revision):
        self.files = dict(files)
        self.revision = revision
        self.requests = []  # (path, Range header)
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hub.requests.append((self.path, self.headers.get("Range")))
                prefix = "/%s/resolve/%s/" % (REPO, urllib.parse.quote(hub.revision, safe=""))
                name = self.path[len(prefix):] if self.path.startswith(prefix) else None
                data = hub.files.get(name) if name else None
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(data))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run(args, **env):
    full = dict(os.environ)
    full.pop("CLIPCLASSIFY_ALLOW_UNVERIFIED", None)
    full.update(env)
    p = subprocess.run(["bash", SCRIPT] + args, env=full, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def dir_files(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def main():
    files = fake_files()
    revision = "refs/pr/10"
    tmp = tempfile.TemporaryDirectory(prefix="clip-download-")
    root = tmp.name
    manifest = os.path.join(root, "test.sha256")
    write_manifest(manifest, files, revision)
    hub = Hub(files, revision)
    env = {"CLIPCLASSIFY_MANIFEST": manifest, "CLIPCLASSIFY_HUB_URL": hub.url,
           "XDG_DATA_HOME": os.path.join(root, "xdg")}

    # --- success, into the default directory, with the revision's slashes quoted -----------
    rc, out = run([], **env)
    default = os.path.join(root, "xdg", "clipclassify", "models", "clip-vit-base-patch16")
    check(rc == 0, "download succeeds (rc=%d)\n%s" % (rc, out if rc else ""))
    check(dir_files(default) == sorted(FILES), "exactly the five files, no .part left: %s"
          % dir_files(default))
    check(all(open(os.path.join(default, n), "rb").read() == files[n] for n in FILES),
          "every file has the served content")
    check(all("/resolve/refs%2Fpr%2F10/" in p for p, _ in hub.requests),
          "the revision's slashes are sent quoted (refs%2Fpr%2F10)")

    # --- nothing fetched again when everything verifies ----------------------------------------
    n = len(hub.requests)
    rc, out = run([], **env)
    check(rc == 0 and len(hub.requests) == n, "a second run verifies and fetches nothing")

    # --- resume: half a model.safetensors in .part -> one Range request from the half ----------
    d = os.path.join(root, "resume")
    os.makedirs(d)
    big = files["model.safetensors"]
    half = len(big) // 2
    with open(os.path.join(d, "model.safetensors.part"), "wb") as f:
        f.write(big[:half])
    n = len(hub.requests)
    rc, out = run([d], **env)
    check(rc == 0, "resumed download succeeds\n%s" % (out if rc else ""))
    ranges = [r for p, r in hub.requests[n:] if p.endswith("/model.safetensors")]
    check(ranges == ["bytes=%d-" % half], "resume asks for bytes=%d- (got %s)" % (half, ranges))
    check(open(os.path.join(d, "model.safetensors"), "rb").read() == big,
          "the resumed file is whole and correct")
    check("resuming" in out, "the user is told the download resumes")

    # A .part that is already complete is verified without asking the server again.
    d = os.path.join(root, "complete-part")
    os.makedirs(d)
    for name in FILES:
        with open(os.path.join(d, name + ".part"), "wb") as f:
            f.write(files[name])
    n = len(hub.requests)
    rc, out = run([d], **env)
    check(rc == 0 and len(hub.requests) == n and dir_files(d) == sorted(FILES),
          "complete .part files are verified and kept without a request")

    # Same, where only an approximate size is on record (as for the real model.safetensors): the
    # server answers the resume with 416, and the complete .part is verified and installed.
    mapprox = os.path.join(root, "approx.sha256")
    write_manifest(mapprox, files, revision,
                   {"model.safetensors": (sha256(big), "~%d" % (len(big) + 5000))})
    d = os.path.join(root, "complete-part-approx")
    os.makedirs(d)
    with open(os.path.join(d, "model.safetensors.part"), "wb") as f:
        f.write(big)
    rc, out = run([d], **dict(env, CLIPCLASSIFY_MANIFEST=mapprox))
    check(rc == 0 and open(os.path.join(d, "model.safetensors"), "rb").read() == big,
          "a complete .part of approximate size survives the server's 416\n" + out)

    # --- checksum mismatch: the server sends other bytes ---------------------------------------
    hub.files["merges.txt"] = b"not the pinned merges\n"
    d = os.path.join(root, "mismatch")
    rc, out = run([d], **env)
    check(rc == 1, "a corrupt download fails (rc=%d)" % rc)
    check("checksum mismatch" in out and "merges.txt" in out and sha256(files["merges.txt"]) in out,
          "the error names the file and the pinned digest:\n" + out)
    check(not os.path.exists(os.path.join(d, "merges.txt")) and
          not os.path.exists(os.path.join(d, "merges.txt.part")),
          "the corrupt file is neither installed nor kept")
    hub.files["merges.txt"] = files["merges.txt"]

    # A wrong file already in place is set aside (never deleted) and replaced by the pinned one.
    with open(os.path.join(d, "config.json"), "wb") as f:
        f.write(b"{\"edited\": true}\n")
    rc, out = run([d], **env)
    check(rc == 0 and open(os.path.join(d, "config.json"), "rb").read() == files["config.json"],
          "a wrong local file is replaced by the pinned one")
    check(open(os.path.join(d, "config.json.mismatch"), "rb").read() == b"{\"edited\": true}\n",
          "and kept as config.json.mismatch")

    # --- HTTP 404 ------------------------------------------------------------------------------
    files404 = dict(files)
    files404["tokenizer.json"] = b"{}"
    m404 = os.path.join(root, "404.sha256")
    write_manifest(m404, files404, revision)
    rc, out = run([os.path.join(root, "d404")], **dict(env, CLIPCLASSIFY_MANIFEST=m404))
    check(rc == 1 and "HTTP 404" in out and "tokenizer.json" in out,
          "a missing hub file is reported as HTTP 404:\n" + out)

    # --- unreachable host (curl exit 7) ----------------------------------------------------------
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    d = os.path.join(root, "offline")
    rc, out = run([d], **dict(env, CLIPCLASSIFY_HUB_URL="http://127.0.0.1:%d" % port))
    check(rc == 1 and "cannot reach 127.0.0.1:%d" % port in out, "offline: plain message:\n" + out)
    check("HTTPS_PROXY" in out and d in out and "by hand" in out,
          "offline: says how to use a proxy or copy the files by hand into the directory")

    # --- disk space checked before anything is fetched -------------------------------------------
    mbig = os.path.join(root, "big.sha256")
    write_manifest(mbig, files, revision,
                   {"model.safetensors": (sha256(big), "~%d" % (1 << 60))})
    n = len(hub.requests)
    rc, out = run([os.path.join(root, "full")], **dict(env, CLIPCLASSIFY_MANIFEST=mbig))
    check(rc == 1 and "not enough free space" in out and len(hub.requests) == n,
          "too little disk space is refused before downloading:\n" + out)

    # --- unverified files: refused unless explicitly allowed -------------------------------------
    munv = os.path.join(root, "unverified.sha256")
    write_manifest(munv, files, revision, {"model.safetensors": ("UNVERIFIED", "~%d" % len(big))})
    d = os.path.join(root, "unverified")
    n = len(hub.requests)
    rc, out = run([d], **dict(env, CLIPCLASSIFY_MANIFEST=munv))
    check(rc == 1 and "CLIPCLASSIFY_ALLOW_UNVERIFIED" in out and len(hub.requests) == n
          and not os.path.exists(os.path.join(d, "model.safetensors")),
          "an unverifiable file is refused up front:\n" + out)
    rc, out = run([d], **dict(env, CLIPCLASSIFY_MANIFEST=munv, CLIPCLASSIFY_ALLOW_UNVERIFIED="1"))
    check(rc == 0 and sha256(big) in out and
          open(os.path.join(d, "model.safetensors"), "rb").read() == big,
          "with CLIPCLASSIFY_ALLOW_UNVERIFIED=1 it is accepted and its digest printed")

    # --- --check ---------------------------------------------------------------------------------
    n = len(hub.requests)
    rc, out = run(["--check", default], **env)
    check(rc == 0 and len(hub.requests) == n, "--check passes on a good directory")
    with open(os.path.join(default, "vocab.json"), "ab") as f:
        f.write(b" ")
    rc, out = run(["--check", default], **env)
    check(rc == 1 and "MISMATCH" in out and "vocab.json" in out and len(hub.requests) == n,
          "--check names a tampered file and downloads nothing")
    rc, out = run(["--check", os.path.join(root, "nowhere")], **env)
    check(rc == 1 and "missing" in out, "--check reports missing files")
    rc, out = run(["--bogus"], **env)
    check(rc == 2, "an unknown option is a usage error")

    # --- a file:// mirror ------------------------------------------------------------------------
    mirror = os.path.join(root, "mirror")
    mrev = "0123456789abcdef0123456789abcdef01234567"
    os.makedirs(os.path.join(mirror, REPO, "resolve", mrev))
    for name, data in files.items():
        with open(os.path.join(mirror, REPO, "resolve", mrev, name), "wb") as f:
            f.write(data)
    mfile = os.path.join(root, "mirror.sha256")
    write_manifest(mfile, files, mrev)
    d = os.path.join(root, "from-mirror")
    rc, out = run([d], **dict(env, CLIPCLASSIFY_MANIFEST=mfile,
                              CLIPCLASSIFY_HUB_URL="file://" + mirror))
    check(rc == 0 and dir_files(d) == sorted(FILES), "a file:// mirror works\n" + out)

    hub.close()

    # --- the pinned checksum file itself -----------------------------------------------------------
    entries, repo, rev = {}, None, None
    for line in open(PINNED):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "repo":
            repo = parts[1]
        elif parts[0] == "revision":
            rev = parts[1]
        else:
            entries[parts[2]] = (parts[0], parts[1])
    check(repo == REPO and rev, "pinned: repo %s at revision %s" % (repo, rev))
    check(sorted(entries) == sorted(FILES), "pinned: exactly the five files the engine loads")
    check(all(len(d) == 64 and all(c in "0123456789abcdef" for c in d)
              for d, _ in entries.values()), "pinned: every file has a SHA-256 (none unverified)")
    tok = os.environ.get("CLIP_TOKENIZER_DIR")
    if tok and os.path.isdir(tok):
        merges = open(os.path.join(tok, "merges.txt"), "rb").read()
        check(entries["merges.txt"] == (sha256(merges), str(len(merges))),
              "pinned merges.txt is OpenAI's merges, byte for byte")
        # The hub's vocab.json is the same object written with ", " and ": " separators.
        vocab = json.load(open(os.path.join(tok, "vocab.json"), encoding="utf-8"))
        hub_form = json.dumps(vocab, ensure_ascii=False).encode("utf-8")
        check(entries["vocab.json"] == (sha256(hub_form), str(len(hub_form))),
              "pinned vocab.json is OpenAI's vocabulary as the hub writes it")
    else:
        print("skip   tokenizer cross-check (CLIP_TOKENIZER_DIR not set)")

    if failures:
        print("\n%d check(s) failed" % len(failures))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
