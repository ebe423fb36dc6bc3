/* fuzz-safetensors.c — model.safetensors: the header, the tensor table, and a model that loads.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is a whole model.safetensors file. It is opened on its own (header JSON, offsets,
 * dtypes, shapes: every tensor the table lists is looked up by name and, when small, converted
 * to f32), then loaded as the weights of the mini model in tests/fuzz/model (config.json,
 * tokenizer, preprocessor_config.json; corpus/safetensors holds its real weights in every dtype).
 * Whatever loads runs both towers and the scoring, single-threaded: a damaged model that loads
 * must run. A crash, an ASan/UBSan report or a GLib critical is a finding.
 */
#include "fuzz-util.h"

#include "clip.h"
#include "safetensors.h"

#include <glib/gstdio.h>

#ifndef FUZZ_MODEL_DIR
#error "FUZZ_MODEL_DIR: the directory of the mini model's config and tokenizer files"
#endif

static FuzzFile weights;
static char *model_dir;

static void
remove_model_dir (void)
{
  static const char *const names[] = { "config.json", "preprocessor_config.json", "vocab.json",
                                       "merges.txt", "model.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *path = g_build_filename (model_dir, names[i], NULL);
    g_unlink (path);
    g_free (path);
  }
  g_rmdir (model_dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char *const names[] = { "config.json", "preprocessor_config.json", "vocab.json",
                                       "merges.txt" };
  const char *source = g_getenv ("CLIP_FUZZ_MODEL_DIR");
  GError *error = NULL;
  char *link;

  fuzz_init_glib ();
  if (source == NULL)
    source = FUZZ_MODEL_DIR;
  fuzz_file_init (&weights, "model.safetensors");
  /* The model directory: links to the mini model's files, and model.safetensors to the memory
   * file each input replaces. */
  model_dir = g_dir_make_tmp ("clip-fuzz-model-XXXXXX", &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    char *target = g_build_filename (source, names[i], NULL);
    link = g_build_filename (model_dir, names[i], NULL);
    if (!g_file_test (target, G_FILE_TEST_IS_REGULAR) || symlink (target, link) != 0) {
      fprintf (stderr, "fuzz-safetensors: cannot link %s (set CLIP_FUZZ_MODEL_DIR)\n", target);
      abort ();
    }
    g_free (target);
    g_free (link);
  }
  link = g_build_filename (model_dir, "model.safetensors", NULL);
  if (symlink (weights.path, link) != 0)
    abort ();
  g_free (link);
  atexit (remove_model_dir);
  return 0;
}

/* The header and the table on their own, as any reader of the file sees them. */
static void
walk_table (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  ClipSafetensors *st = clip_safetensors_open (weights.path, &error);

  if (st == NULL) {
    g_assert (error != NULL && error->message[0] != '\0');
    g_error_free (error);
    return;
  }
  size_t file_size = clip_safetensors_get_file_size (st);
  int n = clip_safetensors_get_n_tensors (st);
  /* The data section follows the 8-byte length and the header. */
  g_assert (file_size == size && size >= 8);
  guint64 header_len = 0;
  for (int b = 7; b >= 0; b--)
    header_len = header_len << 8 | data[b];
  g_assert (header_len <= size - 8);
  const uint8_t *lowest = NULL, *highest = NULL;
  for (int i = 0; i < n; i++) {
    const ClipTensorInfo *t = clip_safetensors_get_tensor (st, i);

    g_assert (t != NULL && t->name != NULL && t->dtype_name != NULL);
    g_assert (clip_safetensors_find (st, t->name) == t);
    g_assert (t->n_dims >= 0 && t->n_dims <= CLIP_SAFETENSORS_MAX_DIMS);
    g_assert (t->n_bytes <= file_size);
    if (t->n_bytes > 0) {
      const uint8_t *begin = t->data, *end = begin + t->n_bytes;
      lowest = lowest == NULL || begin < lowest ? begin : lowest;
      highest = highest == NULL || end > highest ? end : highest;
    }
    if ((t->dtype == CLIP_DTYPE_F32 || t->dtype == CLIP_DTYPE_F16 || t->dtype == CLIP_DTYPE_BF16)
        && t->n_elements <= 1 << 16) {
      float *out = g_new (float, MAX (t->n_elements, 1));
      volatile float sink = 0;

      g_assert (clip_tensor_to_f32 (t, out));
      for (int64_t e = 0; e < t->n_elements; e++)
        sink += out[e];
      (void) sink;
      g_free (out);
    }
  }
  /* Every tensor lies within one data section's length of the others. */
  if (lowest != NULL)
    g_assert ((guint64) (highest - lowest) <= size - 8 - header_len);
  g_assert (clip_safetensors_find (st, "no such tensor") == NULL);
  clip_safetensors_close (st);
}

/* The mini model with these weights: what loads, runs. */
static void
load_and_run (void)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (model_dir, &error);

  if (model == NULL) {
    g_assert (error != NULL && error->message[0] != '\0');
    g_error_free (error);
    return;
  }
  ClipContextParams params = clip_context_params_default ();
  params.n_threads = 1;
  ClipContext *ctx = clip_context_new (model, &params, &error);
  g_assert_no_error (error);

  int size = clip_model_get_image_size (model), dim = clip_model_get_embedding_dim (model);
  float *pixels = g_new (float, 3 * size * size);
  for (int i = 0; i < 3 * size * size; i++)
    pixels[i] = (float) ((i * 37) % 101) / 50.0f - 1.0f;
  float *image = g_new (float, dim), *texts = g_new (float, 2 * dim);
  float logits[2], probs[2];
  const char *prompts[] = { "a photo of a cat.", "<|endoftext|> the 2 dogs, 'quoted'" };

  g_assert (clip_embed_image (ctx, pixels, image, &error));
  g_assert_no_error (error);
  g_assert (clip_embed_text (ctx, prompts, 2, texts, &error));
  g_assert_no_error (error);
  clip_score (model, image, texts, 2, logits, probs);

  g_free (pixels);
  g_free (image);
  g_free (texts);
  clip_context_free (ctx);
  clip_model_unref (model);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_file_set (&weights, data, size);
  walk_table (data, size);
  load_and_run ();
  return 0;
}
