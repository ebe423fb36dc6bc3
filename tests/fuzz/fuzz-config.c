/* fuzz-config.c — config.json and preprocessor_config.json.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is config.json, a NUL byte, then preprocessor_config.json (an input without a NUL
 * is config.json alone, and the preprocessor file is absent: CLIPImageProcessor's defaults).
 * What loads must respect the bounds config.c promises (every size positive and below its
 * limit, so that nothing it implies overflows), and a preprocessing config that loads
 * preprocesses a small image of a few shapes whenever its output stays small.
 */
#include "fuzz-util.h"

#include "clip-private.h"

#include <float.h>

static FuzzFile config_file, preprocess_file;
static char *absent_path;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_glib ();
  fuzz_file_init (&config_file, "config.json");
  fuzz_file_init (&preprocess_file, "preprocessor_config.json");
  absent_path = g_strdup ("/proc/self/fd/-1/preprocessor_config.json");
  return 0;
}

static void
check_tower (const ClipTowerConfig *t, gboolean text)
{
  g_assert (t->hidden_size > 0 && t->hidden_size <= 8192);
  g_assert (t->intermediate_size > 0 && t->intermediate_size <= 65536);
  g_assert (t->num_hidden_layers > 0 && t->num_hidden_layers <= 128);
  g_assert (t->num_attention_heads > 0 && t->hidden_size % t->num_attention_heads == 0);
  g_assert (t->layer_norm_eps >= FLT_MIN && t->layer_norm_eps <= 1);
  g_assert (t->hidden_act == CLIP_ACT_QUICK_GELU || t->hidden_act == CLIP_ACT_GELU);
  if (text) {
    g_assert (t->max_position_embeddings >= 2 && t->max_position_embeddings <= 4096);
    g_assert (t->vocab_size > 0 && t->vocab_size <= 1 << 20);
    g_assert (t->eos_token_id >= 0 && t->eos_token_id < t->vocab_size);
  } else {
    g_assert (t->num_channels == 3);
    g_assert (t->image_size > 0 && t->image_size <= 4096);
    g_assert (t->patch_size > 0 && t->patch_size <= t->image_size);
    int grid = t->image_size / t->patch_size;
    g_assert (grid * grid + 1 <= 4096);
  }
}

static void
preprocess (const ClipPreprocessConfig *p)
{
  static const int shapes[][2] = { { 13, 7 }, { 1, 1 }, { 2, 31 }, { 40, 40 } };
  uint8_t rgb[40 * 40 * 3];

  for (guint i = 0; i < sizeof rgb; i++)
    rgb[i] = (uint8_t) (i * 29);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    int w = shapes[s][0], h = shapes[s][1], ow = -1, oh = -1;
    GError *error = NULL;

    clip_preprocess_output_size (p, w, h, &ow, &oh);
    /* Outputs up to 64 x 64 for every shape, CLIP's usual sizes (224, 336) for the first. */
    if (ow <= 0 || oh <= 0 || (gint64) ow * oh > (s == 0 ? 336 * 336 : 64 * 64)) {
      /* Refused, or too large to run at every input: preprocessing must refuse it cleanly
       * when the output size does not fit. */
      if (ow <= 0 || oh <= 0) {
        float dummy[3];
        if (!clip_preprocess_rgb8 (p, rgb, w, h, w * 3, dummy, &error))
          g_clear_error (&error);
      }
      continue;
    }
    float *out = g_new (float, 3 * (gsize) ow * oh);
    if (!clip_preprocess_rgb8 (p, rgb, w, h, w * 3, out, &error)) {
      g_assert (error != NULL);
      g_clear_error (&error);
    }
    g_free (out);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *rest;
  size_t rest_size, config_size = fuzz_split (data, size, &rest, &rest_size);
  ClipConfig config;
  ClipPreprocessConfig p;
  GError *error = NULL;

  fuzz_file_set (&config_file, data, config_size);
  if (clip_config_load (config_file.path, &config, &error)) {
    check_tower (&config.text, TRUE);
    check_tower (&config.vision, FALSE);
    g_assert (config.projection_dim > 0 && config.projection_dim <= 8192);
  } else {
    g_assert (error != NULL && strstr (error->message, config_file.path) != NULL);
    g_clear_error (&error);
  }

  if (rest != NULL)
    fuzz_file_set (&preprocess_file, rest, rest_size);
  if (clip_preprocess_config_load (rest != NULL ? preprocess_file.path : absent_path, &p,
                                   &error)) {
    preprocess (&p);
  } else {
    g_assert (error != NULL && strstr (error->message, preprocess_file.path) != NULL);
    g_clear_error (&error);
  }
  return 0;
}
