/* fuzz-tokenizer.c — vocab.json, merges.txt and a text to encode with them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is vocab.json, a NUL byte, merges.txt, a NUL byte, then the text (corpus/tokenizer
 * holds a mini tokenizer cut from OpenAI's: its bytes, the first merges and the special tokens).
 * A tokenizer that loads encodes the text, which must come out as BOS, ids of the vocabulary,
 * EOS, within the length asked for.
 */
#include "fuzz-util.h"

#include "clip.h"

static FuzzFile vocab_file, merges_file;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_glib ();
  fuzz_file_init (&vocab_file, "vocab.json");
  fuzz_file_init (&merges_file, "merges.txt");
  return 0;
}

/* Encodes text with max_ids of room and checks the ids; returns their number or -1. */
int fuzz_check_encode (const ClipTokenizer *tok, const char *text, int32_t *ids, int max_ids);

int
fuzz_check_encode (const ClipTokenizer *tok, const char *text, int32_t *ids, int max_ids)
{
  GError *error = NULL;
  int n = clip_tokenizer_encode (tok, text, ids, max_ids, &error);

  if (n < 0) {
    g_assert (error != NULL);
    g_assert (!g_utf8_validate (text, -1, NULL));
    g_error_free (error);
    return -1;
  }
  g_assert_no_error (error);
  g_assert (n >= 2 && n <= max_ids);
  g_assert (ids[0] == clip_tokenizer_get_bos_id (tok));
  g_assert (ids[n - 1] == clip_tokenizer_get_eos_id (tok));
  for (int i = 0; i < n; i++)
    g_assert (ids[i] >= 0 && ids[i] < clip_tokenizer_get_vocab_size (tok));
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *merges, *text;
  size_t merges_size, text_size;
  size_t vocab_size = fuzz_split (data, size, &merges, &merges_size);
  GError *error = NULL;

  if (merges == NULL)
    return 0;
  merges_size = fuzz_split (merges, merges_size, &text, &text_size);
  fuzz_file_set (&vocab_file, data, vocab_size);
  fuzz_file_set (&merges_file, merges, merges_size);

  ClipTokenizer *tok = clip_tokenizer_load (vocab_file.path, merges_file.path, &error);
  if (tok == NULL) {
    g_assert (error != NULL && (strstr (error->message, vocab_file.path) != NULL
                                || strstr (error->message, merges_file.path) != NULL));
    g_error_free (error);
    return 0;
  }
  g_assert (clip_tokenizer_get_vocab_size (tok) > 0);
  /* The text up to its first NUL (a C string), whole and cut short. */
  char *s = g_strndup ((const char *) (text ? text : (const uint8_t *) ""), text ? text_size : 0);
  int32_t ids[80];
  int n = fuzz_check_encode (tok, s, ids, 77);
  if (n > 0) {
    int32_t few[3];
    int m = fuzz_check_encode (tok, s, few, 3);
    g_assert (m == MIN (n, 3));
  }
  g_free (s);
  clip_tokenizer_free (tok);
  return 0;
}
