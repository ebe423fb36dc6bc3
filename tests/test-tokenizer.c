/* test-tokenizer.c — the CLIP tokenizer against hand-derivable facts and against
 * tests/reference/clip_tokenizer.py (an independent Python implementation of HF
 * CLIPTokenizerFast's semantics).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Environment (set by tests/meson.build): CLIP_TOKENIZER_DIR (vocab.json, merges.txt of
 * openai/clip-*: tests/data/clip-tokenizer), CLIP_REFERENCE_DIR (tests/reference), PYTHON (Debian's python3 with `regex`).
 */
#include "clip.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#define CONTEXT_LENGTH 77
#define BOS 49406
#define EOS 49407

static ClipTokenizer *tok;
static char *tok_dir;
static char *scratch_dir;

/* ------------------------------------------------------------------------------------------ */
/* helpers */

static GArray *
encode (const ClipTokenizer *t, const char *text, int max_ids)
{
  GArray *ids = g_array_sized_new (FALSE, FALSE, sizeof (int32_t), max_ids);
  GError *error = NULL;
  int n;

  g_array_set_size (ids, max_ids);
  n = clip_tokenizer_encode (t, text, (int32_t *) ids->data, max_ids, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >=, 2);
  g_assert_cmpint (n, <=, max_ids);
  g_array_set_size (ids, n);
  return ids;
}

static char *
ids_to_string (const int32_t *ids, guint n)
{
  GString *s = g_string_new ("[");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", ids[i]);
  g_string_append (s, "]");
  return g_string_free (s, FALSE);
}

static void
assert_ids (const char *text, GArray *got, const int32_t *want, guint n_want)
{
  if (got->len != n_want || memcmp (got->data, want, n_want * sizeof (int32_t)) != 0) {
    char *g = ids_to_string ((const int32_t *) got->data, got->len);
    char *w = ids_to_string (want, n_want);
    char *escaped = g_strescape (text, NULL);
    g_test_message ("text \"%s\"\n  got  %s\n  want %s", escaped, g, w);
    g_free (g);
    g_free (w);
    g_free (escaped);
    g_test_fail ();
  }
}

static void
assert_encodes_to (const char *text, const int32_t *want, guint n_want)
{
  GArray *got = encode (tok, text, CONTEXT_LENGTH);
  assert_ids (text, got, want, n_want);
  g_array_unref (got);
}

static void
assert_same_ids (const char *a, const char *b)
{
  GArray *ia = encode (tok, a, CONTEXT_LENGTH), *ib = encode (tok, b, CONTEXT_LENGTH);
  assert_ids (a, ia, (const int32_t *) ib->data, ib->len);
  g_array_unref (ia);
  g_array_unref (ib);
}

/* Runs the Python reference on texts; returns one GArray of ids per text. */
static GPtrArray *
reference_encode (const char *const *texts, guint n_texts, int max_length)
{
  const char *python = g_getenv ("PYTHON"), *ref_dir = g_getenv ("CLIP_REFERENCE_DIR");
  char *script, *input_path, *max_str, *out = NULL, *err = NULL;
  JsonBuilder *builder = json_builder_new ();
  JsonGenerator *gen = json_generator_new ();
  JsonParser *parser = json_parser_new ();
  GPtrArray *result = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  GError *error = NULL;
  JsonArray *lists;
  JsonNode *root;
  int status;

  g_assert_nonnull (ref_dir);
  script = g_build_filename (ref_dir, "clip_tokenizer.py", NULL);
  input_path = g_build_filename (scratch_dir, "reference-input.json", NULL);
  max_str = g_strdup_printf ("%d", max_length);

  json_builder_begin_array (builder);
  for (guint i = 0; i < n_texts; i++)
    json_builder_add_string_value (builder, texts[i]);
  json_builder_end_array (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, input_path, &error));
  g_assert_no_error (error);

  {
    const char *argv[] = { python ? python : "/usr/bin/python3", script, "--dir", tok_dir,
      "--max-length", max_str, "--input", input_path, NULL };
    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
        &status, &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, &error))
    g_test_message ("reference tokenizer failed:\n%s", err);
  g_assert_no_error (error);

  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  g_assert_no_error (error);
  lists = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (lists), ==, n_texts);
  for (guint i = 0; i < n_texts; i++) {
    JsonArray *list = json_array_get_array_element (lists, i);
    GArray *ids = g_array_new (FALSE, FALSE, sizeof (int32_t));
    for (guint k = 0; k < json_array_get_length (list); k++) {
      int32_t id = json_array_get_int_element (list, k);
      g_array_append_val (ids, id);
    }
    g_ptr_array_add (result, ids);
  }

  g_unlink (input_path);
  json_node_unref (root);
  g_object_unref (builder);
  g_object_unref (gen);
  g_object_unref (parser);
  g_free (script);
  g_free (input_path);
  g_free (max_str);
  g_free (out);
  g_free (err);
  return result;
}

static void
assert_matches_reference (const char *const *texts, guint n_texts, int max_length)
{
  GPtrArray *want = reference_encode (texts, n_texts, max_length);
  guint mismatches = 0;

  for (guint i = 0; i < n_texts; i++) {
    GArray *got = encode (tok, texts[i], max_length), *w = g_ptr_array_index (want, i);
    if (got->len != w->len || memcmp (got->data, w->data, w->len * sizeof (int32_t)) != 0) {
      if (mismatches++ < 10)
        assert_ids (texts[i], got, (const int32_t *) w->data, w->len);
      else
        g_test_fail ();
    }
    g_array_unref (got);
  }
  if (mismatches)
    g_test_message ("%u of %u texts differ from the reference", mismatches, n_texts);
  g_ptr_array_unref (want);
}

static char *
write_scratch (const char *name, const char *contents)
{
  char *path = g_build_filename (scratch_dir, name, NULL);
  GError *error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

/* ------------------------------------------------------------------------------------------ */
/* hand-derivable facts */

static void
test_known_prompts (void)
{
  /* from tests/data/clip-tokenizer/README.md (HF's output for openai/clip-*) */
  const int32_t cat[] = { BOS, 320, 1125, 539, 320, 2368, EOS };
  const int32_t dog[] = { BOS, 320, 1125, 539, 320, 1929, EOS };

  assert_encodes_to ("a photo of a cat", cat, G_N_ELEMENTS (cat));
  assert_encodes_to ("a photo of a dog", dog, G_N_ELEMENTS (dog));
  /* the normalizer: case, whitespace runs, surrounding whitespace */
  assert_encodes_to ("A Photo OF a CAT", cat, G_N_ELEMENTS (cat));
  assert_encodes_to ("  a\tphoto \n\n of\u00a0a\u3000cat \u2003", cat, G_N_ELEMENTS (cat));
}

/* GPT-2's bytes_to_unicode order: the printable bytes ! .. ~ (94), 0xA1 .. 0xAC (12),
 * 0xAE .. 0xFF (82), then the 68 others in ascending order. */
static int
byte_rank (guint b)
{
  int rank = 0;

  if (b >= 0x21 && b <= 0x7E)
    return b - 0x21;
  if (b >= 0xA1 && b <= 0xAC)
    return 94 + b - 0xA1;
  if (b >= 0xAE)
    return 106 + b - 0xAE;
  for (guint i = 0; i < b; i++)
    rank += !((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE);
  return 188 + rank;
}

static void
test_vocab_layout (void)
{
  g_assert_cmpint (clip_tokenizer_get_bos_id (tok), ==, BOS);
  g_assert_cmpint (clip_tokenizer_get_eos_id (tok), ==, EOS);
  g_assert_cmpint (clip_tokenizer_get_vocab_size (tok), ==, 49408);

  /* A one-byte word is one symbol (no merge applies): byte + "</w>", ids 256..511. Letters,
   * digits and punctuation each form a word of their own here; control bytes other than the
   * whitespace ones are punctuation to the pre-tokenizer. */
  for (guint b = 1; b < 0x80; b++) {
    char text[2] = { (char) b, '\0' };
    guint expected_byte = (b >= 'A' && b <= 'Z') ? b + 32 : b;
    if (b == ' ' || (b >= '\t' && b <= '\r'))
      continue;
    {
      const int32_t want[] = { BOS, 256 + byte_rank (expected_byte), EOS };
      assert_encodes_to (text, want, 3);
    }
  }
  {
    const int32_t want[] = { BOS, 320, EOS };       /* README: vocab["a</w>"] == 320 */
    assert_encodes_to ("a", want, 3);
  }
  {
    const int32_t want[] = { BOS, 256 + 188 + 33, EOS }; /* DEL: 0x00..0x20 come first */
    g_assert_cmpint (byte_rank (0x7F), ==, 188 + 33);
    assert_encodes_to ("\x7f", want, 3);
  }
  /* Every whitespace character vanishes. */
  {
    const int32_t want[] = { BOS, EOS };
    assert_encodes_to (" \t\n\v\f\r\xc2\x85" "\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
        want, 2);
  }
}

static void
test_empty (void)
{
  const int32_t want[] = { BOS, EOS };

  assert_encodes_to ("", want, 2);
  assert_encodes_to ("   ", want, 2);
  assert_encodes_to ("\t\n \u00a0\u3000\u2003", want, 2);
}

/* A tiny tokenizer whose every output can be worked out by hand. */
static ClipTokenizer *
tiny_tokenizer (const char *merges)
{
  /* Escapes in keys (\u0061 is "a") and ids out of order exercise the JSON reader. */
  char *vocab_path = write_scratch ("tiny-vocab.json",
      "{ \"<|startoftext|>\": 0, \"<|endoftext|>\": 1,\n"
      "  \"\\u0061\": 2, \"b\": 3, \"a</w>\": 4, \"b</w>\": 5, \"ab</w>\": 7, \"ab\": 6,\n"
      "  \"aa\": 8, \"aa</w>\": 9, \"aab</w>\": 10, \"\\u0022</w>\": 11, \"\\/</w>\": 12 }\n");
  char *merges_path = write_scratch ("tiny-merges.txt", merges);
  GError *error = NULL;
  ClipTokenizer *t = clip_tokenizer_load (vocab_path, merges_path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (t);
  g_free (vocab_path);
  g_free (merges_path);
  return t;
}

static void
assert_tiny (const ClipTokenizer *t, const char *text, const int32_t *want, guint n_want)
{
  GArray *got = encode (t, text, 16);
  assert_ids (text, got, want, n_want);
  g_array_unref (got);
}

static void
test_bpe_by_hand (void)
{
  ClipTokenizer *t = tiny_tokenizer ("#version: 0.2\na a\na b</w>\naa b</w>\na a</w>\n");

  g_assert_cmpint (clip_tokenizer_get_bos_id (t), ==, 0);
  g_assert_cmpint (clip_tokenizer_get_eos_id (t), ==, 1);
  g_assert_cmpint (clip_tokenizer_get_vocab_size (t), ==, 13);
  {
    const int32_t want[] = { 0, 7, 1 };           /* a + b</w> -> ab</w> */
    assert_tiny (t, "ab", want, 3);
  }
  {
    const int32_t want[] = { 0, 10, 1 };          /* a a (rank 0), then aa b</w> (rank 2) */
    assert_tiny (t, "AAB", want, 3);
  }
  {
    /* a a a a</w>: the leftmost (a, a) merges first and consumes the second a, leaving
     * aa a a</w>; then a a</w> (rank 3) -> aa aa</w> */
    const int32_t want[] = { 0, 8, 9, 1 };
    assert_tiny (t, "aaaa", want, 4);
  }
  {
    const int32_t want[] = { 0, 8, 4, 1 };        /* a a a</w> -> aa a</w> (rank 0 < 3) */
    assert_tiny (t, "aaa", want, 4);
  }
  {
    /* "b a" are two words; 'c' is not in this vocab: HF's unk, <|endoftext|> */
    const int32_t want[] = { 0, 5, 4, 1, 1 };
    assert_tiny (t, "b a c", want, 5);
  }
  {
    const int32_t want[] = { 0, 11, 12, 1 };      /* escaped keys: \u0022 is ", \/ is / */
    assert_tiny (t, "\" /", want, 4);
  }
  clip_tokenizer_free (t);
}

static void
test_normalization (void)
{
  /* NFC: decomposed and precomposed accents are the same text */
  assert_same_ids ("cafe\u0301", "caf\u00e9");
  assert_same_ids ("A\u030a", "\u00e5");
  assert_same_ids ("n\u0303o", "\u00f1o");
  /* Unicode lowercase of the common accented capitals */
  assert_same_ids ("CAF\u00c9", "caf\u00e9");
  assert_same_ids ("\u00c0\u00c9\u00ce\u00d5\u00dc\u00c7\u00d1", "\u00e0\u00e9\u00ee\u00f5\u00fc\u00e7\u00f1");
  assert_same_ids ("\u0414\u041e\u041c", "\u0434\u043e\u043c");   /* ДОМ */
  assert_same_ids ("STRASSE \u1e9e", "strasse \u00df");             /* ẞ -> ß */
  /* Rust's char::to_lowercase, one character at a time: no final sigma, and İ becomes i +
   * U+0307 (SpecialCasing), not the 'i' of g_unichar_tolower */
  assert_same_ids ("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c3");
  assert_same_ids ("\u0130stanbul", "i\u0307stanbul");
  /* Letters that are not Lu: Roman numerals (Nl) and circled letters (So) lowercase too */
  assert_same_ids ("\u216b", "\u217b");
  assert_same_ids ("\u24b6\u24cf", "\u24d0\u24e9");
  /* Whitespace runs of any kind are one space, and spaces separate words */
  assert_same_ids ("hot\u2003\u2003dog", "hot dog");
  assert_same_ids ("hot\r\n\tdog", "hot dog");
}

static void
test_special_tokens (void)
{
  /* <|startoftext|>/<|endoftext|> are added tokens matched after normalization */
  const int32_t want[] = { BOS, 320, EOS, 320, BOS, EOS };

  assert_encodes_to ("a<|endoftext|>a <|STARTOFTEXT|>", want, G_N_ELEMENTS (want));
}

static void
test_truncation (void)
{
  GString *long_text = g_string_new (NULL);
  GArray *full, *cut;
  int32_t ids[3];
  GError *error = NULL;

  for (int i = 0; i < 100; i++)
    g_string_append_printf (long_text, "word%d, ", i);
  full = encode (tok, long_text->str, 4096);
  g_assert_cmpuint (full->len, >, CONTEXT_LENGTH);
  cut = encode (tok, long_text->str, CONTEXT_LENGTH);
  g_assert_cmpuint (cut->len, ==, CONTEXT_LENGTH);
  /* the first 75 tokens, then EOS */
  g_assert_cmpmem (cut->data, (CONTEXT_LENGTH - 1) * sizeof (int32_t), full->data,
      (CONTEXT_LENGTH - 1) * sizeof (int32_t));
  g_assert_cmpint (g_array_index (cut, int32_t, CONTEXT_LENGTH - 1), ==, EOS);

  g_assert_cmpint (clip_tokenizer_encode (tok, "a photo of a cat", ids, 2, &error), ==, 2);
  g_assert_no_error (error);
  g_assert_cmpint (ids[0], ==, BOS);
  g_assert_cmpint (ids[1], ==, EOS);
  g_assert_cmpint (clip_tokenizer_encode (tok, "a photo of a cat", ids, 3, &error), ==, 3);
  g_assert_cmpint (ids[1], ==, 320);
  g_assert_cmpint (ids[2], ==, EOS);
  /* an added token in the middle counts like any other token */
  g_assert_cmpint (clip_tokenizer_encode (tok, "<|endoftext|> cat", ids, 3, &error), ==, 3);
  g_assert_cmpint (ids[1], ==, EOS);
  g_assert_cmpint (ids[2], ==, EOS);

  g_array_unref (full);
  g_array_unref (cut);
  g_string_free (long_text, TRUE);
}

static void
test_invalid_input (void)
{
  const char *bad[] = { "\xff", "abc\xc3", "\xc0\xaf", "\xed\xa0\x80", "ok \xf4\x90\x80\x80" };
  int32_t ids[CONTEXT_LENGTH];

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    GError *error = NULL;
    g_assert_cmpint (clip_tokenizer_encode (tok, bad[i], ids, CONTEXT_LENGTH, &error), ==, -1);
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "UTF-8"));
    g_error_free (error);
  }
  {
    GError *error = NULL;
    g_assert_cmpint (clip_tokenizer_encode (tok, "cat", ids, 1, &error), ==, -1);
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT);
    g_error_free (error);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* parity with the Python reference */

static const char *const parity_cases[] = {
  "a photo of a cat", "a photo of a dog.", "A PHOTO OF A DOG!", "golden retriever",
  /* contractions */
  "it's", "we'll", "I'D", "they're here", "we've", "I'm", "can't", "don\u2019t", "rock 'n' roll",
  "'s'", "''s", "it''s", "ol'", "'", "''", "'re'", "'ll've", "y'all'd've", "O'NEIL'S",
  /* digits */
  "2024", "3.14", "1,000,000", "v2.0-rc1", "4k60fps", "\u0661\u0662\u0663", "\u00bd cup", "x\u00b2",
  /* punctuation runs */
  "!!!", "...", "\"hello,\"", "?!?!", "--", "(a)", "[cat]", "#hashtag", "@user", "a&b",
  "e-mail", "c++", "~~~", "<html>", "<|notspecial|>", "<|endoftext", "<<|endoftext|>>",
  "hi!<|endoftext|>!", "<|ENDOFTEXT|>", "<|startoftext|><|endoftext|>",
  /* whitespace */
  "\ttabbed\tlabel\t", "new\nline", "nbsp\u00a0here", "ideographic\u3000space", "em\u2003space",
  "   leading and trailing   ", "zero\u200bwidth", "nel\xc2\x85" "next", "vt\vff\f",
  /* accents and case */
  "cafe\u0301", "caf\u00e9", "CAF\u00c9", "na\u00efve r\u00e9sum\u00e9", "Stra\u00dfe",
  "\u0130stanbul", "\u0399\u03a3\u03a4\u039f\u03a3", "\u1e9e", "\u01c5", "\u212a\u212b",
  "\u2160\u2161 \u24b6", "\u00c5ngstr\u00f6m", "Ma\u00f1ana", "A\u030a", "\u1e0d\u0307",
  /* scripts */
  "\u732b\u306e\u5199\u771f", "\u4e00\u53ea\u72d7", "\uc548\ub155\ud558\uc138\uc694",
  "\u1100\u1161\u11a8", "\u041a\u043e\u0448\u043a\u0430", "\u05e9\u05dc\u05d5\u05dd",
  "\u0645\u0631\u062d\u0628\u0627", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
  "\u10e1\u10d0\u10e5\u10d0\u10e0\u10d7\u10d5\u10d4\u10da\u10dd", "caf\u00e9 \u732b cat \u041a\u043e\u0442",
  /* emoji, ZWJ sequences, flags, modifiers, variation selectors */
  "\U0001f431", "\U0001f436\U0001f431", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
  "\U0001f1eb\U0001f1f7", "\U0001f44d\U0001f3fd", "\u2764\ufe0f", "cat\U0001f431dog",
  "\U0001d400\U0001d401", "\U00020000",
  /* labels and prompts */
  "a photo of a hot dog, a type of food.", "dog, cat, bird", "traffic light", "t-shirt",
  "person riding a bicycle", "a photo of a {}.", "\u00bfqu\u00e9?", "\u00a1hola!",
  "\x01\x02\x7f control", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
  "", " ", "\t\n",
};

static void
test_parity_cases (void)
{
  assert_matches_reference (parity_cases, G_N_ELEMENTS (parity_cases), CONTEXT_LENGTH);
}

static void
test_parity_long (void)
{
  GString *s = g_string_new (NULL);
  const char *texts[3];

  for (int i = 0; i < 40; i++)
    g_string_append (s, "the quick brown fox jumps over the lazy dog; ");
  texts[0] = s->str;
  texts[1] = "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z, "
      "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z";
  texts[2] = "\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431"
      "\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431"
      "\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431\U0001f431";
  assert_matches_reference (texts, G_N_ELEMENTS (texts), CONTEXT_LENGTH);
  assert_matches_reference (texts, G_N_ELEMENTS (texts), 3);
  assert_matches_reference (texts, G_N_ELEMENTS (texts), 4096);
  g_string_free (s, TRUE);
}

/* The code points of first..last that the reference's Unicode tables leave unassigned (a set of
 * GUINT_TO_POINTER (code point)). */
static GHashTable *
reference_unassigned (gunichar first, gunichar last)
{
  const char *python = g_getenv ("PYTHON"), *ref_dir = g_getenv ("CLIP_REFERENCE_DIR");
  char *script = g_build_filename (ref_dir, "clip_tokenizer.py", NULL);
  char *first_str = g_strdup_printf ("%04X", first), *last_str = g_strdup_printf ("%04X", last);
  const char *argv[] = { python ? python : "/usr/bin/python3", script, "--dir", tok_dir,
    "--unassigned", first_str, last_str, NULL };
  char *out = NULL;
  GError *error = NULL;
  JsonParser *parser = json_parser_new ();
  GHashTable *set = g_hash_table_new (NULL, NULL);
  JsonArray *list;
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status,
      &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  g_assert_no_error (error);
  list = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < json_array_get_length (list); i++)
    g_hash_table_add (set, GUINT_TO_POINTER ((guint) json_array_get_int_element (list, i)));
  g_object_unref (parser);
  g_free (out);
  g_free (script);
  g_free (first_str);
  g_free (last_str);
  return set;
}

/* Every code point of the BMP and a few supplementary blocks, in runs of 64: once glued (letter
 * runs, composition, long words) and once space-separated (each character alone). A code point
 * that GLib's Unicode tables assign and the reference's do not (or the other way round) is left
 * out: the two follow Unicode at their own versions (Debian 13's GLib has Unicode 16, its
 * Python 15.1), and a character one of them has never heard of is no tokenizer difference. */
static void
test_parity_sweep (void)
{
  static const gunichar planes[][2] = {
    { 0x0001, 0xFFFF }, { 0x10000, 0x1007F }, { 0x1D400, 0x1D7FF }, { 0x1F000, 0x1FAFF },
    { 0x20000, 0x2003F }, { 0xE0000, 0xE007F },
  };
  GPtrArray *texts = g_ptr_array_new_with_free_func (g_free);
  guint n_swept = 0, n_skew = 0;

  for (guint r = 0; r < G_N_ELEMENTS (planes); r++) {
    GHashTable *ref_unassigned = reference_unassigned (planes[r][0], planes[r][1]);

    for (gunichar base = planes[r][0]; base <= planes[r][1]; base += 64) {
      GString *glued = g_string_new (NULL), *spaced = g_string_new (NULL);
      for (gunichar c = base; c < base + 64 && c <= planes[r][1]; c++) {
        gboolean glib_unassigned = g_unichar_type (c) == G_UNICODE_UNASSIGNED;

        if ((c >= 0xD800 && c <= 0xDFFF) || !g_unichar_validate (c))
          continue;
        if (glib_unassigned != g_hash_table_contains (ref_unassigned, GUINT_TO_POINTER (c))) {
          n_skew++;
          continue;
        }
        n_swept++;
        g_string_append_unichar (glued, c);
        g_string_append_unichar (spaced, c);
        g_string_append_c (spaced, ' ');
      }
      g_ptr_array_add (texts, g_string_free (glued, FALSE));
      g_ptr_array_add (texts, g_string_free (spaced, FALSE));
    }
    g_hash_table_unref (ref_unassigned);
  }
  g_test_message ("%u code points swept, %u left out: assigned in only one of GLib's and the "
                  "reference's Unicode tables", n_swept, n_skew);
  /* a version skew, not a different Unicode: a few hundred characters at most */
  g_assert_cmpuint (n_skew, <, n_swept / 50);
  assert_matches_reference ((const char *const *) texts->pdata, texts->len, 1024);
  g_ptr_array_unref (texts);
}

/* ------------------------------------------------------------------------------------------ */
/* concurrency and speed */

typedef struct {
  GPtrArray *expected;
  gboolean ok;
} ThreadCheck;

static gpointer
encode_all (gpointer data)
{
  ThreadCheck *check = data;

  check->ok = TRUE;
  for (int round = 0; round < 50; round++) {
    for (guint i = 0; i < G_N_ELEMENTS (parity_cases); i++) {
      int32_t ids[CONTEXT_LENGTH];
      GArray *want = g_ptr_array_index (check->expected, i);
      int n = clip_tokenizer_encode (tok, parity_cases[i], ids, CONTEXT_LENGTH, NULL);
      if (n != (int) want->len || memcmp (ids, want->data, n * sizeof (int32_t)) != 0)
        check->ok = FALSE;
    }
  }
  return NULL;
}

static void
test_concurrency (void)
{
  GPtrArray *expected = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  ThreadCheck checks[6];
  GThread *threads[6];

  for (guint i = 0; i < G_N_ELEMENTS (parity_cases); i++)
    g_ptr_array_add (expected, encode (tok, parity_cases[i], CONTEXT_LENGTH));
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++) {
    checks[t].expected = expected;
    threads[t] = g_thread_new ("encode", encode_all, &checks[t]);
  }
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++) {
    g_thread_join (threads[t]);
    g_assert_true (checks[t].ok);
  }
  g_ptr_array_unref (expected);
}

/* Encoding the same labels many times over gives the same ids every time (no state carried
 * from one call to the next). Speed is measured by the benchmarks, not judged here. */
static void
test_repeated_encoding (void)
{
  const char *labels[] = { "a photo of a golden retriever.", "a photo of a traffic light.",
    "a photo of a person riding a bicycle.", "a photo of a caf\u00e9." };
  GArray *first[G_N_ELEMENTS (labels)];

  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    first[i] = encode (tok, labels[i], CONTEXT_LENGTH);
  for (int r = 0; r < 2000; r++) {
    for (guint i = 0; i < G_N_ELEMENTS (labels); i++) {
      GArray *again = encode (tok, labels[i], CONTEXT_LENGTH);
      assert_ids (labels[i], again, (const int32_t *) (void *) first[i]->data, first[i]->len);
      g_array_unref (again);
    }
  }
  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    g_array_unref (first[i]);
}

/* Loading the files again gives a tokenizer that encodes exactly as the first. */
static void
test_reload (void)
{
  char *vocab = g_build_filename (tok_dir, "vocab.json", NULL);
  char *merges = g_build_filename (tok_dir, "merges.txt", NULL);

  for (int i = 0; i < 2; i++) {
    GError *error = NULL;
    ClipTokenizer *t = clip_tokenizer_load (vocab, merges, &error);

    g_assert_no_error (error);
    g_assert_cmpint (clip_tokenizer_get_vocab_size (t), ==, clip_tokenizer_get_vocab_size (tok));
    for (guint c = 0; c < G_N_ELEMENTS (parity_cases); c++) {
      GArray *want = encode (tok, parity_cases[c], CONTEXT_LENGTH);
      GArray *got = encode (t, parity_cases[c], CONTEXT_LENGTH);
      assert_ids (parity_cases[c], got, (const int32_t *) (void *) want->data, want->len);
      g_array_unref (want);
      g_array_unref (got);
    }
    clip_tokenizer_free (t);
  }
  g_free (vocab);
  g_free (merges);
}

/* ------------------------------------------------------------------------------------------ */
/* load errors */

static void
assert_load_error (const char *vocab, const char *merges, int code, const char *must_name,
                   const char *must_say)
{
  GError *error = NULL;
  ClipTokenizer *t = clip_tokenizer_load (vocab, merges, &error);

  g_assert_null (t);
  g_assert_error (error, CLIP_ERROR, code);
  if (!strstr (error->message, must_name) || (must_say && !strstr (error->message, must_say))) {
    g_test_message ("message \"%s\" should name \"%s\"%s%s", error->message, must_name,
        must_say ? " and say " : "", must_say ? must_say : "");
    g_test_fail ();
  }
  g_error_free (error);
}

static void
test_missing_files (void)
{
  char *vocab = g_build_filename (tok_dir, "vocab.json", NULL);
  char *merges = g_build_filename (tok_dir, "merges.txt", NULL);
  char *nowhere = g_build_filename (scratch_dir, "no-such-file.json", NULL);

  assert_load_error (nowhere, merges, CLIP_ERROR_NOT_FOUND, nowhere, NULL);
  assert_load_error (vocab, nowhere, CLIP_ERROR_NOT_FOUND, nowhere, NULL);
  /* a directory exists but cannot be read as a file */
  assert_load_error (scratch_dir, merges, CLIP_ERROR_IO, scratch_dir, NULL);
  if (getuid () != 0) {
    char *locked = write_scratch ("locked.json", "{}");
    g_chmod (locked, 0);
    assert_load_error (locked, merges, CLIP_ERROR_IO, locked, NULL);
    g_free (locked);
  }
  g_free (vocab);
  g_free (merges);
  g_free (nowhere);
}

static void
test_corrupt_vocab (void)
{
  static const struct {
    const char *json, *says;
  } cases[] = {
    { "", "'{'" },
    { "hello", "'{'" },
    { "[\"a\", \"b\"]", "'{'" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1", "'}'" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1,}", "string" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1} x", "after" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": \"1\"}", "<|endoftext|>" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1.5}", "integer" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1e3}", "integer" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": -1}", "negative" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": null}", "integer" },
    { "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 99999999999}", "too large" },
    { "{\"<|startoftext|>\" 0}", "':'" },
    { "{\"<|startoftext|>\": 0, \"unterminated: 1}", "unterminated" },
    { "{\"<|startoftext|>\": 0, \"\\ud800\": 1}", "surrogate" },
    { "{\"<|startoftext|>\": 0, \"\\q\": 1}", "escape" },
    { "{\"<|startoftext|>\": 0, \"\xff\": 1}", "UTF-8" },
    { "{\"<|startoftext|>\": 0, \"a\": 1}", "<|endoftext|>" },
    { "{\"a\": 0, \"<|endoftext|>\": 1}", "<|startoftext|>" },
    { "{}", "<|startoftext|>" },
  };
  char *merges = write_scratch ("empty-merges.txt", "#version: 0.2\n");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *vocab = write_scratch ("corrupt-vocab.json", cases[i].json);
    assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, vocab, cases[i].says);
    g_free (vocab);
  }
  /* nesting: the hand-written parser takes one flat object and never recurses, so a deep file
   * is an ordinary error (json-glib's recursive parser, used for the other files, would overflow
   * the stack) */
  {
    gsize depth = 1000000;
    GString *json = g_string_new ("{\"<|startoftext|>\": ");
    char *vocab;
    for (gsize i = 0; i < depth; i++)
      g_string_append_c (json, '[');
    for (gsize i = 0; i < depth; i++)
      g_string_append_c (json, ']');
    g_string_append (json, ", \"<|endoftext|>\": 1}");
    vocab = write_scratch ("nested-vocab.json", json->str);
    assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, vocab, "integer");
    g_free (vocab);
    g_string_free (json, TRUE);
  }
  /* the real file, cut short */
  {
    char *real_path = g_build_filename (tok_dir, "vocab.json", NULL), *contents, *vocab;
    gsize len;
    g_assert_true (g_file_get_contents (real_path, &contents, &len, NULL));
    contents[len / 2] = '\0';
    vocab = write_scratch ("cut-vocab.json", contents);
    assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, vocab, NULL);
    g_free (vocab);
    g_free (contents);
    g_free (real_path);
  }
  g_free (merges);
}

static void
test_corrupt_merges (void)
{
  static const struct {
    const char *merges, *says;
  } cases[] = {
    { "#version: 0.2\na b</w>\na b c\n", "line 3" },
    { "#version: 0.2\na\n", "line 2" },
    { "#version: 0.2\na  b\n", "line 2" },
    { "#version: 0.2\n a\n", "line 2" },
    { "#version: 0.2\n\na b\n", "line 2" },
    { "#version: 0.2\na a\nb a\n", "\"ba\"" },          /* the merge's token is missing */
    { "#version: 0.2\nzz a\n", "\"zz\"" },              /* a half is missing */
    { "a a\n\xff b\n", "line 2" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *vocab = write_scratch ("corrupt-vocab.json",
        "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a\": 2, \"b\": 3, \"b</w>\": 4, "
        "\"aa\": 5, \"ab</w>\": 6}");
    char *merges = write_scratch ("corrupt-merges.txt", cases[i].merges);
    assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, merges, cases[i].says);
    g_free (vocab);
    g_free (merges);
  }
  /* a merges.txt with no merges (empty, or the version line alone) would spell every word out
   * byte by byte: refused, naming the file */
  {
    static const char *no_merges[] = { "", "#version: 0.2\n", "#version: 0.2\r\n",
      "#version: 0.2" };
    char *vocab = write_scratch ("corrupt-vocab.json",
        "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a\": 2, \"b\": 3, \"b</w>\": 4, "
        "\"aa\": 5, \"ab</w>\": 6}");
    for (guint i = 0; i < G_N_ELEMENTS (no_merges); i++) {
      char *merges = write_scratch ("no-merges.txt", no_merges[i]);
      assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, merges, "no merges");
      g_free (merges);
    }
    g_free (vocab);
  }
  /* the real vocabulary with an empty merges.txt: "a photo of a cat" would have come out as
   * 14 byte tokens */
  {
    char *vocab = g_build_filename (tok_dir, "vocab.json", NULL);
    char *merges = write_scratch ("empty-merges.txt", "");
    assert_load_error (vocab, merges, CLIP_ERROR_CORRUPT, merges, "no merges");
    g_free (vocab);
    g_free (merges);
  }
  /* CRLF line ends and a missing final newline are fine */
  {
    char *vocab = write_scratch ("ok-vocab.json",
        "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a\": 2, \"b\": 3, \"b</w>\": 4, "
        "\"aa\": 5, \"ab</w>\": 6}");
    char *merges = write_scratch ("ok-merges.txt", "#version: 0.2\r\na a\r\na b</w>");
    GError *error = NULL;
    ClipTokenizer *t = clip_tokenizer_load (vocab, merges, &error);
    const int32_t want[] = { 0, 6, 1 };
    g_assert_no_error (error);
    assert_tiny (t, "ab", want, 3);
    clip_tokenizer_free (t);
    g_free (vocab);
    g_free (merges);
  }
}

/* ------------------------------------------------------------------------------------------ */

static void
remove_scratch (void)
{
  GDir *dir = g_dir_open (scratch_dir, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    char *path = g_build_filename (scratch_dir, name, NULL);
    g_unlink (path);
    g_free (path);
  }
  if (dir)
    g_dir_close (dir);
  g_rmdir (scratch_dir);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  char *vocab, *merges;
  int ret;

  g_test_init (&argc, &argv, NULL);

  tok_dir = g_strdup (g_getenv ("CLIP_TOKENIZER_DIR"));
  if (!tok_dir) {
    g_printerr ("CLIP_TOKENIZER_DIR is not set (meson test sets it)\n");
    return 1;
  }
  scratch_dir = g_dir_make_tmp ("clip-test-tokenizer-XXXXXX", &error);
  g_assert_no_error (error);
  vocab = g_build_filename (tok_dir, "vocab.json", NULL);
  merges = g_build_filename (tok_dir, "merges.txt", NULL);
  tok = clip_tokenizer_load (vocab, merges, &error);
  g_assert_no_error (error);

  g_test_add_func ("/tokenizer/known-prompts", test_known_prompts);
  g_test_add_func ("/tokenizer/vocab-layout", test_vocab_layout);
  g_test_add_func ("/tokenizer/empty", test_empty);
  g_test_add_func ("/tokenizer/bpe-by-hand", test_bpe_by_hand);
  g_test_add_func ("/tokenizer/normalization", test_normalization);
  g_test_add_func ("/tokenizer/special-tokens", test_special_tokens);
  g_test_add_func ("/tokenizer/truncation", test_truncation);
  g_test_add_func ("/tokenizer/invalid-input", test_invalid_input);
  g_test_add_func ("/tokenizer/parity/cases", test_parity_cases);
  g_test_add_func ("/tokenizer/parity/long", test_parity_long);
  g_test_add_func ("/tokenizer/parity/unicode-sweep", test_parity_sweep);
  g_test_add_func ("/tokenizer/concurrency", test_concurrency);
  g_test_add_func ("/tokenizer/repeated-encoding", test_repeated_encoding);
  g_test_add_func ("/tokenizer/reload", test_reload);
  g_test_add_func ("/tokenizer/errors/missing-files", test_missing_files);
  g_test_add_func ("/tokenizer/errors/corrupt-vocab", test_corrupt_vocab);
  g_test_add_func ("/tokenizer/errors/corrupt-merges", test_corrupt_merges);

  ret = g_test_run ();

  clip_tokenizer_free (tok);
  remove_scratch ();
  g_free (scratch_dir);
  g_free (tok_dir);
  g_free (vocab);
  g_free (merges);
  return ret;
}
