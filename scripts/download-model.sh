#!/bin/bash
# Fetches the CLIP model clipclassify uses (openai/clip-vit-base-patch16: config.json,
# preprocessor_config.json, vocab.json, merges.txt, model.safetensors) from the HuggingFace hub,
# pinned to one revision and verified against the SHA-256 digests recorded in
# scripts/clip-vit-base-patch16.sha256. Resumable: an interrupted download continues from its
# .part file. Files already present and correct are not fetched again, so files copied in by
# hand are simply verified.
#
# Usage: scripts/download-model.sh [--check] [DIR]
#   DIR      default: ${XDG_DATA_HOME:-$HOME/.local/share}/clipclassify/models/clip-vit-base-patch16
#            (where the clipclassify element looks when neither `model` nor $CLIPCLASSIFY_MODEL
#            is set)
#   --check  verify the files in DIR, download nothing
#
# Environment:
#   CLIPCLASSIFY_HUB_URL           hub base URL, for mirrors (default https://huggingface.co);
#                                  file URLs are $CLIPCLASSIFY_HUB_URL/<repo>/resolve/<rev>/<file>
#   CLIPCLASSIFY_MANIFEST          checksum file to use instead of the pinned one (mirrors, tests)
#   CLIPCLASSIFY_ALLOW_UNVERIFIED  set to 1 to accept a file the manifest has no digest for
#   HTTPS_PROXY, CURL_CA_BUNDLE... honoured by curl as usual
#
# Exit status: 0 ready, 1 failure (message on stderr), 2 usage error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
manifest=${CLIPCLASSIFY_MANIFEST:-$here/clip-vit-base-patch16.sha256}
hub=${CLIPCLASSIFY_HUB_URL:-https://huggingface.co}
hub=${hub%/}
allow_unverified=${CLIPCLASSIFY_ALLOW_UNVERIFIED:-0}
check_only=0

die () { printf 'download-model: %s\n' "$*" >&2; exit 1; }
say () { printf '%s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --check) check_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) printf 'download-model: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -le 1 ] || { printf 'download-model: too many arguments (see --help)\n' >&2; exit 2; }
dir=${1:-${XDG_DATA_HOME:-$HOME/.local/share}/clipclassify/models/clip-vit-base-patch16}

# --- the manifest ------------------------------------------------------------------------------
[ -r "$manifest" ] || die "cannot read the checksum file $manifest"
repo= revision=
names=() digests=() sizes=()
while read -r a b c rest; do
  case "$a" in
    ''|'#'*) continue ;;
    repo) repo=$b ;;
    revision) revision=$b ;;
    *)
      [ -n "$c" ] && [ -z "$rest" ] || die "$manifest: malformed line: $a $b $c $rest"
      [[ "$a" =~ ^([0-9a-f]{64}|UNVERIFIED)$ ]] || die "$manifest: bad digest for $c: $a"
      [[ "$b" =~ ^~?[0-9]+$ ]] || die "$manifest: bad size for $c: $b"
      [[ "$c" =~ ^[A-Za-z0-9._-]+$ ]] || die "$manifest: bad file name: $c"
      digests+=("$a"); sizes+=("$b"); names+=("$c") ;;
  esac
done < "$manifest"
[ -n "$repo" ] && [ -n "$revision" ] && [ ${#names[@]} -gt 0 ] \
  || die "$manifest: needs a repo line, a revision line and at least one file"

command -v sha256sum >/dev/null || die "sha256sum is missing (Debian package coreutils)"
sha256_of () { sha256sum "$1" | cut -d' ' -f1; }
file_size () { stat -c %s "$1"; }
mib () { echo $(( ($1 + 1048575) / 1048576 )); }

# A file is acceptable when its digest is the pinned one, or, with no digest on record, when the
# user said so explicitly.
unverified=()
for i in "${!names[@]}"; do
  [ "${digests[$i]}" = UNVERIFIED ] && unverified+=("${names[$i]}")
done
if [ ${#unverified[@]} -gt 0 ] && [ "$allow_unverified" != 1 ]; then
  die "no SHA-256 is recorded in $manifest for: ${unverified[*]}. Refusing to install files" \
      "that cannot be verified. Set CLIPCLASSIFY_ALLOW_UNVERIFIED=1 to accept them anyway" \
      "(their digests will be printed so they can be recorded)."
fi

verify () {  # verify INDEX PATH -> 0 when acceptable; prints the digest on mismatch
  local want=${digests[$1]} got
  got=$(sha256_of "$2")
  if [ "$want" = UNVERIFIED ]; then
    say "WARNING: ${names[$1]} is not verified (no digest on record); its sha256 is $got"
    return 0
  fi
  [ "$got" = "$want" ] && return 0
  printf '%s' "$got"
  return 1
}

# --- what is already there ---------------------------------------------------------------------
if [ "$check_only" = 1 ]; then
  bad=0
  for i in "${!names[@]}"; do
    f=$dir/${names[$i]}
    if [ ! -f "$f" ]; then say "missing:  $f"; bad=1
    elif got=$(verify "$i" "$f"); then say "ok:       $f"
    else say "MISMATCH: $f (sha256 $got, expected ${digests[$i]})"; bad=1
    fi
  done
  [ "$bad" = 0 ] || die "$dir does not hold the pinned model (revision $revision of $repo)"
  say "$dir holds the pinned model (revision $revision of $repo)"
  exit 0
fi

mkdir -p "$dir" 2>/dev/null || die "cannot create $dir"
[ -w "$dir" ] || die "cannot write to $dir"

todo=()
for i in "${!names[@]}"; do
  f=$dir/${names[$i]}
  if [ -f "$f" ]; then
    if got=$(verify "$i" "$f"); then
      say "${names[$i]}: present and verified"
      continue
    fi
    # Never silently delete what someone put there: set it aside, then fetch the pinned one.
    say "${names[$i]}: $f does not match the pinned digest (sha256 $got); moving it to $f.mismatch"
    mv -f "$f" "$f.mismatch"
  fi
  todo+=("$i")
done
if [ ${#todo[@]} -eq 0 ]; then
  say "Model ready in $dir (revision $revision of $repo)"
  exit 0
fi

# --- disk space: refuse up front rather than fail at 90 % --------------------------------------
need=0
for i in "${todo[@]}"; do
  size=${sizes[$i]#\~}
  part=$dir/${names[$i]}.part
  have=0
  [ -f "$part" ] && have=$(file_size "$part")
  [ "$have" -lt "$size" ] && need=$(( need + size - have ))
done
need=$(( need + need / 100 + 1048576 ))   # approximate sizes and filesystem slack
avail=$(df -P -B1 "$dir" | awk 'NR == 2 { print $4 }')
if [ -n "$avail" ] && [ "$avail" -lt "$need" ]; then
  die "not enough free space in $dir: the download needs about $(mib "$need") MiB and only" \
      "$(mib "$avail") MiB are free. Free some space, or pass another directory" \
      "(scripts/download-model.sh DIR, then set CLIPCLASSIFY_MODEL=DIR)."
fi

# --- download ----------------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is missing (sudo apt-get install curl)"
host=$(printf '%s' "$hub" | sed -E 's#^[a-z]+://##; s#/.*##')
rev_url=${revision//\//%2F}   # refs/pr/10 -> refs%2Fpr%2F10, as the hub's own client sends it

progress=(--silent --show-error)
[ -t 2 ] && progress=(--progress-bar)

offline_help () {
  die "cannot reach $host ($1). Check the network connection; behind a proxy, set" \
      "HTTPS_PROXY=http://proxy:port; or copy the files (${names[*]}) of revision $revision" \
      "of $repo by hand into $dir and run this script again to verify them."
}

for i in "${todo[@]}"; do
  name=${names[$i]} size=${sizes[$i]}
  f=$dir/$name part=$dir/$name.part
  url=$hub/$repo/resolve/$rev_url/$name

  # A .part that is already complete (or too long) cannot be resumed: the server answers 416.
  have=0
  [ -f "$part" ] && have=$(file_size "$part")
  exact=0
  [[ "$size" =~ ^[0-9]+$ ]] && exact=1
  if [ "$exact" = 1 ] && [ "$have" -gt "$size" ]; then
    rm -f "$part"; have=0
  fi

  if [ "$exact" = 1 ] && [ "$have" -eq "$size" ]; then
    say "$name: already downloaded, verifying"
  else
    if [ "$have" -gt 0 ]; then
      say "$name: resuming at $(mib "$have") MiB"
    else
      say "$name: downloading from $url"
    fi
    set +e
    code=$(curl --location --fail "${progress[@]}" --continue-at - --output "$part" \
                --retry 3 --retry-delay 2 --connect-timeout 15 \
                --write-out '%{http_code}' "$url")
    rc=$?
    set -e
    case "$rc" in
      0) ;;
      5|6) offline_help "cannot resolve the host name" ;;
      7) offline_help "connection refused or no route" ;;
      28) offline_help "timed out" ;;
      35|51|58|60|77|83|90|91) offline_help "TLS/certificate failure, curl exit $rc" ;;
      22)
        case "$code" in
          404) die "$url: not found (HTTP 404). Revision $revision of $repo may have been" \
                   "removed from the hub; the download cannot be verified against another one." ;;
          401|403) die "$url: access denied (HTTP $code). A proxy or the hub refused the request." ;;
          416)
            # The server has nothing past what we hold: the .part is complete; verify it.
            ;;
          *) die "$url: HTTP $code. Try again later; the partial download $part is kept and will be resumed." ;;
        esac ;;
      33) die "$url: the server cannot resume downloads; delete $part and run again" ;;
      37) die "$url: not found (cannot read the file)" ;;
      23) die "could not write $part: is the disk full? ($(df -P -B1 "$dir" | awk 'NR==2 {print int($4/1048576)}') MiB free)" ;;
      18|56|92) die "$url: the connection broke (curl exit $rc). Run the script again to resume from $part." ;;
      *) die "$url: curl failed (exit $rc). Run the script again to resume from $part." ;;
    esac
  fi

  if got=$(verify "$i" "$part"); then
    mv -f "$part" "$f"
    say "$name: verified"
  else
    rm -f "$part"
    die "$name: checksum mismatch: the downloaded file has sha256 $got but revision $revision" \
        "of $repo is pinned to ${digests[$i]}. The bad download was removed. Run the script" \
        "again; if it fails the same way, the hub's file has changed (please report it)."
  fi
done

say "Model ready in $dir (revision $revision of $repo)"
default_dir=${XDG_DATA_HOME:-$HOME/.local/share}/clipclassify/models/clip-vit-base-patch16
if [ "$dir" != "$default_dir" ]; then
  say "Not the default location: use it with  export CLIPCLASSIFY_MODEL=$dir  or  clipclassify model=$dir"
fi
