#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reference CLIP tokenizer: the semantics of HuggingFace CLIPTokenizerFast, in plain Python.

Written from the pipeline that transformers' CLIPConverter builds for the `tokenizers` library,
not from the C code under test:

  added tokens  <|startoftext|> and <|endoftext|> (normalized=True: matched after normalizing)
  normalizer    NFC, Replace(\\s+ -> " "), Lowercase (Rust's char::to_lowercase, one char at a
                time: no final-sigma rule, 'İ' -> 'i̇')
  pre-tokenizer Split('s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+, keep the
                matches, drop the rest), then ByteLevel (GPT-2 bytes_to_unicode, no prefix space)
  model         BPE, end_of_word_suffix "</w>", merges ranked by their line in merges.txt
  post          <|startoftext|> ... <|endoftext|>; truncation keeps max_length - 2 tokens

Unicode classes come from `unicodedata` (NFC, lowercase) and the `regex` module (\\p{L}, \\p{N},
\\s = White_Space, as Oniguruma's \\s in `tokenizers`). The BPE is OpenAI's original loop (merge
every occurrence of the best-ranked pair, left to right), a different algorithm from the C one.

CLI:  clip_tokenizer.py [--dir DIR] [--max-length N] [--input FILE] TEXT...
      prints one JSON array holding the id list of each TEXT, then of each string in FILE (a JSON
      array of strings). DIR defaults to $CLIP_TOKENIZER_DIR.
"""

import argparse
import json
import os
import sys
import unicodedata

import regex

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
PRETOKENIZE = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
WHITESPACE_RUN = regex.compile(r"\s+")
SPECIAL_SPLIT = regex.compile("(" + "|".join(regex.escape(t) for t in SPECIAL_TOKENS) + ")")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1))
                 + list(range(0xAE, 0xFF + 1)))
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def normalize(text):
    text = unicodedata.normalize("NFC", text)
    text = WHITESPACE_RUN.sub(" ", text)
    # str.lower() on the whole string would apply the final-sigma rule; Rust's char::to_lowercase
    # (what tokenizers' Lowercase uses) maps one character at a time.
    return "".join(c.lower() for c in text)


class ClipTokenizer:
    def __init__(self, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        # Rank = position among the merge lines; a repeated pair keeps its last rank, as a dict
        # built from the list does in both OpenAI's code and `tokenizers`.
        merges = [tuple(line.split(" ")) for line in lines
                  if line and not line.startswith("#version")]
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_chars = bytes_to_unicode()
        self.bos_id = self.vocab["<|startoftext|>"]
        self.eos_id = self.vocab["<|endoftext|>"]

    def bpe(self, token):
        word = [self.byte_chars[b] for b in token.encode("utf-8")]
        word[-1] += "</w>"
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return [self.vocab.get(symbol, self.eos_id) for symbol in word]

    def tokens(self, text):
        ids = []
        for piece in SPECIAL_SPLIT.split(normalize(text)):
            if piece in SPECIAL_TOKENS:
                ids.append(self.vocab[piece])
                continue
            for token in PRETOKENIZE.findall(piece):
                ids.extend(self.bpe(token))
        return ids

    def encode(self, text, max_length=77):
        assert max_length >= 2
        return [self.bos_id] + self.tokens(text)[: max_length - 2] + [self.eos_id]


def unassigned(first, last):
    """The code points of first..last that this reference's Unicode tables (unicodedata's and
    the regex module's, which may be of different Unicode versions) do not both assign."""
    cn = regex.compile(r"\p{Cn}")
    return [c for c in range(first, last + 1)
            if unicodedata.category(chr(c)) == "Cn" or cn.match(chr(c))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.environ.get("CLIP_TOKENIZER_DIR"),
                        help="folder with vocab.json and merges.txt")
    parser.add_argument("--max-length", type=int, default=77)
    parser.add_argument("--input", help="JSON file holding an array of strings")
    parser.add_argument("--unassigned", nargs=2, metavar=("FIRST", "LAST"),
                        help="print the code points FIRST..LAST (hex) that the Unicode tables "
                             "used here leave unassigned, as a JSON array, and exit")
    parser.add_argument("texts", nargs="*")
    args = parser.parse_args()
    if args.unassigned:
        json.dump(unassigned(*(int(x, 16) for x in args.unassigned)), sys.stdout)
        sys.stdout.write("\n")
        return
    if not args.dir:
        parser.error("--dir or CLIP_TOKENIZER_DIR is required")
    tok = ClipTokenizer(os.path.join(args.dir, "vocab.json"), os.path.join(args.dir, "merges.txt"))
    texts = list(args.texts)
    if args.input:
        with open(args.input, encoding="utf-8") as f:
            texts += json.load(f, strict=False)  # json-glib leaves some controls raw
    json.dump([tok.encode(t, args.max_length) for t in texts], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
