/* context.c — ClipContext: a model, a workspace and a thread count; the embed/score entry points.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "gemm.h"
#include "ops.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

struct _ClipContext {
  ClipModel *model;
  int n_threads;
  ClipWorkspace workspace;
};

ClipContextParams
clip_context_params_default (void)
{
  ClipContextParams params = { .n_threads = 0 };
  return params;
}

ClipContext *
clip_context_new (ClipModel *model, const ClipContextParams *params, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  ClipContextParams defaults = clip_context_params_default ();
  if (params == NULL)
    params = &defaults;
  if (params->n_threads < 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "n_threads must be 0 (every core) or positive, not %d", params->n_threads);
    return NULL;
  }

  ClipContext *ctx = g_new0 (ClipContext, 1);
  ctx->model = clip_model_ref (model);
  /* g_get_num_processors honours the process's CPU affinity (taskset, cgroups cpusets) */
  ctx->n_threads = params->n_threads > 0 ? params->n_threads : (int) g_get_num_processors ();
  return ctx;
}

void
clip_context_free (ClipContext *ctx)
{
  if (ctx == NULL)
    return;
  clip_workspace_clear (&ctx->workspace);
  clip_model_unref (ctx->model);
  g_free (ctx);
}

int
clip_context_get_n_threads (const ClipContext *ctx)
{
  g_return_val_if_fail (ctx != NULL, 0);
  return ctx->n_threads;
}

ClipModel *
clip_context_get_model (const ClipContext *ctx)
{
  g_return_val_if_fail (ctx != NULL, NULL);
  return ctx->model;
}

/* Denormals: random and real weights alike make a few activations tiny, and an x86 core takes a
 * ~100-cycle assist for each denormal operand or result; the vectorised activations even compute
 * some on lanes they then discard. Every team thread flushes them to zero while it works (as
 * PyTorch's set_flush_denormal does) and restores its previous mode after. */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CLIP_DENORMALS_OFF(saved) unsigned saved = _mm_getcsr (); _mm_setcsr (saved | 0x8040)
#define CLIP_DENORMALS_RESTORE(saved) _mm_setcsr (saved)
#else
#define CLIP_DENORMALS_OFF(saved) (void) 0
#define CLIP_DENORMALS_RESTORE(saved) (void) 0
#endif

/* Runs body(team, data) on the context's team of threads. Inside, each thread sets its own
 * OpenMP thread budget to 1 (an ICV of that implicit task only, gone when the region ends): the
 * OpenMP build of OpenBLAS then runs single-threaded in our threads even in a team of one, where
 * omp_in_parallel() alone would not stop it, and never touches its process-wide count. */
#define CLIP_RUN_TEAM(ctx, call)                                                             \
  G_STMT_START {                                                                              \
    ClipBarrier barrier = { 0, 0, 0 };                                                        \
    _Pragma ("omp parallel num_threads ((ctx)->n_threads) shared (barrier)")                  \
    {                                                                                         \
      omp_set_num_threads (1);                                                                \
      CLIP_DENORMALS_OFF (csr);                                                               \
      ClipTeam team = { omp_get_thread_num (), omp_get_num_threads (), &barrier };            \
      ClipTeam *const team_ptr = &team;                                                       \
      call;                                                                                   \
      CLIP_DENORMALS_RESTORE (csr);                                                           \
    }                                                                                         \
  } G_STMT_END

gboolean
clip_embed_image (ClipContext *ctx, const float *pixels, float *embedding, GError **error)
{
  g_return_val_if_fail (ctx != NULL && pixels != NULL && embedding != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  const ClipModel *model = ctx->model;
  const ClipTowerConfig *config = &model->config.vision;
  int grid = config->image_size / config->patch_size;
  int n_tokens = grid * grid + 1;

  /* The workspace grows on first use: its size follows the model and the thread count, both
   * chosen by the user, so running out is reported like any other bad setting. */
  if (!clip_workspace_reserve (&ctx->workspace, config, n_tokens, n_tokens, ctx->n_threads,
                               config->num_channels * config->patch_size * config->patch_size)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_NO_MEMORY,
                 "Out of memory for the image tower's workspace (%d tokens, %d threads) of the "
                 "model in %s", n_tokens, ctx->n_threads, model->path);
    return FALSE;
  }
  ClipWorkspace *ws = &ctx->workspace;
  CLIP_RUN_TEAM (ctx, clip_vision_forward (team_ptr, model, ws, pixels, embedding));
  return TRUE;
}

gboolean
clip_embed_images (ClipContext *ctx, const float *pixels, int n_images, float *embeddings,
                   GError **error)
{
  g_return_val_if_fail (ctx != NULL && n_images >= 0, FALSE);
  g_return_val_if_fail (n_images == 0 || (pixels != NULL && embeddings != NULL), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  const ClipModel *model = ctx->model;
  const ClipTowerConfig *config = &model->config.vision;
  int grid = config->image_size / config->patch_size;
  int n_tokens = grid * grid + 1, dim = model->config.projection_dim;
  size_t image_floats = (size_t) config->num_channels * config->image_size * config->image_size;

  for (int first = 0; first < n_images; first += CLIP_EMBED_IMAGES_BATCH) {
    int n = MIN (CLIP_EMBED_IMAGES_BATCH, n_images - first);

    /* The workspace grows to the largest batch seen: about 8 MB per image for ViT-B/16. */
    if (!clip_workspace_reserve (&ctx->workspace, config, n * n_tokens, n_tokens, ctx->n_threads,
                                 config->num_channels * config->patch_size
                                 * config->patch_size)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_NO_MEMORY,
                   "Out of memory for the image tower's workspace (%d images of %d tokens, %d "
                   "threads) of the model in %s", n, n_tokens, ctx->n_threads, model->path);
      return FALSE;
    }
    ClipWorkspace *ws = &ctx->workspace;
    const float *batch = pixels + (size_t) first * image_floats;
    float *out = embeddings + (size_t) first * dim;
    CLIP_RUN_TEAM (ctx, clip_vision_forward_batch (team_ptr, model, ws, batch, n, out));
  }
  return TRUE;
}

gboolean
clip_embed_tokens (ClipContext *ctx, const int32_t *const *ids, const int *n_ids, int n_texts,
                   float *embeddings, GError **error)
{
  g_return_val_if_fail (ctx != NULL && embeddings != NULL && n_texts >= 0, FALSE);
  g_return_val_if_fail (n_texts == 0 || (ids != NULL && n_ids != NULL), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (n_texts == 0)
    return TRUE;
  const ClipModel *model = ctx->model;
  const ClipTowerConfig *config = &model->config.text;
  gboolean ok = FALSE;

  /* Every id is checked before anything is computed: the ids index the embedding table. */
  int *pooled = g_new (int, n_texts);
  int n_rows = 0, longest = 0;
  for (int i = 0; i < n_texts; i++) {
    if (n_ids[i] < 1 || n_ids[i] > config->max_position_embeddings) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                   "Text %d has %d token ids; the text tower of the model in %s takes 1 to %d",
                   i, n_ids[i], model->path, config->max_position_embeddings);
      goto out;
    }
    for (int t = 0; t < n_ids[i]; t++)
      if (ids[i][t] < 0 || ids[i][t] >= config->vocab_size) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                     "Token id %" G_GINT32_FORMAT " (position %d of text %d) is outside the "
                     "vocabulary of the model in %s (0 to %d)", ids[i][t], t, i, model->path,
                     config->vocab_size - 1);
        goto out;
      }
    pooled[i] = clip_text_pooled_position (config, ids[i], n_ids[i]);
    n_rows += pooled[i] + 1;
    longest = MAX (longest, pooled[i] + 1);
  }

  /* The tokens all texts begin with are computed once. Each text keeps at least its pooled
   * token as its own row, so the prefix stops short of the shortest text's pooled position. */
  int shared_prefix = 0;
  if (n_texts > 1) {
    gboolean same = TRUE;
    while (same) {
      for (int i = 0; i < n_texts && same; i++)
        same = shared_prefix < pooled[i] && ids[i][shared_prefix] == ids[0][shared_prefix];
      if (same)
        shared_prefix++;
    }
    n_rows -= (n_texts - 1) * shared_prefix;
  }

  if (!clip_workspace_reserve (&ctx->workspace, config, MAX (n_rows, n_texts), longest,
                               ctx->n_threads, 0)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_NO_MEMORY,
                 "Out of memory for the text tower's workspace (%d rows of up to %d tokens, %d "
                 "threads) of the model in %s", n_rows, longest, ctx->n_threads, model->path);
    goto out;
  }
  ClipWorkspace *ws = &ctx->workspace;
  CLIP_RUN_TEAM (ctx, clip_text_forward (team_ptr, model, ws, ids, pooled, n_texts,
                                         shared_prefix, embeddings));
  ok = TRUE;

out:
  g_free (pooled);
  return ok;
}

gboolean
clip_embed_text (ClipContext *ctx, const char *const *texts, int n_texts, float *embeddings,
                 GError **error)
{
  g_return_val_if_fail (ctx != NULL && (texts != NULL || n_texts == 0), FALSE);
  const ClipModel *model = ctx->model;
  int context_length = model->config.text.max_position_embeddings;
  int32_t **ids = g_new0 (int32_t *, n_texts);
  int *n_ids = g_new0 (int, n_texts);
  gboolean ok = FALSE;

  for (int i = 0; i < n_texts; i++) {
    ids[i] = g_new (int32_t, context_length);
    n_ids[i] = clip_tokenizer_encode (model->tokenizer, texts[i], ids[i], context_length, error);
    if (n_ids[i] < 0)
      goto out;
  }
  ok = clip_embed_tokens (ctx, (const int32_t *const *) ids, n_ids, n_texts, embeddings, error);

out:
  for (int i = 0; i < n_texts; i++)
    g_free (ids[i]);
  g_free (ids);
  g_free (n_ids);
  return ok;
}

void
clip_score (const ClipModel *model, const float *image_embedding, const float *text_embeddings,
            int n_labels, float *logits, float *probs)
{
  g_return_if_fail (model != NULL && image_embedding != NULL);
  g_return_if_fail (n_labels == 0 || text_embeddings != NULL);
  int dim = model->config.projection_dim;
  float scale = clip_model_get_logit_scale (model);
  float *out = logits ? logits : g_new (float, MAX (n_labels, 1));

  for (int i = 0; i < n_labels; i++) {
    double dot = 0.0;
    for (int d = 0; d < dim; d++)
      dot += (double) image_embedding[d] * text_embeddings[(size_t) i * dim + d];
    out[i] = (float) (scale * dot);
  }
  if (probs)
    clip_softmax (probs, out, n_labels);
  if (out != logits)
    g_free (out);
}

/* ---------------------------------------------------------------------------------------------
 * BLAS diagnostics */


const char *
clip_blas_describe (void)
{
  static char *description;
  if (g_once_init_enter (&description)) {
    static const char *const modes[] = { "sequential build", "pthreads build", "OpenMP build" };
    int parallel = openblas_get_parallel ();
    char *d = g_strdup_printf ("%s (%s), core %s", openblas_get_config (),
                               parallel >= 0 && parallel <= 2 ? modes[parallel] : "unknown build",
                               openblas_get_corename ());
    g_once_init_leave (&description, d);
  }
  return description;
}

const char *
clip_blas_performance_hint (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  const char *core = openblas_get_corename ();
  gboolean generic = g_str_equal (core, "Prescott") || g_str_equal (core, "Core2") ||
                     g_str_equal (core, "Nehalem") || g_str_equal (core, "Sandybridge");
  if (generic && clip_cpu_supports (CLIP_ISA_AVX2)) {
    if (clip_cpu_supports (CLIP_ISA_AVX512))
      return "OpenBLAS did not recognise this CPU and uses generic kernels: set "
             "OPENBLAS_CORETYPE=SkylakeX (or Haswell) in the environment for 2-4x faster "
             "inference";
    return "OpenBLAS did not recognise this CPU and uses generic kernels: set "
           "OPENBLAS_CORETYPE=Haswell in the environment for 2-4x faster inference";
  }
#endif
  return NULL;
}
