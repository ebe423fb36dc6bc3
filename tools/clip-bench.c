/* clip-bench — speed and memory of the engine on a model directory; prints JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   clip-bench --model DIR [--iterations N] [--threads 1,2] [--labels N] [--precision fp32|bf16]
 *
 * For each thread count: the image tower's median ms/image (after warm-up), and the "sgemm
 * floor": the very GEMMs one image's forward pass issues (same shapes, same weights, same
 * per-thread column split), timed alone in the same run. The ratio of the two is what the rest
 * of the forward pass (LayerNorm, activations, softmax, copies, barriers) costs. For reference
 * it also times the same GEMMs as single calls threaded by OpenBLAS itself.
 * Text: ms per label for a batch of typical prompts. Load: a second load, from the page cache,
 * packing included. Memory: peak RSS against the checkpoint's file size, read before the floor
 * maps the f32 weights back in. "isa" is the kernel path the engine took (avx512, avx2, blas) and
 * "precision" the arithmetic it ran (fp32, bf16).
 */
#include "clip.h"
#include "forward.h"
#include "safetensors.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char *const typical_labels[] = {
  "person", "dog", "cat", "car", "bicycle", "empty room", "kitchen", "laptop", "coffee cup",
  "tree", "traffic light", "bus", "a person riding a horse", "pizza", "television", "bird",
  "mountain landscape", "city street at night", "sofa", "potted plant", "keyboard", "sheep",
  "boat", "umbrella", "clock", "backpack", "book", "fire hydrant", "train", "airplane",
};

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *values, int n)
{
  qsort (values, n, sizeof *values, compare_double);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

/* The floor: the GEMMs of one image's forward pass (same shapes, the checkpoint's own f32
 * weights read from its file), as OpenBLAS calls. partitioned: column chunks handed out to a
 * team as the OpenBLAS path of the engine does; otherwise one call per GEMM, threaded by
 * OpenBLAS itself. */
typedef struct {
  const ClipTowerConfig *config;
  const float *patch_embedding;
  const float **layer_weights;     /* per layer: q, k, v, out_proj, fc1, fc2 */
  float *patches, *hidden, *normed, *q, *k, *v, *attn_out, *mlp, *scores;
  int n_threads;
} Floor;

static void
floor_gemms (const ClipTeam *team, gboolean partitioned, const float *in, int rows, int n_in,
             const float *const *weights, float *const *outs, int n_gemms, int n_out,
             gboolean accumulate)
{
  int c0, c1;
  if (!partitioned) {
    for (int m = 0; m < n_gemms; m++)
      clip_blas_chunk (in, n_in, rows, n_in, weights[m], n_out, outs[m], n_out, accumulate, 0,
                       1, &c0, &c1);
    return;
  }
  int n_chunks = clip_blas_n_chunks (team, n_out);
  for (int i; (i = clip_team_take (team, n_gemms * n_chunks)) >= 0;)
    clip_blas_chunk (in, n_in, rows, n_in, weights[i / n_chunks], n_out, outs[i / n_chunks],
                     n_out, accumulate, i % n_chunks, n_chunks, &c0, &c1);
  clip_team_barrier (team);
}

static void
floor_heads (const Floor *f, int n, int head_dim, int h, float *scores)
{
  int hidden = f->config->hidden_size;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, head_dim, 1.0f, f->q + h * head_dim,
               hidden, f->k + h * head_dim, hidden, 0.0f, scores, n);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, head_dim, n, 1.0f, scores, n,
               f->v + h * head_dim, hidden, 0.0f, f->attn_out + h * head_dim, hidden);
}

static void
floor_forward (const ClipTeam *team, const Floor *f, gboolean partitioned)
{
  const ClipTowerConfig *config = f->config;
  int hidden = config->hidden_size, inter = config->intermediate_size;
  int grid = config->image_size / config->patch_size, n_patches = grid * grid;
  int n = n_patches + 1, heads = config->num_attention_heads, head_dim = hidden / heads;
  int patch_dim = config->num_channels * config->patch_size * config->patch_size;
  float *scores = f->scores + (size_t) team->tid * n * n;

  floor_gemms (team, partitioned, f->patches, n_patches, patch_dim,
               (const float *[]) { f->patch_embedding }, (float *[]) { f->hidden + hidden }, 1,
               hidden, FALSE);
  for (int l = 0; l < config->num_hidden_layers; l++) {
    const float *const *w = f->layer_weights + 6 * l;
    floor_gemms (team, partitioned, f->normed, n, hidden, w, (float *[]) { f->q, f->k, f->v },
                 3, hidden, FALSE);
    if (partitioned) {
      for (int h; (h = clip_team_take (team, heads)) >= 0;)
        floor_heads (f, n, head_dim, h, scores);
      clip_team_barrier (team);
    } else {
      for (int h = 0; h < heads; h++)
        floor_heads (f, n, head_dim, h, scores);
    }
    floor_gemms (team, partitioned, f->attn_out, n, hidden, &w[3], (float *[]) { f->hidden }, 1,
                 hidden, TRUE);
    floor_gemms (team, partitioned, f->normed, n, hidden, &w[4], (float *[]) { f->mlp }, 1,
                 inter, FALSE);
    floor_gemms (team, partitioned, f->mlp, n, inter, &w[5], (float *[]) { f->hidden }, 1,
                 hidden, TRUE);
  }
}

static const float *
f32_tensor (ClipSafetensors *st, const char *name)
{
  const ClipTensorInfo *info = clip_safetensors_find (st, name);
  if (info == NULL || info->dtype != CLIP_DTYPE_F32) {
    fprintf (stderr, "clip-bench: the floor needs '%s' as F32 in the checkpoint\n", name);
    exit (1);
  }
  return info->data;
}

static float *
filled (size_t n)
{
  /* defined inputs: the GEMM kernels' speed does not depend on the values, but NaNs would */
  float *x = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    x[i] = 0.01f;
  return x;
}

static double
time_floor (const char *model_dir, const ClipModel *model, int n_threads, gboolean partitioned,
            int iterations)
{
  static const char *const names[] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.out_proj", "mlp.fc1", "mlp.fc2" };
  const ClipTowerConfig *config = &model->config.vision;
  int grid = config->image_size / config->patch_size, n = grid * grid + 1;
  int hidden = config->hidden_size, inter = config->intermediate_size;
  char *path = g_build_filename (model_dir, "model.safetensors", NULL);
  GError *error = NULL;
  ClipSafetensors *st = clip_safetensors_open (path, &error);
  if (st == NULL) {
    fprintf (stderr, "clip-bench: %s\n", error->message);
    exit (1);
  }
  Floor f = { .config = config, .n_threads = n_threads };
  f.patch_embedding = f32_tensor (st, "vision_model.embeddings.patch_embedding.weight");
  f.layer_weights = g_new (const float *, 6 * config->num_hidden_layers);
  for (int l = 0; l < config->num_hidden_layers; l++)
    for (int m = 0; m < 6; m++) {
      char *name = g_strdup_printf ("vision_model.encoder.layers.%d.%s.weight", l, names[m]);
      f.layer_weights[6 * l + m] = f32_tensor (st, name);
      g_free (name);
    }
  size_t rows = n, patch_dim = (size_t) config->num_channels * config->patch_size * config->patch_size;
  f.patches = filled (rows * patch_dim);
  f.hidden = filled (rows * hidden);
  f.normed = filled (rows * hidden);
  f.q = filled (rows * hidden);
  f.k = filled (rows * hidden);
  f.v = filled (rows * hidden);
  f.attn_out = filled (rows * hidden);
  f.mlp = filled (rows * inter);
  f.scores = filled (rows * n * n_threads);

  double *times = g_new (double, iterations);
  for (int it = -2; it < iterations; it++) {
    double t0 = now_ms ();
    if (partitioned) {
      ClipBarrier barrier = { 0, 0, 0 };
#pragma omp parallel num_threads (n_threads) shared (barrier)
      {
        omp_set_num_threads (1);
        ClipTeam team = { omp_get_thread_num (), omp_get_num_threads (), &barrier };
        floor_forward (&team, &f, TRUE);
      }
    } else {
      /* outside any parallel region, OpenBLAS's OpenMP build threads each call itself */
      omp_set_num_threads (n_threads);
      ClipBarrier barrier = { 0, 0, 0 };
      ClipTeam team = { 0, 1, &barrier };
      floor_forward (&team, &f, FALSE);
    }
    if (it >= 0)
      times[it] = now_ms () - t0;
  }
  double result = median (times, iterations);
  g_free (times);
  float *buffers[] = { f.patches, f.hidden, f.normed, f.q, f.k, f.v, f.attn_out, f.mlp, f.scores };
  for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
    g_free (buffers[i]);
  g_free (f.layer_weights);
  clip_safetensors_close (st);
  g_free (path);
  return result;
}

static double
vision_gflop (const ClipModel *model)
{
  const ClipTowerConfig *c = &model->config.vision;
  double hidden = c->hidden_size, inter = c->intermediate_size;
  double grid = c->image_size / c->patch_size, np = grid * grid, n = np + 1;
  double patch_dim = c->num_channels * c->patch_size * c->patch_size;
  double per_layer = 2 * n * hidden * hidden * 4 + 2 * n * hidden * inter * 2 + 2 * n * n * hidden * 2;
  return (2 * np * patch_dim * hidden + c->num_hidden_layers * per_layer) / 1e9;
}

static long
peak_rss_kib (void)
{
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

typedef struct {
  int n_threads;
  double vision_ms, text_ms_per_label, floor_ms, blas_threaded_ms;
} Run;

int
main (int argc, char **argv)
{
  const char *model_dir = NULL, *threads_arg = "1,2", *precision_arg = "fp32";
  int iterations = 10, n_labels = 20;
  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--model") && i + 1 < argc)
      model_dir = argv[++i];
    else if (!strcmp (argv[i], "--iterations") && i + 1 < argc)
      iterations = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--threads") && i + 1 < argc)
      threads_arg = argv[++i];
    else if (!strcmp (argv[i], "--labels") && i + 1 < argc)
      n_labels = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--precision") && i + 1 < argc)
      precision_arg = argv[++i];
    else {
      fprintf (stderr, "usage: clip-bench --model DIR [--iterations N] [--threads 1,2] "
               "[--labels N] [--precision fp32|bf16]\n");
      return 1;
    }
  }
  if (!model_dir || iterations < 1 || n_labels < 1 || n_labels > (int) G_N_ELEMENTS (typical_labels)) {
    fprintf (stderr, "clip-bench: --model DIR is required; --iterations >= 1; --labels 1..%d\n",
             (int) G_N_ELEMENTS (typical_labels));
    return 1;
  }

  GError *error = NULL;
  ClipModelParams model_params = clip_model_params_default ();
  if (!clip_precision_from_string (precision_arg, &model_params.precision, &error)) {
    fprintf (stderr, "clip-bench: --precision: %s\n", error->message);
    return 1;
  }
  /* first load warms the page cache; the second is the one reported */
  ClipModel *model = clip_model_load_with_params (model_dir, &model_params, &error);
  if (!model) {
    fprintf (stderr, "clip-bench: %s\n", error->message);
    return 1;
  }
  clip_model_unref (model);
  double t0 = now_ms ();
  model = clip_model_load_with_params (model_dir, &model_params, &error);
  double load_ms = now_ms () - t0;
  if (!model) {
    fprintf (stderr, "clip-bench: %s\n", error->message);
    return 1;
  }
  if (clip_model_get_precision_note (model))
    fprintf (stderr, "clip-bench: warning: %s\n", clip_model_get_precision_note (model));

  int size = clip_model_get_image_size (model), dim = clip_model_get_embedding_dim (model);
  float *pixels = g_new (float, 3 * size * size), *image = g_new (float, dim);
  GRand *rand = g_rand_new_with_seed (1);
  for (int i = 0; i < 3 * size * size; i++)
    pixels[i] = (float) g_rand_double_range (rand, -1.8, 2.1);
  g_rand_free (rand);

  char *prompts[G_N_ELEMENTS (typical_labels)];
  for (int i = 0; i < n_labels; i++)
    prompts[i] = clip_format_prompt (CLIP_DEFAULT_TEMPLATE, typical_labels[i], NULL);
  float *texts = g_new (float, (size_t) n_labels * dim);

  char **threads = g_strsplit (threads_arg, ",", -1);
  int n_runs = (int) g_strv_length (threads);
  Run *runs = g_new0 (Run, n_runs);
  double *times = g_new (double, MAX (iterations, 5));

  /* ours first, for every thread count: the peak RSS is read before the floor maps the
   * checkpoint's f32 weights back in */
  for (int ri = 0; ri < n_runs; ri++) {
    Run *run = &runs[ri];
    run->n_threads = atoi (threads[ri]);
    ClipContextParams params = { .n_threads = run->n_threads };
    ClipContext *ctx = clip_context_new (model, &params, &error);
    if (!ctx) {
      fprintf (stderr, "clip-bench: %s\n", error->message);
      return 1;
    }
    for (int it = -2; it < iterations; it++) {
      double s = now_ms ();
      if (!clip_embed_image (ctx, pixels, image, &error)) {
        fprintf (stderr, "clip-bench: %s\n", error->message);
        return 1;
      }
      if (it >= 0)
        times[it] = now_ms () - s;
    }
    run->vision_ms = median (times, iterations);

    /* text: a batch of new prompts, as the element computes a relabel */
    int text_iterations = 5;
    for (int it = -1; it < text_iterations; it++) {
      double s = now_ms ();
      if (!clip_embed_text (ctx, (const char *const *) prompts, n_labels, texts, &error)) {
        fprintf (stderr, "clip-bench: %s\n", error->message);
        return 1;
      }
      if (it >= 0)
        times[it] = now_ms () - s;
    }
    run->text_ms_per_label = median (times, text_iterations) / n_labels;
    clip_context_free (ctx);
  }
  double rss_mib = peak_rss_kib () / 1024.0;
  for (int ri = 0; ri < n_runs; ri++) {
    runs[ri].floor_ms = time_floor (model_dir, model, runs[ri].n_threads, TRUE, iterations);
    runs[ri].blas_threaded_ms = time_floor (model_dir, model, runs[ri].n_threads, FALSE,
                                            iterations);
  }

  const char *hint = clip_blas_performance_hint ();
  const char *coretype = g_getenv ("OPENBLAS_CORETYPE");
  printf ("{\n  \"model\": \"%s\",\n  \"isa\": \"%s\",\n  \"precision\": \"%s\",\n"
          "  \"precision_requested\": \"%s\",\n  \"blas\": \"%s\",\n"
          "  \"OPENBLAS_CORETYPE\": %s%s%s,\n  \"blas_hint\": %s%s%s,\n"
          "  \"vision_gflop\": %.3f,\n",
          model_dir, clip_model_get_isa (model),
          clip_precision_name (clip_model_get_precision (model)),
          clip_precision_name (model_params.precision), clip_blas_describe (),
          coretype ? "\"" : "", coretype ? coretype : "null", coretype ? "\"" : "",
          hint ? "\"" : "", hint ? hint : "null", hint ? "\"" : "", vision_gflop (model));
  printf ("  \"load_ms\": %.1f,\n  \"runs\": [\n", load_ms);
  for (int ri = 0; ri < n_runs; ri++) {
    const Run *run = &runs[ri];
    printf ("    {\"threads\": %d, \"vision_ms\": %.3f, \"sgemm_floor_ms\": %.3f, "
            "\"vision_over_floor\": %.3f, \"vision_gflops\": %.1f, "
            "\"openblas_threaded_gemms_ms\": %.3f, \"text_batch\": %d, \"text_ms_per_label\": %.3f}%s\n",
            run->n_threads, run->vision_ms, run->floor_ms, run->vision_ms / run->floor_ms,
            vision_gflop (model) / (run->vision_ms / 1000.0), run->blas_threaded_ms, n_labels,
            run->text_ms_per_label, ri + 1 < n_runs ? "," : "");
  }

  gchar *st_path = g_build_filename (model_dir, "model.safetensors", NULL);
  GStatBuf st;
  double file_mib = g_stat (st_path, &st) == 0 ? st.st_size / 1048576.0 : 0.0;
  printf ("  ],\n  \"packed_mib\": %.1f,\n  \"peak_rss_mib\": %.1f,\n"
          "  \"model_file_mib\": %.1f,\n  \"rss_over_file\": %.3f\n}\n",
          clip_model_get_packed_bytes (model) / 1048576.0, rss_mib, file_mib,
          file_mib > 0 ? rss_mib / file_mib : 0.0);

  g_free (st_path);
  g_free (times);
  g_free (runs);
  g_strfreev (threads);
  for (int i = 0; i < n_labels; i++)
    g_free (prompts[i]);
  g_free (texts);
  g_free (pixels);
  g_free (image);
  clip_model_unref (model);
  return 0;
}
