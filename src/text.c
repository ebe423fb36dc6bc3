/* text.c — the text tower, top to bottom.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Several prompts run as one batch of packed rows (no padding): the weights are read once per
 * layer for all of them. Each prompt is computed only up to its pooled (EOS) token: with the
 * causal mask nothing after it can change the pooled state.
 */
#include "forward.h"
#include "ops.h"

#include <cblas.h>

int
clip_text_pooled_position (const ClipTowerConfig *config, const int32_t *ids, int n_ids)
{
  int best = 0;
  if (config->eos_token_id == 2) {
    /* legacy configs: HF pools at argmax(ids) (its first occurrence); EOS has the highest id */
    for (int i = 1; i < n_ids; i++)
      if (ids[i] > ids[best])
        best = i;
    return best;
  }
  /* HF: (ids == eos).int().argmax(), which is 0 when there is no EOS */
  for (int i = 0; i < n_ids; i++)
    if (ids[i] == config->eos_token_id)
      return i;
  return 0;
}

void
clip_text_forward (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                   const int32_t *const *ids, const int *pooled_positions, int n_texts,
                   float *embeddings)
{
  const ClipTowerConfig *config = &model->config.text;
  const ClipTowerWeights *w = &model->text;
  int hidden = config->hidden_size, dim = model->config.projection_dim;
  ClipSequence stack_sequences[64];
  ClipSequence *sequences = n_texts <= 64 ? stack_sequences : g_new (ClipSequence, n_texts);
  int n_rows = 0, r0, r1;

  for (int i = 0; i < n_texts; i++) {
    sequences[i].start = n_rows;
    sequences[i].length = pooled_positions[i] + 1;
    n_rows += sequences[i].length;
  }

  /* hidden = token_embedding[ids] + position_embedding[position] */
  for (int i = 0; i < n_texts; i++) {
    clip_team_split (team, sequences[i].length, 1, &r0, &r1);
    for (int t = r0; t < r1; t++) {
      float *row = ws->hidden + (size_t) (sequences[i].start + t) * hidden;
      const float *token = w->token_embedding + (size_t) ids[i][t] * hidden;
      const float *position = w->position_embedding + (size_t) t * hidden;
      for (int c = 0; c < hidden; c++)
        row[c] = token[c] + position[c];
    }
  }
  clip_team_barrier (team);

  for (int l = 0; l < config->num_hidden_layers; l++)
    clip_encoder_layer (team, config, &w->layers[l], ws, n_rows, sequences, n_texts, TRUE);

  /* final_layer_norm of each pooled row into normed[i] */
  clip_team_split (team, n_texts, 1, &r0, &r1);
  for (int i = r0; i < r1; i++) {
    int pooled = sequences[i].start + sequences[i].length - 1;
    clip_layer_norm (ws->normed + (size_t) i * hidden, ws->hidden + (size_t) pooled * hidden,
                     w->final_layernorm_w, w->final_layernorm_b, 1, hidden,
                     config->layer_norm_eps);
  }
  clip_team_barrier (team);

  /* text_projection (no bias), then L2 normalisation of each row */
  if (team->tid == 0) {
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_texts, dim, hidden, 1.0f,
                 ws->normed, hidden, w->projection, hidden, 0.0f, embeddings, dim);
    for (int i = 0; i < n_texts; i++)
      clip_l2_normalize (embeddings + (size_t) i * dim, dim);
  }

  if (sequences != stack_sequences)
    g_free (sequences);
}
