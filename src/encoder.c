/* encoder.c — the transformer encoder layer shared by both towers, and its GEMM partitioning.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Team */

void
clip_team_split (const ClipTeam *team, int n, int align, int *begin, int *end)
{
  int blocks = (n + align - 1) / align;
  int per = blocks / team->n_threads, extra = blocks % team->n_threads;
  int b0 = team->tid * per + MIN (team->tid, extra);
  int b1 = b0 + per + (team->tid < extra ? 1 : 0);
  *begin = MIN (b0 * align, n);
  *end = MIN (b1 * align, n);
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

int
clip_team_take (const ClipTeam *team, int n_items)
{
  int item = __atomic_fetch_add (&team->barrier->next_item, 1, __ATOMIC_RELAXED);
  return item < n_items ? item : -1;
}

void
clip_team_barrier (const ClipTeam *team)
{
  ClipBarrier *b = team->barrier;
  if (team->n_threads == 1) {
    b->next_item = 0;
    return;
  }
  int generation = __atomic_load_n (&b->generation, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch (&b->arrived, 1, __ATOMIC_ACQ_REL) == team->n_threads) {
    /* last to arrive: reset for the next phase (the others are all waiting), then release */
    __atomic_store_n (&b->arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n (&b->next_item, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch (&b->generation, 1, __ATOMIC_RELEASE);
    return;
  }
  gint64 spin_until = 0;
  for (unsigned spins = 1; __atomic_load_n (&b->generation, __ATOMIC_ACQUIRE) == generation;
       spins++) {
    if (spins % 256)
      cpu_relax ();
    else if (spin_until == 0)
      spin_until = g_get_monotonic_time () + 200;   /* spin ~0.2 ms, then share the core */
    else if (g_get_monotonic_time () > spin_until)
      sched_yield ();
  }
}

/* ---------------------------------------------------------------------------------------------
 * Workspace */

void
clip_workspace_clear (ClipWorkspace *ws)
{
  g_free (ws->hidden);
  g_free (ws->normed);
  g_free (ws->q);
  g_free (ws->k);
  g_free (ws->v);
  g_free (ws->attn_out);
  g_free (ws->mlp);
  g_free (ws->attn_scores);
  g_free (ws->attn_kv);
  g_free (ws->patches);
  memset (ws, 0, sizeof *ws);
}

static float *
grow (float *buffer, size_t n_floats)
{
  g_free (buffer);
  return g_new (float, n_floats);
}

gboolean
clip_workspace_reserve (ClipWorkspace *ws, const ClipTowerConfig *config, int n_tokens,
                        int max_seq_len, int n_threads, int patch_dim)
{
  int hidden = config->hidden_size, inter = config->intermediate_size;
  int scores = max_seq_len * max_seq_len;
  gboolean rows_grow = n_tokens > ws->capacity_tokens || hidden > ws->capacity_hidden;

  if (rows_grow) {
    ws->capacity_tokens = MAX (n_tokens, ws->capacity_tokens);
    ws->capacity_hidden = MAX (hidden, ws->capacity_hidden);
    size_t n = (size_t) ws->capacity_tokens * ws->capacity_hidden;
    ws->hidden = grow (ws->hidden, n);
    ws->normed = grow (ws->normed, n);
    ws->q = grow (ws->q, n);
    ws->k = grow (ws->k, n);
    ws->v = grow (ws->v, n);
    ws->attn_out = grow (ws->attn_out, n);
  }
  if (rows_grow || inter > ws->capacity_intermediate) {
    ws->capacity_intermediate = MAX (inter, ws->capacity_intermediate);
    ws->mlp = grow (ws->mlp, (size_t) ws->capacity_tokens * ws->capacity_intermediate);
  }
  int kv = max_seq_len * (hidden / config->num_attention_heads);
  if (scores > ws->capacity_scores || kv > ws->capacity_kv || n_threads > ws->n_threads) {
    ws->capacity_scores = MAX (scores, ws->capacity_scores);
    ws->capacity_kv = MAX (kv, ws->capacity_kv);
    ws->n_threads = MAX (n_threads, ws->n_threads);
    ws->attn_scores = grow (ws->attn_scores, (size_t) ws->capacity_scores * ws->n_threads);
    ws->attn_kv = grow (ws->attn_kv, (size_t) 2 * ws->capacity_kv * ws->n_threads);
  }
  if (patch_dim > 0 && (rows_grow || ws->patches == NULL)) {
    /* patch_dim <= hidden is not guaranteed (3*P*P vs hidden): size for the larger */
    ws->patches = grow (ws->patches, (size_t) ws->capacity_tokens * MAX (patch_dim, hidden));
  }
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * GEMM */

/* Chunks are multiples of 16 columns, so each starts on a cache line of the output and the
 * kernels' blocking is not split mid-panel, and at least 128 wide: each OpenBLAS call packs the
 * whole input again, which must stay small next to the chunk's own work. Two chunks per thread
 * let a thread that was held up hand the rest of its share to the others. */
#define CLIP_COLUMN_ALIGN 16
#define CLIP_MIN_CHUNK_COLUMNS 128
#define CLIP_CHUNKS_PER_THREAD 2

int
clip_linear_n_chunks (const ClipTeam *team, int n_out)
{
  int n = team->n_threads == 1 ? 1 : team->n_threads * CLIP_CHUNKS_PER_THREAD;
  return CLAMP (n_out / CLIP_MIN_CHUNK_COLUMNS, 1, n);
}

void
clip_linear_chunk (const float *in, int rows, int n_in, const float *weight, int n_out,
                   float *out, gboolean accumulate, int chunk, int n_chunks, int *col_begin,
                   int *col_end)
{
  ClipTeam as_split = { chunk, n_chunks, NULL };
  int c0, c1;
  clip_team_split (&as_split, n_out, CLIP_COLUMN_ALIGN, &c0, &c1);
  if (c1 > c0 && rows > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, rows, c1 - c0, n_in, 1.0f, in, n_in,
                 weight + (size_t) c0 * n_in, n_in, accumulate ? 1.0f : 0.0f, out + c0, n_out);
  *col_begin = c0;
  *col_end = c1;
}

/* ---------------------------------------------------------------------------------------------
 * Attention */

/* Attention of one head over one sequence: softmax(q k^T) v into attn_out's head columns.
 * Queries are the sequence's own rows; keys and values are the shared prefix's rows followed by
 * its own, so with the causal mask own row r sees the shared_prefix + r + 1 first positions. */
static void
attention_head (const ClipTowerConfig *config, ClipWorkspace *ws, const ClipSequence *seq,
                int head, gboolean causal, float *scores, float *kv)
{
  int hidden = config->hidden_size;
  int head_dim = hidden / config->num_attention_heads;
  int n = seq->length, n_keys = seq->shared_prefix + seq->length;
  size_t offset = (size_t) seq->start * hidden + (size_t) head * head_dim;
  const float *k = ws->k + offset, *v = ws->v + offset;
  int ld_kv = hidden;

  if (seq->shared_prefix > 0) {
    /* gather this head's keys and values of prefix + own rows into one contiguous block */
    float *k_all = kv, *v_all = kv + (size_t) n_keys * head_dim;
    for (int t = 0; t < n_keys; t++) {
      size_t row = t < seq->shared_prefix ? (size_t) t : (size_t) (seq->start + t - seq->shared_prefix);
      memcpy (k_all + (size_t) t * head_dim, ws->k + row * hidden + head * head_dim,
              head_dim * sizeof (float));
      memcpy (v_all + (size_t) t * head_dim, ws->v + row * hidden + head * head_dim,
              head_dim * sizeof (float));
    }
    k = k_all;
    v = v_all;
    ld_kv = head_dim;
  }

  /* q was scaled by head_dim^-0.5 when its bias was added. */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n_keys, head_dim, 1.0f, ws->q + offset,
               hidden, k, ld_kv, 0.0f, scores, n_keys);
  clip_softmax_rows (scores, n_keys, n, n_keys, causal);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, head_dim, n_keys, 1.0f, scores,
               n_keys, v, ld_kv, 0.0f, ws->attn_out + offset, hidden);
}

/* ---------------------------------------------------------------------------------------------
 * Encoder layer */

void
clip_encoder_layer (const ClipTeam *team, const ClipTowerConfig *config,
                    const ClipLayerWeights *layer, ClipWorkspace *ws, int n_rows,
                    const ClipSequence *sequences, int n_sequences, gboolean causal)
{
  int hidden = config->hidden_size, inter = config->intermediate_size;
  int n_heads = config->num_attention_heads;
  float q_scale = 1.0f / sqrtf ((float) (hidden / n_heads));
  int r0, r1, c0, c1;

  /* normed = layer_norm1(hidden), rows split across the team */
  clip_team_split (team, n_rows, 1, &r0, &r1);
  clip_layer_norm (ws->normed + (size_t) r0 * hidden, ws->hidden + (size_t) r0 * hidden,
                   layer->layer_norm1_w, layer->layer_norm1_b, r1 - r0, hidden,
                   config->layer_norm_eps);
  clip_team_barrier (team);

  /* q, k, v projections, chunk by chunk; the bias goes on while the chunk is in cache */
  {
    const float *weights[3] = { layer->q_proj_w, layer->k_proj_w, layer->v_proj_w };
    const float *biases[3] = { layer->q_proj_b, layer->k_proj_b, layer->v_proj_b };
    float *outs[3] = { ws->q, ws->k, ws->v };
    float scales[3] = { q_scale, 1.0f, 1.0f };
    int n_chunks = clip_linear_n_chunks (team, hidden);
    for (int i; (i = clip_team_take (team, 3 * n_chunks)) >= 0;) {
      int m = i / n_chunks;
      clip_linear_chunk (ws->normed, n_rows, hidden, weights[m], hidden, outs[m], FALSE,
                         i % n_chunks, n_chunks, &c0, &c1);
      clip_add_bias_scaled (outs[m], hidden, n_rows, c0, c1, biases[m], scales[m]);
    }
  }
  clip_team_barrier (team);

  /* attention: (sequence, head) pairs handed out one by one; each pair is small, so different
   * heads on different cores beats splitting one head's GEMMs */
  {
    float *scores = ws->attn_scores + (size_t) team->tid * ws->capacity_scores;
    float *kv = ws->attn_kv + (size_t) team->tid * 2 * ws->capacity_kv;
    for (int p; (p = clip_team_take (team, n_sequences * n_heads)) >= 0;)
      attention_head (config, ws, &sequences[p / n_heads], p % n_heads, causal, scores, kv);
  }
  clip_team_barrier (team);

  /* hidden += out_proj(attn_out): accumulate straight into the residual stream */
  {
    int n_chunks = clip_linear_n_chunks (team, hidden);
    for (int i; (i = clip_team_take (team, n_chunks)) >= 0;) {
      clip_linear_chunk (ws->attn_out, n_rows, hidden, layer->out_proj_w, hidden, ws->hidden,
                         TRUE, i, n_chunks, &c0, &c1);
      clip_add_bias_scaled (ws->hidden, hidden, n_rows, c0, c1, layer->out_proj_b, 1.0f);
    }
  }
  clip_team_barrier (team);

  /* normed = layer_norm2(hidden) */
  clip_layer_norm (ws->normed + (size_t) r0 * hidden, ws->hidden + (size_t) r0 * hidden,
                   layer->layer_norm2_w, layer->layer_norm2_b, r1 - r0, hidden,
                   config->layer_norm_eps);
  clip_team_barrier (team);

  /* mlp = act(fc1(normed)) */
  {
    int n_chunks = clip_linear_n_chunks (team, inter);
    for (int i; (i = clip_team_take (team, n_chunks)) >= 0;) {
      clip_linear_chunk (ws->normed, n_rows, hidden, layer->fc1_w, inter, ws->mlp, FALSE, i,
                         n_chunks, &c0, &c1);
      if (config->hidden_act == CLIP_ACT_QUICK_GELU)
        clip_bias_quick_gelu (ws->mlp, inter, n_rows, c0, c1, layer->fc1_b);
      else
        clip_bias_gelu (ws->mlp, inter, n_rows, c0, c1, layer->fc1_b);
    }
  }
  clip_team_barrier (team);

  /* hidden += fc2(mlp) */
  {
    int n_chunks = clip_linear_n_chunks (team, hidden);
    for (int i; (i = clip_team_take (team, n_chunks)) >= 0;) {
      clip_linear_chunk (ws->mlp, n_rows, inter, layer->fc2_w, hidden, ws->hidden, TRUE, i,
                         n_chunks, &c0, &c1);
      clip_add_bias_scaled (ws->hidden, hidden, n_rows, c0, c1, layer->fc2_b, 1.0f);
    }
  }
  clip_team_barrier (team);
}
