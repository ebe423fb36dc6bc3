/* test-threads.c — a context's thread count is exact and contexts do not disturb each other or
 * the process's other OpenBLAS users.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip.h"
#include "clip-test-util.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <omp.h>
#include <sys/resource.h>

static char *model_dir;

/* CPU time (user + system) of the whole process (RUSAGE_SELF) or of the calling thread
 * (RUSAGE_THREAD). */
static double
cpu_seconds (int who)
{
  struct rusage usage;
  g_assert_cmpint (getrusage (who, &usage), ==, 0);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec * 1e-6;
}

static float *
random_pixels (int size, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *pixels = g_new (float, 3 * size * size);
  for (int i = 0; i < 3 * size * size; i++)
    pixels[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  g_rand_free (rand);
  return pixels;
}

static ClipContext *
context_with (ClipModel *model, int n_threads)
{
  GError *error = NULL;
  ClipContextParams params = clip_context_params_default ();
  params.n_threads = n_threads;
  ClipContext *ctx = clip_context_new (model, &params, &error);
  g_assert_no_error (error);
  g_assert_cmpint (clip_context_get_n_threads (ctx), ==, n_threads);
  return ctx;
}

/* One thread means one core: while a one-thread context works, the CPU time goes to the calling
 * thread and no other thread of the process (no OpenMP team, no OpenBLAS worker, nothing
 * spinning) gains any to speak of. CPU times only: how busy the machine is does not matter. */
static void
test_one_thread_is_one_core (void)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (model_dir, &error);
  g_assert_no_error (error);
  ClipContext *ctx = context_with (model, 1);
  int size = clip_model_get_image_size (model), dim = clip_model_get_embedding_dim (model);
  float *pixels = random_pixels (size, 1), *embedding = g_new (float, dim);

  g_assert_true (clip_embed_image (ctx, pixels, embedding, NULL)); /* warm up */
  double process0 = cpu_seconds (RUSAGE_SELF), caller0 = cpu_seconds (RUSAGE_THREAD);
  for (int i = 0; i < 20; i++)
    g_assert_true (clip_embed_image (ctx, pixels, embedding, NULL));
  double caller = cpu_seconds (RUSAGE_THREAD) - caller0;
  double others = cpu_seconds (RUSAGE_SELF) - process0 - caller;
  g_test_message ("1 thread: the caller used %.3f s of CPU, the other threads %.3f s", caller,
      others);
  g_assert_cmpfloat (caller, >, 0.0);
  g_assert_cmpfloat (others, <=, caller * 0.15 + 0.01);

  g_free (pixels);
  g_free (embedding);
  clip_context_free (ctx);
  clip_model_unref (model);
}

typedef struct {
  ClipContext *ctx;
  const float *pixels;
  float *embedding;
  int repeats;
} Job;

static gpointer
run_job (gpointer data)
{
  Job *job = data;
  for (int i = 0; i < job->repeats; i++)
    g_assert_true (clip_embed_image (job->ctx, job->pixels, job->embedding, NULL));
  return NULL;
}

/* Two contexts with different thread counts, running at the same time, give the results each
 * gives alone, and OpenBLAS's process-wide thread count is what it was. */
static void
test_concurrent_contexts (void)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (model_dir, &error);
  g_assert_no_error (error);
  int size = clip_model_get_image_size (model), dim = clip_model_get_embedding_dim (model);
  int blas_threads_before = openblas_get_num_threads ();
  int omp_threads_before = omp_get_max_threads ();

  ClipContext *one = context_with (model, 1), *two = context_with (model, 2);
  float *pixels_a = random_pixels (size, 2), *pixels_b = random_pixels (size, 3);
  float *alone_a = g_new (float, dim), *alone_b = g_new (float, dim);
  g_assert_true (clip_embed_image (one, pixels_a, alone_a, NULL));
  g_assert_true (clip_embed_image (two, pixels_b, alone_b, NULL));

  Job a = { one, pixels_a, g_new (float, dim), 20 };
  Job b = { two, pixels_b, g_new (float, dim), 20 };
  GThread *ta = g_thread_new ("context-1", run_job, &a);
  GThread *tb = g_thread_new ("context-2", run_job, &b);
  g_thread_join (ta);
  g_thread_join (tb);

  for (int d = 0; d < dim; d++) {
    g_assert_cmpfloat (a.embedding[d], ==, alone_a[d]);
    g_assert_cmpfloat (b.embedding[d], ==, alone_b[d]);
  }
  g_assert_cmpint (openblas_get_num_threads (), ==, blas_threads_before);
  g_assert_cmpint (omp_get_max_threads (), ==, omp_threads_before);

  /* another OpenBLAS user in the process still gets OpenBLAS's own threading: a plain GEMM
   * outside our contexts gives the right answer after ours ran */
  float m[4] = { 1, 2, 3, 4 }, out[4];
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, m, 2, m, 2, 0.0f, out,
               2);
  g_assert_cmpfloat (out[0], ==, 7.0f);
  g_assert_cmpfloat (out[3], ==, 22.0f);

  g_free (a.embedding);
  g_free (b.embedding);
  g_free (pixels_a);
  g_free (pixels_b);
  g_free (alone_a);
  g_free (alone_b);
  clip_context_free (one);
  clip_context_free (two);
  clip_model_unref (model);
}

/* The thread count changes how work is split, not the answer beyond float rounding. */
static void
test_thread_counts_agree (void)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (model_dir, &error);
  g_assert_no_error (error);
  int size = clip_model_get_image_size (model), dim = clip_model_get_embedding_dim (model);
  float *pixels = random_pixels (size, 4);
  float *reference = g_new (float, dim), *embedding = g_new (float, dim);
  const char *texts[] = { "a photo of a cat.", "a dog", "an empty room at night" };
  float *text_reference = g_new (float, 3 * dim), *text = g_new (float, 3 * dim);

  ClipContext *ctx = context_with (model, 1);
  g_assert_true (clip_embed_image (ctx, pixels, reference, NULL));
  g_assert_true (clip_embed_text (ctx, texts, 3, text_reference, &error));
  clip_context_free (ctx);
  for (int n = 2; n <= 5; n++) {
    ctx = context_with (model, n);
    g_assert_true (clip_embed_image (ctx, pixels, embedding, NULL));
    g_assert_true (clip_embed_text (ctx, texts, 3, text, &error));
    for (int d = 0; d < dim; d++)
      g_assert_cmpfloat_with_epsilon (embedding[d], reference[d], 1e-6);
    for (int d = 0; d < 3 * dim; d++)
      g_assert_cmpfloat_with_epsilon (text[d], text_reference[d], 1e-6);
    clip_context_free (ctx);
  }

  g_free (pixels);
  g_free (reference);
  g_free (embedding);
  g_free (text_reference);
  g_free (text);
  clip_model_unref (model);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  /* a small model, but with enough work per image for CPU time to be measurable */
  const char *build = g_getenv ("CLIP_TEST_BUILD_DIR");
  model_dir = g_build_filename (build ? build : g_get_tmp_dir (), "threads-model", NULL);
  clip_test_make_checkpoint (model_dir, (const char *[]) {
      "--preset", "tiny", "--seed", "7", "--set", "vision.hidden_size=256", "--set",
      "vision.intermediate_size=1024", "--set", "vision.image_size=96", NULL });

  g_test_add_func ("/threads/one-thread-is-one-core", test_one_thread_is_one_core);
  g_test_add_func ("/threads/concurrent-contexts", test_concurrent_contexts);
  g_test_add_func ("/threads/thread-counts-agree", test_thread_counts_agree);
  int result = g_test_run ();
  g_free (model_dir);
  return result;
}
