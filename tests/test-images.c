/* test-images.c — clip_embed_images: a batch gives each image the embedding clip_embed_image
 * gives it alone, across batch boundaries (CLIP_EMBED_IMAGES_BATCH), with 1 and 2 threads, and
 * whatever the kernel path (the meson test runs it once per CLIPCLASSIFY_ISA this CPU has).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip.h"
#include "clip-test-util.h"

#include <math.h>

static char *model_dir;

static float *
random_pixels (int n, int size, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  gsize count = (gsize) n * 3 * size * size;
  float *pixels = g_new (float, count);

  for (gsize i = 0; i < count; i++)
    pixels[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  g_rand_free (rand);
  return pixels;
}

/* Largest |a - b| over n floats. */
static double
max_diff (const float *a, const float *b, int n)
{
  double worst = 0.0;

  for (int i = 0; i < n; i++)
    worst = MAX (worst, fabs ((double) a[i] - b[i]));
  return worst;
}

static void
check_batches (int n_threads)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (model_dir, &error);
  ClipContextParams params = clip_context_params_default ();
  ClipContext *ctx, *single;
  int size, dim;
  /* 1, a few, and more than one forward pass's worth (the last pass partial) */
  const int counts[] = { 1, 3, CLIP_EMBED_IMAGES_BATCH + 5 };

  g_assert_no_error (error);
  params.n_threads = n_threads;
  ctx = clip_context_new (model, &params, &error);
  g_assert_no_error (error);
  /* a context of its own for the single images: a workspace grown by batches is not reused */
  single = clip_context_new (model, &params, &error);
  g_assert_no_error (error);
  size = clip_model_get_image_size (model);
  dim = clip_model_get_embedding_dim (model);

  for (gsize c = 0; c < G_N_ELEMENTS (counts); c++) {
    int n = counts[c];
    float *pixels = random_pixels (n, size, 100 + n);
    float *batch = g_new (float, (gsize) n * dim), *alone = g_new (float, dim);
    double worst = 0.0;
    int exact = 0;

    g_assert_true (clip_embed_images (ctx, pixels, n, batch, &error));
    g_assert_no_error (error);
    for (int i = 0; i < n; i++) {
      double norm = 0.0, diff;

      g_assert_true (clip_embed_image (single, pixels + (gsize) i * 3 * size * size, alone,
                                       &error));
      diff = max_diff (batch + (gsize) i * dim, alone, dim);
      worst = MAX (worst, diff);
      exact += diff == 0.0;
      for (int d = 0; d < dim; d++)
        norm += (double) batch[(gsize) i * dim + d] * batch[(gsize) i * dim + d];
      g_assert_cmpfloat (fabs (sqrt (norm) - 1.0), <, 1e-5);
    }
    g_test_message ("%s, %d thread(s): batch of %d, %d embeddings bit-identical to the single "
                    "image's, largest difference %.3g", clip_model_get_isa (model), n_threads, n,
                    exact, worst);
    /* the same arithmetic per row: at most float rounding of a different summation split */
    g_assert_cmpfloat (worst, <, 1e-6);
    g_free (pixels);
    g_free (batch);
    g_free (alone);
  }

  /* nothing to do is fine */
  g_assert_true (clip_embed_images (ctx, NULL, 0, NULL, &error));
  g_assert_no_error (error);

  clip_context_free (single);
  clip_context_free (ctx);
  clip_model_unref (model);
}

static void
test_batch_one_thread (void)
{
  check_batches (1);
}

static void
test_batch_two_threads (void)
{
  check_batches (2);
}

int
main (int argc, char **argv)
{
  const char *build_dir = g_getenv ("CLIP_TEST_BUILD_DIR");
  const char *isa = g_getenv ("CLIPCLASSIFY_ISA");
  const char *options[] = { "--preset", "tiny", NULL };
  char *name = g_strdup_printf ("images-fixture-%s", isa && *isa ? isa : "default");
  GError *error = NULL;
  ClipModel *probe;
  int status;

  g_test_init (&argc, &argv, NULL);
  model_dir = g_build_filename (build_dir ? build_dir : g_get_tmp_dir (), name, NULL);
  g_free (name);
  clip_test_make_checkpoint (model_dir, options);

  /* a kernel path this CPU lacks fails to load: nothing to test there */
  probe = clip_model_load (model_dir, &error);
  if (!probe) {
    g_test_message ("skipped: %s", error->message);
    g_error_free (error);
    g_free (model_dir);
    return 77;
  }
  clip_model_unref (probe);

  g_test_add_func ("/images/batch/one-thread", test_batch_one_thread);
  g_test_add_func ("/images/batch/two-threads", test_batch_two_threads);
  status = g_test_run ();
  g_free (model_dir);
  return status;
}
