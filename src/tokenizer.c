/* tokenizer.c — CLIP's byte-level BPE with the semantics of HuggingFace CLIPTokenizerFast.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The pipeline that transformers' CLIPConverter builds for the `tokenizers` library:
 *   1. added tokens <|startoftext|>/<|endoftext|>, declared normalized=True: matched in the
 *      normalized text and emitted as their ids;
 *   2. normalizer: NFC, every run of \s (Unicode White_Space) -> " ", Lowercase;
 *   3. pre-tokenizer: keep the matches of
 *      's|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (drop what lies between),
 *      then ByteLevel: every byte becomes one printable character (GPT-2's bytes_to_unicode);
 *   4. BPE with end-of-word suffix "</w>" on the last symbol of each pre-token;
 *   5. <|startoftext|> tokens <|endoftext|>, tokens truncated to max_ids - 2.
 *
 * Nothing here allocates shared state after load: the tokenizer is a few immutable tables, and
 * encode works on the caller's stack or on its own short-lived buffers, so any number of threads
 * may encode at once.
 *
 * As in HF, "<|endoftext|>" typed in the text (in any case) becomes the EOS id mid-sequence.
 *
 * Known divergence: Unicode versions. Our data is GLib's (Unicode 15 in GLib 2.74); `tokenizers`
 * takes its classes from Oniguruma, its lowercase from Rust's std and its NFC from a crate, each
 * of its own version, so a character that only one side's version assigns may be treated
 * differently. Over every code point, the classes, the lowercase mapping and single-character
 * NFC used here were checked equal to Python's `regex` and `unicodedata` (Unicode 14).
 */
#include "clip.h"

#include <string.h>

#define BOS_TOKEN "<|startoftext|>"
#define EOS_TOKEN "<|endoftext|>"
#define END_OF_WORD "</w>"

/* Words up to this many bytes run BPE in stack buffers; longer ones allocate. */
#define STACK_WORD_BYTES 64

typedef struct {
  guint64 key;               /* (left id << 32) | right id */
  gint32 rank;               /* -1: empty slot */
  gint32 new_id;
} ClipMergeSlot;

struct _ClipTokenizer {
  int vocab_size;            /* largest id + 1 */
  gint32 bos_id;
  gint32 eos_id;             /* also HF's unk: the id of a symbol missing from the vocab */
  gint32 byte_id[256];       /* a byte inside a word, -1 if the vocab lacks it */
  gint32 byte_eow_id[256];   /* a byte ending a word (with </w>), -1 if absent */
  ClipMergeSlot *merges;     /* open addressing, linear probing */
  guint merge_mask;
};

/* CLIP_ERROR's quark, weak: an engine file that defines it for real takes precedence, and the
 * tokenizer still links on its own (tests build it without the model code). */
__attribute__ ((weak)) GQuark
clip_error_quark (void)
{
  return g_quark_from_static_string ("clip-error-quark");
}

/* ------------------------------------------------------------------------------------------ */
/* Character classes of the pre-tokenizer regex and of the normalizer's \s. */

typedef enum {
  CHAR_SPACE,                /* \s: Unicode White_Space, as Oniguruma's \s */
  CHAR_LETTER,               /* \p{L} */
  CHAR_NUMBER,               /* \p{N} */
  CHAR_OTHER,                /* [^\s\p{L}\p{N}] */
} CharClass;

static CharClass
classify (gunichar c)
{
  if (c < 0x80) {
    if (c == ' ' || (c >= '\t' && c <= '\r'))
      return CHAR_SPACE;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      return CHAR_LETTER;
    if (c >= '0' && c <= '9')
      return CHAR_NUMBER;
    return CHAR_OTHER;
  }
  if (c == 0x85)
    return CHAR_SPACE;
  switch (g_unichar_type (c)) {
    case G_UNICODE_SPACE_SEPARATOR:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return CHAR_SPACE;
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return CHAR_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return CHAR_NUMBER;
    default:
      return CHAR_OTHER;
  }
}

/* Rust's char::to_lowercase (what tokenizers' Lowercase applies, one character at a time, so
 * there is no final-sigma rule). g_unichar_tolower only maps Lu/Lt letters, to one character;
 * the exceptions below are every code point where the two differ (checked against Python's
 * per-character str.lower over all of Unicode). Writes at most 4 bytes and returns how many. */
static int
lowercase_to_utf8 (gunichar c, char *out)
{
  if (c == 0x0130) {           /* İ -> i + COMBINING DOT ABOVE (SpecialCasing) */
    out[0] = 'i';
    out[1] = (char) 0xCC;
    out[2] = (char) 0x87;
    return 3;
  }
  if (c >= 0x2160 && c <= 0x216F)   /* Roman numerals (Nl) */
    c += 0x10;
  else if (c >= 0x24B6 && c <= 0x24CF)      /* circled capital letters (So) */
    c += 0x1A;
  else
    c = g_unichar_tolower (c);
  return g_unichar_to_utf8 (c, out);
}

/* NFC, \s+ -> " ", lowercase. Returns a new NUL-terminated string and its length. */
static char *
normalize (const char *text, gsize *out_len)
{
  gboolean ascii = TRUE;
  const char *p;
  char *nfc = NULL, *out, *w;
  gboolean in_space = FALSE;
  gsize len;

  for (p = text; *p; p++) {
    if ((guchar) *p >= 0x80) {
      ascii = FALSE;
      break;
    }
  }
  if (ascii) {
    /* ASCII is NFC already and lowercases byte for byte. */
    len = strlen (text);
    out = w = g_malloc (len + 1);
    for (p = text; *p; p++) {
      char c = *p;
      if (c == ' ' || (c >= '\t' && c <= '\r')) {
        if (!in_space)
          *w++ = ' ';
        in_space = TRUE;
        continue;
      }
      in_space = FALSE;
      *w++ = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
    }
    *w = '\0';
    *out_len = w - out;
    return out;
  }

  nfc = g_utf8_normalize (text, -1, G_NORMALIZE_NFC);
  len = strlen (nfc);
  /* Lowercasing grows a character's UTF-8 by at most half (2 -> 3 bytes). */
  out = w = g_malloc (2 * len + 1);
  for (p = nfc; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (classify (c) == CHAR_SPACE) {
      if (!in_space)
        *w++ = ' ';
      in_space = TRUE;
      continue;
    }
    in_space = FALSE;
    w += lowercase_to_utf8 (c, w);
  }
  *w = '\0';
  *out_len = w - out;
  g_free (nfc);
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Merge table */

static inline guint
merge_hash (guint64 key)
{
  /* Fibonacci hashing: the high bits of the product mix both ids. */
  return (guint) ((key * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 32);
}

static inline guint64
merge_key (gint32 left, gint32 right)
{
  return ((guint64) (guint32) left << 32) | (guint32) right;
}

static const ClipMergeSlot *
merge_lookup (const ClipTokenizer *tok, gint32 left, gint32 right)
{
  guint64 key = merge_key (left, right);
  guint i = merge_hash (key) & tok->merge_mask;

  for (;; i = (i + 1) & tok->merge_mask) {
    const ClipMergeSlot *slot = &tok->merges[i];
    if (slot->rank < 0)
      return NULL;
    if (slot->key == key)
      return slot;
  }
}

/* A repeated pair keeps its last rank, as a hash map built from the merge list does in
 * `tokenizers`. */
static void
merge_insert (ClipTokenizer *tok, gint32 left, gint32 right, gint32 rank, gint32 new_id)
{
  guint64 key = merge_key (left, right);
  guint i = merge_hash (key) & tok->merge_mask;

  for (;; i = (i + 1) & tok->merge_mask) {
    ClipMergeSlot *slot = &tok->merges[i];
    if (slot->rank < 0 || slot->key == key) {
      slot->key = key;
      slot->rank = rank;
      slot->new_id = new_id;
      return;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Loading */

static char *
read_file (const char *path, const char *what, gsize *len, GError **error)
{
  char *contents = NULL;
  GError *file_error = NULL;

  if (!g_file_get_contents (path, &contents, len, &file_error)) {
    g_set_error (error, CLIP_ERROR,
        g_error_matches (file_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ?
        CLIP_ERROR_NOT_FOUND : CLIP_ERROR_IO,
        "Cannot read the tokenizer %s: %s", what, file_error->message);
    g_error_free (file_error);
    return NULL;
  }
  return contents;
}

static int
line_of (const char *start, const char *p)
{
  int line = 1;
  for (; start < p; start++)
    line += *start == '\n';
  return line;
}

typedef struct {
  const char *path;
  char *start, *p, *end;
} JsonCursor;

static gboolean
json_fail (JsonCursor *j, GError **error, const char *what)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: invalid vocabulary JSON at line %d: %s (expected one object mapping each token "
      "string to an integer id)", j->path, line_of (j->start, j->p), what);
  return FALSE;
}

static void
json_skip_ws (JsonCursor *j)
{
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int
hex4 (const char *p)
{
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value (p[i]);
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Parses the string at j->p (a '"') and unescapes it in place: the result never outgrows the
 * escaped text, so it is NUL-terminated where it lies and needs no copy. */
static char *
json_string (JsonCursor *j, GError **error)
{
  char *w, *s;

  if (j->p >= j->end || *j->p != '"') {
    json_fail (j, error, "a string was expected");
    return NULL;
  }
  s = w = ++j->p;
  while (j->p < j->end) {
    guchar c = *j->p;
    if (c == '"') {
      j->p++;
      *w = '\0';
      return s;
    }
    if (c < 0x20) {
      json_fail (j, error, "control character in a string");
      return NULL;
    }
    if (c != '\\') {
      *w++ = *j->p++;
      continue;
    }
    if (j->end - j->p < 2)
      break;
    switch (j->p[1]) {
      case '"': *w++ = '"'; j->p += 2; break;
      case '\\': *w++ = '\\'; j->p += 2; break;
      case '/': *w++ = '/'; j->p += 2; break;
      case 'b': *w++ = '\b'; j->p += 2; break;
      case 'f': *w++ = '\f'; j->p += 2; break;
      case 'n': *w++ = '\n'; j->p += 2; break;
      case 'r': *w++ = '\r'; j->p += 2; break;
      case 't': *w++ = '\t'; j->p += 2; break;
      case 'u': {
        int u = j->end - j->p >= 6 ? hex4 (j->p + 2) : -1;
        if (u < 0) {
          json_fail (j, error, "bad \\u escape");
          return NULL;
        }
        j->p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
          int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' ?
              hex4 (j->p + 2) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF) {
            json_fail (j, error, "unpaired UTF-16 surrogate in a \\u escape");
            return NULL;
          }
          j->p += 6;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((u >= 0xDC00 && u <= 0xDFFF) || u == 0) {
          json_fail (j, error, u ? "unpaired UTF-16 surrogate in a \\u escape" :
              "\\u0000 in a token");
          return NULL;
        }
        w += g_unichar_to_utf8 (u, w);
        break;
      }
      default:
        json_fail (j, error, "bad escape in a string");
        return NULL;
    }
  }
  json_fail (j, error, "unterminated string");
  return NULL;
}

static gboolean
json_id (JsonCursor *j, const char *token, gint32 *id, GError **error)
{
  const char *digits = j->p;
  gint64 v = 0;

  if (j->p < j->end && *j->p == '-') {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: line %d: the id of token \"%s\" is negative", j->path,
        line_of (j->start, j->p), token);
    return FALSE;
  }
  while (j->p < j->end && g_ascii_isdigit (*j->p)) {
    v = v * 10 + (*j->p - '0');
    if (v > G_MAXINT32 - 1) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: line %d: the id of token \"%s\" is too large", j->path,
          line_of (j->start, j->p), token);
      return FALSE;
    }
    j->p++;
  }
  if (j->p == digits || (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) ||
      (*digits == '0' && j->p - digits > 1)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: line %d: the id of token \"%s\" is not a non-negative integer", j->path,
        line_of (j->start, digits), token);
    return FALSE;
  }
  *id = (gint32) v;
  return TRUE;
}

/* vocab.json: one object {token: id}. Keys point into contents (unescaped in place). The last
 * of repeated keys wins, as in serde_json and Python's json. */
static gboolean
parse_vocab (const char *path, char *contents, gsize len, GHashTable *vocab, int *vocab_size,
             GError **error)
{
  JsonCursor j = { path, contents, contents, contents + len };
  const char *bad;
  gint32 max_id = -1;

  if (!g_utf8_validate (contents, len, &bad)) {
    j.p = (char *) bad;
    return json_fail (&j, error, "not valid UTF-8");
  }
  json_skip_ws (&j);
  if (j.p >= j.end || *j.p != '{')
    return json_fail (&j, error, "the file does not start with '{'");
  j.p++;
  json_skip_ws (&j);
  if (j.p < j.end && *j.p == '}') {
    j.p++;
  } else {
    for (;;) {
      char *token;
      gint32 id;

      json_skip_ws (&j);
      if (!(token = json_string (&j, error)))
        return FALSE;
      json_skip_ws (&j);
      if (j.p >= j.end || *j.p != ':')
        return json_fail (&j, error, "':' was expected after a token");
      j.p++;
      json_skip_ws (&j);
      if (!json_id (&j, token, &id, error))
        return FALSE;
      g_hash_table_insert (vocab, token, GINT_TO_POINTER (id));
      max_id = MAX (max_id, id);
      json_skip_ws (&j);
      if (j.p < j.end && *j.p == ',') {
        j.p++;
        continue;
      }
      if (j.p < j.end && *j.p == '}') {
        j.p++;
        break;
      }
      return json_fail (&j, error, "',' or '}' was expected after an id");
    }
  }
  json_skip_ws (&j);
  if (j.p != j.end)
    return json_fail (&j, error, "text after the closing '}'");
  *vocab_size = max_id + 1;
  return TRUE;
}

static gboolean
vocab_lookup (GHashTable *vocab, const char *token, gint32 *id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (vocab, token, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

/* merges.txt: "#version..." lines are skipped; every other line is "left right" with one
 * space, as `tokenizers` reads it. Rank = index among the merge lines. */
static gboolean
parse_merges (ClipTokenizer *tok, const char *path, char *contents, gsize len,
              GHashTable *vocab, GError **error)
{
  char *line = contents, *end = contents + len;
  GString *joined = g_string_new (NULL);
  const char *bad;
  guint n_lines = 1, capacity = 16;
  gint32 rank = 0;
  int line_no = 0;

  /* g_utf8_validate with a length also refuses NUL bytes, which the line parsing relies on. */
  if (!g_utf8_validate (contents, len, &bad)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: line %d is not valid UTF-8",
        path, line_of (contents, bad));
    goto failed;
  }
  for (const char *p = contents; p < end; p++)
    n_lines += *p == '\n';
  /* Load factor at most 1/2 keeps linear probing short. */
  while (capacity < 2 * n_lines)
    capacity *= 2;
  tok->merges = g_new (ClipMergeSlot, capacity);
  tok->merge_mask = capacity - 1;
  for (guint i = 0; i < capacity; i++)
    tok->merges[i].rank = -1;

  while (line < end) {
    char *eol = memchr (line, '\n', end - line), *next, *space, *right;
    gint32 left_id, right_id, new_id;

    line_no++;
    if (!eol)
      eol = end;
    next = eol + 1;
    if (eol > line && eol[-1] == '\r')
      eol--;
    *eol = '\0';
    if (g_str_has_prefix (line, "#version")) {
      line = next;
      continue;
    }
    space = strchr (line, ' ');
    if (!space || space == line || space[1] == '\0' || strchr (space + 1, ' ')) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: line %d: \"%s\" is not a merge (two tokens separated by one space)",
          path, line_no, line);
      goto failed;
    }
    *space = '\0';
    right = space + 1;
    g_string_assign (joined, line);
    g_string_append (joined, right);
    if (!vocab_lookup (vocab, line, &left_id) || !vocab_lookup (vocab, right, &right_id) ||
        !vocab_lookup (vocab, joined->str, &new_id)) {
      const char *missing = !vocab_lookup (vocab, line, &left_id) ? line :
          !vocab_lookup (vocab, right, &right_id) ? right : joined->str;
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: line %d: merge \"%s %s\" uses token \"%s\", which is not in the vocabulary "
          "(vocab.json and merges.txt must come from the same tokenizer)",
          path, line_no, line, right, missing);
      goto failed;
    }
    merge_insert (tok, left_id, right_id, rank++, new_id);
    line = next;
  }
  /* Without merges every word would be spelt out byte by byte ("a photo of a cat": 14 tokens
   * instead of 5), which no CLIP text tower was trained on: an empty or cut-off file. */
  if (rank == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: no merges (only %d line%s, none a merge): an empty or truncated merges.txt",
        path, line_no, line_no == 1 ? "" : "s");
    goto failed;
  }
  g_string_free (joined, TRUE);
  return TRUE;

failed:
  g_string_free (joined, TRUE);
  return FALSE;
}

/* GPT-2's bytes_to_unicode: bytes that print as themselves (! .. ~, ¡ .. ¬, ® .. ÿ) keep their
 * code point; the other 68 take U+0100, U+0101, ... in byte order. */
static gunichar
byte_to_unicode (guint b)
{
  guint shifted = 0;

  if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
    return b;
  for (guint i = 0; i < b; i++)
    if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF)))
      shifted++;
  return 0x100 + shifted;
}

ClipTokenizer *
clip_tokenizer_load (const char *vocab_json_path, const char *merges_txt_path, GError **error)
{
  ClipTokenizer *tok = NULL;
  GHashTable *vocab = NULL;
  char *vocab_text = NULL, *merges_text = NULL;
  gsize vocab_len, merges_len;

  g_return_val_if_fail (vocab_json_path != NULL, NULL);
  g_return_val_if_fail (merges_txt_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(vocab_text = read_file (vocab_json_path, "vocabulary", &vocab_len, error)))
    goto failed;
  if (!(merges_text = read_file (merges_txt_path, "merges", &merges_len, error)))
    goto failed;

  tok = g_new0 (ClipTokenizer, 1);
  vocab = g_hash_table_new (g_str_hash, g_str_equal);
  if (!parse_vocab (vocab_json_path, vocab_text, vocab_len, vocab, &tok->vocab_size, error))
    goto failed;
  if (!vocab_lookup (vocab, BOS_TOKEN, &tok->bos_id) ||
      !vocab_lookup (vocab, EOS_TOKEN, &tok->eos_id)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: the special token \"%s\" is missing: not a CLIP vocabulary", vocab_json_path,
        vocab_lookup (vocab, BOS_TOKEN, &tok->bos_id) ? EOS_TOKEN : BOS_TOKEN);
    goto failed;
  }
  for (guint b = 0; b < 256; b++) {
    char sym[8 + sizeof END_OF_WORD];
    int n = g_unichar_to_utf8 (byte_to_unicode (b), sym);

    sym[n] = '\0';
    if (!vocab_lookup (vocab, sym, &tok->byte_id[b]))
      tok->byte_id[b] = -1;
    memcpy (sym + n, END_OF_WORD, sizeof END_OF_WORD);
    if (!vocab_lookup (vocab, sym, &tok->byte_eow_id[b]))
      tok->byte_eow_id[b] = -1;
  }
  if (!parse_merges (tok, merges_txt_path, merges_text, merges_len, vocab, error))
    goto failed;

  g_hash_table_unref (vocab);
  g_free (vocab_text);
  g_free (merges_text);
  return tok;

failed:
  if (vocab)
    g_hash_table_unref (vocab);
  g_free (vocab_text);
  g_free (merges_text);
  clip_tokenizer_free (tok);
  return NULL;
}

void
clip_tokenizer_free (ClipTokenizer *tokenizer)
{
  if (!tokenizer)
    return;
  g_free (tokenizer->merges);
  g_free (tokenizer);
}

int32_t
clip_tokenizer_get_bos_id (const ClipTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->bos_id;
}

int32_t
clip_tokenizer_get_eos_id (const ClipTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, -1);
  return tokenizer->eos_id;
}

int
clip_tokenizer_get_vocab_size (const ClipTokenizer *tokenizer)
{
  g_return_val_if_fail (tokenizer != NULL, 0);
  return tokenizer->vocab_size;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding */

typedef struct {
  gint32 rank, pos, left, right, new_id;
} MergeCandidate;

/* Min-heap on (rank, pos): the best-ranked pair first, the leftmost among equals, the order
 * `tokenizers` merges in. */
static inline gboolean
candidate_before (const MergeCandidate *a, const MergeCandidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (MergeCandidate *heap, int *n, MergeCandidate c)
{
  int i = (*n)++;

  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!candidate_before (&c, &heap[parent]))
      break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = c;
}

static MergeCandidate
heap_pop (MergeCandidate *heap, int *n)
{
  MergeCandidate top = heap[0], last = heap[--(*n)];
  int i = 0;

  for (;;) {
    int child = 2 * i + 1;
    if (child >= *n)
      break;
    if (child + 1 < *n && candidate_before (&heap[child + 1], &heap[child]))
      child++;
    if (!candidate_before (&heap[child], &last))
      break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = last;
  return top;
}

static void
push_pair (const ClipTokenizer *tok, MergeCandidate *heap, int *n, const gint32 *sym,
           int left, int right)
{
  const ClipMergeSlot *m = merge_lookup (tok, sym[left], sym[right]);

  if (m)
    heap_push (heap, n, (MergeCandidate) { m->rank, left, sym[left], sym[right], m->new_id });
}

/* BPE of one pre-token (len >= 1 bytes). Symbols live at the byte offset where they start,
 * linked by next/prev; a symbol absorbed into its left neighbour gets id -1. Appends the ids to
 * ids[*n_ids..limit). */
static void
bpe_word (const ClipTokenizer *tok, const guchar *word, int len, int32_t *ids, int *n_ids,
          int limit)
{
  gint32 sym_stack[STACK_WORD_BYTES], next_stack[STACK_WORD_BYTES], prev_stack[STACK_WORD_BYTES];
  MergeCandidate heap_stack[3 * STACK_WORD_BYTES];
  gint32 *sym = sym_stack, *next = next_stack, *prev = prev_stack;
  MergeCandidate *heap = heap_stack;
  int n_heap = 0;

  if (len > STACK_WORD_BYTES) {
    sym = g_new (gint32, 3 * (gsize) len);
    next = sym + len;
    prev = next + len;
    /* Each merge adds at most two candidates to the len - 1 initial ones. */
    heap = g_new (MergeCandidate, 3 * (gsize) len);
  }

  for (int i = 0; i < len; i++) {
    gint32 id = i == len - 1 ? tok->byte_eow_id[word[i]] : tok->byte_id[word[i]];
    sym[i] = id >= 0 ? id : tok->eos_id;
    next[i] = i + 1 < len ? i + 1 : -1;
    prev[i] = i - 1;
  }
  for (int i = 0; i + 1 < len; i++)
    push_pair (tok, heap, &n_heap, sym, i, i + 1);

  while (n_heap > 0) {
    MergeCandidate c = heap_pop (heap, &n_heap);
    int right = next[c.pos];

    /* Stale: the left symbol was absorbed or grew, or its right neighbour changed. */
    if (sym[c.pos] != c.left || right < 0 || sym[right] != c.right)
      continue;
    sym[c.pos] = c.new_id;
    sym[right] = -1;
    next[c.pos] = next[right];
    if (next[right] >= 0)
      prev[next[right]] = c.pos;
    if (prev[c.pos] >= 0)
      push_pair (tok, heap, &n_heap, sym, prev[c.pos], c.pos);
    if (next[c.pos] >= 0)
      push_pair (tok, heap, &n_heap, sym, c.pos, next[c.pos]);
  }

  for (int i = 0; i >= 0 && *n_ids < limit; i = next[i])
    ids[(*n_ids)++] = sym[i];

  if (sym != sym_stack) {
    g_free (sym);
    g_free (heap);
  }
}

/* Applies the pre-tokenizer regex to text[0..len) (normalized, no special tokens) and BPEs
 * each match. Stops once ids[..limit) is full. */
static void
encode_segment (const ClipTokenizer *tok, const char *text, gsize len, int32_t *ids,
                int *n_ids, int limit)
{
  const char *p = text, *end = text + len;

  while (p < end && *n_ids < limit) {
    gunichar c = g_utf8_get_char (p);
    CharClass cls = classify (c);
    const char *start = p;

    p = g_utf8_next_char (p);
    if (cls == CHAR_SPACE)
      continue;
    if (c == '\'' && p < end) {
      /* 's|'t|'re|'ve|'m|'ll|'d come first in the alternation */
      if (*p == 's' || *p == 't' || *p == 'm' || *p == 'd') {
        bpe_word (tok, (const guchar *) start, 2, ids, n_ids, limit);
        p++;
        continue;
      }
      if (end - p >= 2 && ((p[0] == 'r' && p[1] == 'e') || (p[0] == 'v' && p[1] == 'e') ||
              (p[0] == 'l' && p[1] == 'l'))) {
        bpe_word (tok, (const guchar *) start, 3, ids, n_ids, limit);
        p += 2;
        continue;
      }
    }
    if (cls != CHAR_NUMBER) {
      /* [\p{L}]+ or [^\s\p{L}\p{N}]+: extend over the same class */
      while (p < end && classify (g_utf8_get_char (p)) == cls)
        p = g_utf8_next_char (p);
    }
    bpe_word (tok, (const guchar *) start, p - start, ids, n_ids, limit);
  }
}

int
clip_tokenizer_encode (const ClipTokenizer *tokenizer, const char *text, int32_t *ids,
                       int max_ids, GError **error)
{
  const char *bad, *p, *end;
  char *normalized;
  gsize len;
  int n_ids = 0, limit = max_ids - 1;

  g_return_val_if_fail (tokenizer != NULL, -1);
  g_return_val_if_fail (text != NULL, -1);
  g_return_val_if_fail (ids != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (max_ids < 2) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Cannot tokenize into %d ids: BOS and EOS need at least 2", max_ids);
    return -1;
  }
  if (!g_utf8_validate (text, -1, &bad)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Cannot tokenize text that is not valid UTF-8 (bad byte 0x%02x at offset %td)",
        (guchar) *bad, bad - text);
    return -1;
  }

  normalized = normalize (text, &len);
  ids[n_ids++] = tokenizer->bos_id;
  /* The added tokens are matched in the normalized text and split it into segments. */
  for (p = normalized, end = normalized + len; p < end && n_ids < limit;) {
    const char *special = p;
    gint32 special_id = -1;
    gsize special_len = 0;

    while ((special = strstr (special, "<|"))) {
      if (g_str_has_prefix (special, BOS_TOKEN)) {
        special_id = tokenizer->bos_id;
        special_len = strlen (BOS_TOKEN);
        break;
      }
      if (g_str_has_prefix (special, EOS_TOKEN)) {
        special_id = tokenizer->eos_id;
        special_len = strlen (EOS_TOKEN);
        break;
      }
      special += 2;
    }
    if (!special) {
      encode_segment (tokenizer, p, end - p, ids, &n_ids, limit);
      break;
    }
    encode_segment (tokenizer, p, special - p, ids, &n_ids, limit);
    if (n_ids < limit)
      ids[n_ids++] = special_id;
    p = special + special_len;
  }
  ids[n_ids++] = tokenizer->eos_id;
  g_free (normalized);
  return n_ids;
}
