/* clip-bench — speed and memory of the engine on a model directory; prints JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   clip-bench --model DIR [--iterations N] [--threads 1,2] [--labels N]
 *
 * For each thread count: the image tower's median ms/image (after warm-up), and the "sgemm
 * floor": the very GEMMs one image's forward pass issues (same shapes, same weights, same
 * per-thread column split), timed alone in the same run. The ratio of the two is what the rest
 * of the forward pass (LayerNorm, activations, softmax, copies, barriers) costs. For reference
 * it also times the same GEMMs as single calls threaded by OpenBLAS itself.
 * Text: ms per label for a batch of typical prompts. Load: a second load, from the page cache.
 * Memory: peak RSS against the checkpoint's file size.
 */
#include "clip.h"
#include "forward.h"

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

/* The GEMMs of one image's forward pass, as clip_vision_forward and clip_encoder_layer issue
 * them, on the model's own weights. ours: column chunks handed out to the team, as the forward
 * pass does; otherwise one call per GEMM, threaded by OpenBLAS itself. */
static void
gemms (const ClipTeam *team, gboolean ours, const float *in, int rows, int n_in,
       const float *const *weights, float *const *outs, int n_gemms, int n_out,
       gboolean accumulate)
{
  int c0, c1;
  if (!ours) {
    for (int m = 0; m < n_gemms; m++)
      clip_linear_chunk (in, rows, n_in, weights[m], n_out, outs[m], accumulate, 0, 1, &c0, &c1);
    return;
  }
  int n_chunks = clip_linear_n_chunks (team, n_out);
  for (int i; (i = clip_team_take (team, n_gemms * n_chunks)) >= 0;)
    clip_linear_chunk (in, rows, n_in, weights[i / n_chunks], n_out, outs[i / n_chunks],
                       accumulate, i % n_chunks, n_chunks, &c0, &c1);
  clip_team_barrier (team);
}

static void
head_gemms (ClipWorkspace *ws, int n, int hidden, int head_dim, int h, float *scores)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, head_dim, 1.0f, ws->q + h * head_dim,
               hidden, ws->k + h * head_dim, hidden, 0.0f, scores, n);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, head_dim, n, 1.0f, scores, n,
               ws->v + h * head_dim, hidden, 0.0f, ws->attn_out + h * head_dim, hidden);
}

static void
vision_gemms (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws, gboolean ours)
{
  const ClipTowerConfig *config = &model->config.vision;
  int hidden = config->hidden_size, inter = config->intermediate_size;
  int grid = config->image_size / config->patch_size, n_patches = grid * grid;
  int n = n_patches + 1, heads = config->num_attention_heads, head_dim = hidden / heads;
  int patch_dim = config->num_channels * config->patch_size * config->patch_size;
  float *scores = ws->attn_scores + (size_t) team->tid * ws->capacity_scores;

  gemms (team, ours, ws->patches, n_patches, patch_dim,
         (const float *[]) { model->vision.patch_embedding }, (float *[]) { ws->hidden + hidden },
         1, hidden, FALSE);
  for (int l = 0; l < config->num_hidden_layers; l++) {
    const ClipLayerWeights *w = &model->vision.layers[l];
    gemms (team, ours, ws->normed, n, hidden,
           (const float *[]) { w->q_proj_w, w->k_proj_w, w->v_proj_w },
           (float *[]) { ws->q, ws->k, ws->v }, 3, hidden, FALSE);
    if (ours) {
      for (int h; (h = clip_team_take (team, heads)) >= 0;)
        head_gemms (ws, n, hidden, head_dim, h, scores);
    } else {
      for (int h = 0; h < heads; h++)
        head_gemms (ws, n, hidden, head_dim, h, scores);
    }
    clip_team_barrier (team);
    gemms (team, ours, ws->attn_out, n, hidden, (const float *[]) { w->out_proj_w },
           (float *[]) { ws->hidden }, 1, hidden, TRUE);
    gemms (team, ours, ws->normed, n, hidden, (const float *[]) { w->fc1_w },
           (float *[]) { ws->mlp }, 1, inter, FALSE);
    gemms (team, ours, ws->mlp, n, inter, (const float *[]) { w->fc2_w },
           (float *[]) { ws->hidden }, 1, hidden, TRUE);
  }
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

static double
time_floor (ClipContext *ctx, const ClipModel *model, int n_threads, gboolean partitioned,
            int iterations)
{
  ClipWorkspace ws = { 0 };
  const ClipTowerConfig *config = &model->config.vision;
  int grid = config->image_size / config->patch_size, n = grid * grid + 1;
  clip_workspace_reserve (&ws, config, n, n, n_threads,
                          config->num_channels * config->patch_size * config->patch_size);
  /* defined inputs: the GEMM kernels' speed does not depend on the values, but NaNs would */
  size_t rows = (size_t) ws.capacity_tokens;
  for (size_t i = 0; i < rows * ws.capacity_hidden; i++)
    ws.hidden[i] = ws.normed[i] = ws.q[i] = ws.k[i] = ws.v[i] = ws.attn_out[i] = 0.01f;
  for (size_t i = 0; i < rows * ws.capacity_intermediate; i++)
    ws.mlp[i] = 0.01f;
  memset (ws.patches, 0, rows * MAX (config->hidden_size, 3 * config->patch_size * config->patch_size) * sizeof (float));

  double *times = g_new (double, iterations);
  for (int it = -2; it < iterations; it++) {
    double t0 = now_ms ();
    if (partitioned) {
      ClipBarrier barrier = { 0, 0, 0 };
#pragma omp parallel num_threads (n_threads) shared (barrier)
      {
        omp_set_num_threads (1);
        ClipTeam team = { omp_get_thread_num (), omp_get_num_threads (), &barrier };
        vision_gemms (&team, model, &ws, TRUE);
      }
    } else {
      /* outside any parallel region, OpenBLAS's OpenMP build threads each call itself */
      omp_set_num_threads (n_threads);
      ClipBarrier barrier = { 0, 0, 0 };
      ClipTeam team = { 0, 1, &barrier };
      vision_gemms (&team, model, &ws, FALSE);
    }
    if (it >= 0)
      times[it] = now_ms () - t0;
  }
  double result = median (times, iterations);
  g_free (times);
  clip_workspace_clear (&ws);
  (void) ctx;
  return result;
}

static long
peak_rss_kib (void)
{
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int
main (int argc, char **argv)
{
  const char *model_dir = NULL, *threads_arg = "1,2";
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
    else {
      fprintf (stderr, "usage: clip-bench --model DIR [--iterations N] [--threads 1,2] "
               "[--labels N]\n");
      return 1;
    }
  }
  if (!model_dir || iterations < 1 || n_labels < 1 || n_labels > (int) G_N_ELEMENTS (typical_labels)) {
    fprintf (stderr, "clip-bench: --model DIR is required; --iterations >= 1; --labels 1..%d\n",
             (int) G_N_ELEMENTS (typical_labels));
    return 1;
  }

  GError *error = NULL;
  /* first load warms the page cache; the second is the one reported */
  ClipModel *model = clip_model_load (model_dir, &error);
  if (!model) {
    fprintf (stderr, "clip-bench: %s\n", error->message);
    return 1;
  }
  clip_model_unref (model);
  double t0 = now_ms ();
  model = clip_model_load (model_dir, &error);
  double load_ms = now_ms () - t0;
  if (!model) {
    fprintf (stderr, "clip-bench: %s\n", error->message);
    return 1;
  }

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

  const char *hint = clip_blas_performance_hint ();
  const char *coretype = g_getenv ("OPENBLAS_CORETYPE");
  printf ("{\n  \"model\": \"%s\",\n  \"blas\": \"%s\",\n  \"OPENBLAS_CORETYPE\": %s%s%s,\n"
          "  \"blas_hint\": %s%s%s,\n  \"vision_gflop\": %.3f,\n",
          model_dir, clip_blas_describe (), coretype ? "\"" : "", coretype ? coretype : "null",
          coretype ? "\"" : "", hint ? "\"" : "", hint ? hint : "null", hint ? "\"" : "",
          vision_gflop (model));
  printf ("  \"load_ms\": %.1f,\n  \"runs\": [\n", load_ms);

  char **threads = g_strsplit (threads_arg, ",", -1);
  for (int ti = 0; threads[ti]; ti++) {
    int n_threads = atoi (threads[ti]);
    ClipContextParams params = { .n_threads = n_threads };
    ClipContext *ctx = clip_context_new (model, &params, &error);
    if (!ctx) {
      fprintf (stderr, "clip-bench: %s\n", error->message);
      return 1;
    }
    double *times = g_new (double, MAX (iterations, 5));
    for (int it = -2; it < iterations; it++) {
      double s = now_ms ();
      clip_embed_image (ctx, pixels, image);
      if (it >= 0)
        times[it] = now_ms () - s;
    }
    double vision_ms = median (times, iterations);
    double floor_ms = time_floor (ctx, model, n_threads, TRUE, iterations);
    double blas_threaded_ms = time_floor (ctx, model, n_threads, FALSE, iterations);

    /* text: a batch of new prompts, as the element computes a relabel */
    int text_iterations = 5;
    for (int it = -1; it < text_iterations; it++) {
      double s = now_ms ();
      clip_embed_text (ctx, (const char *const *) prompts, n_labels, texts, NULL);
      if (it >= 0)
        times[it] = now_ms () - s;
    }
    double text_ms = median (times, text_iterations);

    printf ("    {\"threads\": %d, \"vision_ms\": %.3f, \"sgemm_floor_ms\": %.3f, "
            "\"vision_over_floor\": %.3f, \"vision_gflops\": %.1f, "
            "\"openblas_threaded_gemms_ms\": %.3f, \"text_batch\": %d, \"text_ms_per_label\": %.3f}%s\n",
            n_threads, vision_ms, floor_ms, vision_ms / floor_ms,
            vision_gflop (model) / (vision_ms / 1000.0), blas_threaded_ms, n_labels,
            text_ms / n_labels, threads[ti + 1] ? "," : "");
    g_free (times);
    clip_context_free (ctx);
  }
  g_strfreev (threads);

  gchar *st_path = g_build_filename (model_dir, "model.safetensors", NULL);
  GStatBuf st;
  double file_mib = g_stat (st_path, &st) == 0 ? st.st_size / 1048576.0 : 0.0;
  double rss_mib = peak_rss_kib () / 1024.0;
  printf ("  ],\n  \"peak_rss_mib\": %.1f,\n  \"model_file_mib\": %.1f,\n"
          "  \"rss_over_file\": %.3f\n}\n", rss_mib, file_mib, file_mib > 0 ? rss_mib / file_mib : 0.0);

  g_free (st_path);
  for (int i = 0; i < n_labels; i++)
    g_free (prompts[i]);
  g_free (texts);
  g_free (pixels);
  g_free (image);
  clip_model_unref (model);
  return 0;
}
