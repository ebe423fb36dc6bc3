/* vision.c — the image tower, top to bottom.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "ops.h"

#include <cblas.h>
#include <string.h>

void
clip_vision_forward (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                     const float *pixels, float *embedding)
{
  const ClipTowerConfig *config = &model->config.vision;
  const ClipTowerWeights *w = &model->vision;
  int hidden = config->hidden_size, size = config->image_size, patch = config->patch_size;
  int grid = size / patch, n_patches = grid * grid, n_tokens = n_patches + 1;
  int patch_dim = config->num_channels * patch * patch;
  int r0, r1, c0, c1;

  /* patches[p] = the p-th patch (row-major over the grid), flattened as (channel, y, x): the
   * layout of patch_embedding.weight [hidden, C, P, P], so the stride-P convolution is a GEMM */
  clip_team_split (team, n_patches, 1, &r0, &r1);
  for (int p = r0; p < r1; p++) {
    int gy = p / grid, gx = p % grid;
    float *row = ws->patches + (size_t) p * patch_dim;
    for (int c = 0; c < config->num_channels; c++)
      for (int y = 0; y < patch; y++) {
        const float *src = pixels + ((size_t) c * size + gy * patch + y) * size + gx * patch;
        memcpy (row + (c * patch + y) * patch, src, patch * sizeof (float));
      }
  }
  clip_team_barrier (team);

  /* hidden[1..] = patch embeddings; hidden[0] = class embedding; + position embeddings */
  int n_chunks = clip_linear_n_chunks (team, hidden);
  for (int i; (i = clip_team_take (team, n_chunks)) >= 0;) {
    clip_linear_chunk (ws->patches, n_patches, patch_dim, w->patch_embedding, hidden,
                       ws->hidden + hidden, FALSE, i, n_chunks, &c0, &c1);
    for (int c = c0; c < c1; c++)
      ws->hidden[c] = w->class_embedding[c];
    for (int t = 0; t < n_tokens; t++)
      for (int c = c0; c < c1; c++)
        ws->hidden[(size_t) t * hidden + c] += w->position_embedding[(size_t) t * hidden + c];
  }
  clip_team_barrier (team);

  /* pre_layrnorm, in place */
  clip_team_split (team, n_tokens, 1, &r0, &r1);
  clip_layer_norm (ws->hidden + (size_t) r0 * hidden, ws->hidden + (size_t) r0 * hidden,
                   w->pre_layernorm_w, w->pre_layernorm_b, r1 - r0, hidden,
                   config->layer_norm_eps);
  clip_team_barrier (team);

  ClipSequence image = { 0, n_tokens, 0 };
  for (int l = 0; l < config->num_hidden_layers; l++)
    clip_encoder_layer (team, config, &w->layers[l], ws, n_tokens, &image, 1, FALSE);

  /* post_layernorm on the class token, visual_projection (no bias), L2 normalisation */
  if (team->tid == 0) {
    clip_layer_norm (ws->normed, ws->hidden, w->final_layernorm_w, w->final_layernorm_b, 1,
                     hidden, config->layer_norm_eps);
    cblas_sgemv (CblasRowMajor, CblasNoTrans, model->config.projection_dim, hidden, 1.0f,
                 w->projection, hidden, ws->normed, 1, 0.0f, embedding, 1);
    clip_l2_normalize (embedding, model->config.projection_dim);
  }
}
