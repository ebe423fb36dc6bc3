/* text.c — the text tower, top to bottom.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Several prompts run as one batch of packed rows (no padding): the weights are read once per
 * layer for all of them. Each prompt is computed only up to its pooled (EOS) token: with the
 * causal mask nothing after it can change the pooled state. For the same reason the tokens that
 * every prompt of the batch begins with (at least <bos>, and "<bos> a photo of a" under the
 * default template) have the same states in every prompt: they are computed once, as rows
 * [0, shared_prefix), and each prompt's own rows attend to them.
 */
#include "forward.h"
#include "ops.h"


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
                   int shared_prefix, float *embeddings)
{
  const ClipTowerConfig *config = &model->config.text;
  const ClipTowerWeights *w = &model->text;
  int hidden = config->hidden_size, dim = model->config.projection_dim;
  int n_sequences = n_texts + (shared_prefix > 0 ? 1 : 0);
  ClipSequence stack_sequences[65];
  ClipSequence *sequences = n_sequences <= 65 ? stack_sequences : g_new (ClipSequence, n_sequences);
  ClipSequence *texts = sequences + (shared_prefix > 0 ? 1 : 0);
  int n_rows = shared_prefix, r0, r1;
  size_t ld = clip_row_stride (hidden);

  /* rows: the shared prefix (a causal sequence of its own), then each text's remaining tokens */
  if (shared_prefix > 0)
    sequences[0] = (ClipSequence) { 0, shared_prefix, 0 };
  for (int i = 0; i < n_texts; i++) {
    texts[i] = (ClipSequence) { n_rows, pooled_positions[i] + 1 - shared_prefix, shared_prefix };
    n_rows += texts[i].length;
  }

  /* hidden = token_embedding[id] + position_embedding[position] */
  clip_team_split (team, n_rows, 1, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    int text = 0, position = r;
    if (r >= shared_prefix) {
      while (r >= texts[text].start + texts[text].length)
        text++;
      position = shared_prefix + r - texts[text].start;
    }
    const float *token = w->token_embedding + (size_t) ids[text][position] * hidden;
    const float *pos = w->position_embedding + (size_t) position * hidden;
    float *row = ws->hidden + r * ld;
    for (int c = 0; c < hidden; c++)
      row[c] = token[c] + pos[c];
  }
  clip_team_barrier (team);

  /* each text pools its last row (its EOS); the shared prefix pools nothing. The last layer
   * computes those rows alone and leaves text i's in row i. */
  int stack_pooled[65];
  int *pooled = n_sequences <= 65 ? stack_pooled : g_new (int, n_sequences);
  for (int s = 0; s < n_sequences; s++)
    pooled[s] = &sequences[s] < texts ? -1 : sequences[s].length - 1;
  for (int l = 0; l < config->num_hidden_layers; l++)
    clip_encoder_layer (team, model, config, &w->layers[l], ws, n_rows, sequences, n_sequences,
                        TRUE, l == config->num_hidden_layers - 1 ? pooled : NULL);

  /* final_layer_norm of each text's pooled row, then text_projection (no bias) and L2
   * normalisation of each row */
  clip_layer_norm_rows (team, ws->normed, ws->hidden, ld, w->final_layernorm_w,
                        w->final_layernorm_b, n_texts, hidden, config->layer_norm_eps);

  clip_linear_forward (team, ws, &w->projection, ws->normed, ld, n_texts, embeddings, dim,
                       CLIP_EPILOGUE_STORE);
  clip_team_split (team, n_texts, 1, &r0, &r1);
  for (int i = r0; i < r1; i++)
    clip_l2_normalize (embeddings + (size_t) i * dim, dim);

  if (sequences != stack_sequences)
    g_free (sequences);
  if (pooled != stack_pooled)
    g_free (pooled);
}
