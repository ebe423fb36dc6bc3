/* fuzz-tokenize.c — any text through OpenAI's real tokenizer, and through the prompt template.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The tokenizer is tests/data/clip-tokenizer (or $CLIP_TOKENIZER_DIR), loaded once. Each input
 * is a text (up to its first NUL; after it, a prompt template to put the text in). Checks: the
 * ids are BOS, vocabulary ids, EOS; a text cut to fewer ids keeps the first ones and EOS last;
 * invalid UTF-8 is an error, never a crash.
 */
#include "fuzz-util.h"

#include "clip.h"

#ifndef FUZZ_TOKENIZER_DIR
#error "FUZZ_TOKENIZER_DIR: tests/data/clip-tokenizer"
#endif

static ClipTokenizer *tokenizer;

static void
free_tokenizer (void)
{
  clip_tokenizer_free (tokenizer);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *dir = g_getenv ("CLIP_TOKENIZER_DIR");
  GError *error = NULL;

  fuzz_init_glib ();
  if (dir == NULL)
    dir = FUZZ_TOKENIZER_DIR;
  char *vocab = g_build_filename (dir, "vocab.json", NULL);
  char *merges = g_build_filename (dir, "merges.txt", NULL);
  tokenizer = clip_tokenizer_load (vocab, merges, &error);
  if (tokenizer == NULL) {
    fprintf (stderr, "fuzz-tokenize: %s (set CLIP_TOKENIZER_DIR)\n", error->message);
    abort ();
  }
  g_free (vocab);
  g_free (merges);
  atexit (free_tokenizer);
  return 0;
}

static int
encode (const char *text, int32_t *ids, int max_ids)
{
  GError *error = NULL;
  int n = clip_tokenizer_encode (tokenizer, text, ids, max_ids, &error);

  if (n < 0) {
    g_assert (error != NULL && !g_utf8_validate (text, -1, NULL));
    g_error_free (error);
    return -1;
  }
  g_assert_no_error (error);
  g_assert (n >= 2 && n <= max_ids);
  g_assert (ids[0] == clip_tokenizer_get_bos_id (tokenizer));
  g_assert (ids[n - 1] == clip_tokenizer_get_eos_id (tokenizer));
  for (int i = 0; i < n; i++)
    g_assert (ids[i] >= 0 && ids[i] < clip_tokenizer_get_vocab_size (tokenizer));
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *rest;
  size_t rest_size, text_size = fuzz_split (data, size, &rest, &rest_size);
  char *text = g_strndup (size > 0 ? (const char *) data : "", text_size);
  int32_t *all = g_new (int32_t, 4096), cut[77];

  int n = encode (text, all, 4096);
  if (n > 0) {
    int m = encode (text, cut, 77);
    g_assert (m == MIN (n, 77));
    /* Truncation keeps the first ids and puts EOS last. */
    g_assert (memcmp (cut, all, (m - 1) * sizeof (int32_t)) == 0);
  }

  if (rest != NULL) {
    GError *error = NULL;
    char *template_ = g_strndup ((const char *) rest, rest_size);
    char *prompt = clip_format_prompt (template_, text, &error);

    if (prompt != NULL) {
      g_assert_no_error (error);
      encode (prompt, all, 4096);
      g_free (prompt);
    } else {
      g_assert (error != NULL);
      g_error_free (error);
    }
    g_free (template_);
  }
  g_free (all);
  g_free (text);
  return 0;
}
