/* encoder.c — the transformer encoder layer shared by both towers, the team and the workspace.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "ops.h"

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
  g_free (ws->qkv);
  g_free (ws->attn_out);
  g_free (ws->mlp);
  g_free (ws->attention);
  g_free (ws->bf16_rows);
  g_free (ws->patches);
  memset (ws, 0, sizeof *ws);
}

/* Replaces *buffer with rows x ld elements of `size` bytes; FALSE when that overflows or memory
 * runs out (the old buffer is then kept). */
static gboolean
regrow (void *buffer, size_t rows, size_t ld, size_t size)
{
  void **slot = buffer;
  if (ld != 0 && rows > G_MAXSIZE / ld / size)
    return FALSE;
  void *fresh = g_try_malloc (MAX (rows * ld * size, 1));
  if (fresh == NULL)
    return FALSE;
  g_free (*slot);
  *slot = fresh;
  return TRUE;
}

gboolean
clip_workspace_reserve (ClipWorkspace *ws, const ClipTowerConfig *config, int n_tokens,
                        int max_seq_len, int n_threads, int patch_dim)
{
  int hidden = config->hidden_size, inter = config->intermediate_size;
  int widest_in = MAX (MAX (hidden, inter), patch_dim);
  size_t attention = clip_attention_scratch_floats (max_seq_len, max_seq_len,
                                                    hidden / config->num_attention_heads);
  gboolean rows_grow = n_tokens > ws->capacity_tokens || hidden > ws->capacity_hidden;

  if (rows_grow) {
    int tokens = MAX (n_tokens, ws->capacity_tokens), width = MAX (hidden, ws->capacity_hidden);
    size_t ld = clip_row_stride (width);
    if (!regrow (&ws->hidden, tokens, ld, sizeof (float))
        || !regrow (&ws->normed, tokens, ld, sizeof (float))
        || !regrow (&ws->attn_out, tokens, ld, sizeof (float))
        || !regrow (&ws->qkv, tokens, clip_row_stride (3 * width), sizeof (float)))
      return FALSE;
    ws->capacity_tokens = tokens;
    ws->capacity_hidden = width;
    ws->capacity_intermediate = ws->capacity_in = 0;
    g_clear_pointer (&ws->patches, g_free);
  }
  if (inter > ws->capacity_intermediate) {
    if (!regrow (&ws->mlp, ws->capacity_tokens, clip_row_stride (inter), sizeof (float)))
      return FALSE;
    ws->capacity_intermediate = inter;
  }
  if (widest_in > ws->capacity_in) {
    if (!regrow (&ws->bf16_rows, ws->capacity_tokens, clip_row_stride (widest_in),
                 sizeof (uint16_t)))
      return FALSE;
    ws->capacity_in = widest_in;
  }
  if (attention > ws->capacity_attention || n_threads > ws->n_threads) {
    size_t per_thread = MAX (attention, ws->capacity_attention);
    int threads = MAX (n_threads, ws->n_threads);
    if (!regrow (&ws->attention, threads, per_thread, sizeof (float)))
      return FALSE;
    ws->capacity_attention = per_thread;
    ws->n_threads = threads;
  }
  if (patch_dim > 0 && ws->patches == NULL) {
    /* the whole row capacity at the widest stride a reservation may ask for later */
    if (!regrow (&ws->patches, ws->capacity_tokens, clip_row_stride (MAX (patch_dim, hidden)),
                 sizeof (float)))
      return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Row operations */

void
clip_layer_norm_rows (const ClipTeam *team, float *out, const float *in, size_t ld,
                      const float *weight, const float *bias, int n_rows, int dim, float eps)
{
  int r0, r1;
  clip_team_split (team, n_rows, 1, &r0, &r1);
  clip_layer_norm (out + r0 * ld, ld, in + r0 * ld, ld, weight, bias, r1 - r0, dim, eps);
  clip_team_barrier (team);
}

/* ---------------------------------------------------------------------------------------------
 * Encoder layer */

/* The last layer keeps only the pooled rows: ws->hidden row j becomes the state of
 * sequence j's pooled row (one thread: the rows move down in place, each to a row no later
 * than its own, in order). */
static void
gather_pooled_rows (const ClipTeam *team, ClipWorkspace *ws, size_t ld, int hidden,
                    const ClipSequence *sequences, const int *pooled, int n_sequences)
{
  if (team->tid == 0) {
    for (int s = 0, j = 0; s < n_sequences; s++) {
      if (pooled[s] < 0)
        continue;
      size_t row = (size_t) (sequences[s].start + pooled[s]);
      memmove (ws->hidden + j * ld, ws->hidden + row * ld, hidden * sizeof (float));
      memmove (ws->attn_out + j * ld, ws->attn_out + row * ld, hidden * sizeof (float));
      j++;
    }
  }
  clip_team_barrier (team);
}

int
clip_encoder_layer (const ClipTeam *team, const ClipModel *model, const ClipTowerConfig *config,
                    const ClipLayerWeights *layer, ClipWorkspace *ws, int n_rows,
                    const ClipSequence *sequences, int n_sequences, gboolean causal,
                    const int *pooled)
{
  int hidden = config->hidden_size, n_heads = config->num_attention_heads;
  int head_dim = hidden / n_heads;
  size_t ld = clip_row_stride (hidden), ld_qkv = clip_row_stride (3 * hidden);
  size_t ld_mlp = clip_row_stride (config->intermediate_size);
  float eps = config->layer_norm_eps;

  /* attention block: hidden += out_proj(attention(layer_norm1(hidden))) */
  clip_layer_norm_rows (team, ws->normed, ws->hidden, ld, layer->layer_norm1_w,
                        layer->layer_norm1_b, n_rows, hidden, eps);
  clip_linear_forward (team, ws, &layer->qkv, ws->normed, ld, n_rows, ws->qkv, ld_qkv,
                       CLIP_EPILOGUE_STORE);
  /* (sequence, head) pairs handed out one by one: each is small, so different heads on
   * different cores beats splitting one head's GEMMs */
  float *scratch = ws->attention + team->tid * ws->capacity_attention;
  for (int p; (p = clip_team_take (team, n_sequences * n_heads)) >= 0;) {
    const ClipSequence *seq = &sequences[p / n_heads];
    int q0 = 0, q1 = seq->length;
    if (pooled != NULL) {
      q0 = pooled[p / n_heads];
      q1 = q0 + 1;
      if (q0 < 0)
        continue;
    }
    size_t column = (size_t) (p % n_heads) * head_dim;
    clip_attention_head (model->isa, scratch, ws->capacity_attention, ws->qkv + column,
                         ws->qkv + hidden + column, ws->qkv + 2 * hidden + column, ld_qkv,
                         head_dim, seq, q0, q1, causal, ws->attn_out + column, ld);
  }
  clip_team_barrier (team);
  if (pooled != NULL) {
    gather_pooled_rows (team, ws, ld, hidden, sequences, pooled, n_sequences);
    n_rows = 0;
    for (int s = 0; s < n_sequences; s++)
      n_rows += pooled[s] >= 0;
  }
  clip_linear_forward (team, ws, &layer->out_proj, ws->attn_out, ld, n_rows, ws->hidden, ld,
                       CLIP_EPILOGUE_RESIDUAL);

  /* MLP block: hidden += fc2(act(fc1(layer_norm2(hidden)))) */
  clip_layer_norm_rows (team, ws->normed, ws->hidden, ld, layer->layer_norm2_w,
                        layer->layer_norm2_b, n_rows, hidden, eps);
  clip_linear_forward (team, ws, &layer->fc1, ws->normed, ld, n_rows, ws->mlp, ld_mlp,
                       config->hidden_act == CLIP_ACT_QUICK_GELU ? CLIP_EPILOGUE_QUICK_GELU
                                                                 : CLIP_EPILOGUE_GELU);
  clip_linear_forward (team, ws, &layer->fc2, ws->mlp, ld_mlp, n_rows, ws->hidden, ld,
                       CLIP_EPILOGUE_RESIDUAL);
  return n_rows;
}
