/* vision.c — the image tower, top to bottom.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "ops.h"

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
  size_t ld = clip_row_stride (hidden), ld_patches = clip_row_stride (patch_dim);
  int r0, r1;

  /* patches[p] = the p-th patch (row-major over the grid), flattened as (channel, y, x): the
   * layout of patch_embedding.weight [hidden, C, P, P], so the stride-P convolution is a GEMM */
  clip_team_split (team, n_patches, 1, &r0, &r1);
  for (int p = r0; p < r1; p++) {
    int gy = p / grid, gx = p % grid;
    float *row = ws->patches + p * ld_patches;
    for (int c = 0; c < config->num_channels; c++)
      for (int y = 0; y < patch; y++) {
        const float *src = pixels + ((size_t) c * size + gy * patch + y) * size + gx * patch;
        memcpy (row + (c * patch + y) * patch, src, patch * sizeof (float));
      }
  }
  clip_team_barrier (team);

  /* hidden[1..] = patch embeddings; hidden[0] = class embedding; + position embeddings */
  clip_linear_forward (team, ws, &w->patch_embedding, ws->patches, ld_patches, n_patches,
                       ws->hidden + ld, ld, CLIP_EPILOGUE_STORE);
  clip_team_split (team, n_tokens, 1, &r0, &r1);
  for (int t = r0; t < r1; t++) {
    float *row = ws->hidden + t * ld;
    const float *position = w->position_embedding + (size_t) t * hidden;
    if (t == 0)
      memcpy (row, w->class_embedding, hidden * sizeof (float));
    for (int c = 0; c < hidden; c++)
      row[c] += position[c];
  }
  clip_team_barrier (team);

  /* pre_layrnorm, in place */
  clip_layer_norm_rows (team, ws->hidden, ws->hidden, ld, w->pre_layernorm_w,
                        w->pre_layernorm_b, n_tokens, hidden, config->layer_norm_eps);

  /* the tower pools the class token (row 0): the last layer computes that row alone */
  ClipSequence image = { 0, n_tokens, 0 };
  const int pooled = 0;
  for (int l = 0; l < config->num_hidden_layers; l++)
    clip_encoder_layer (team, model, config, &w->layers[l], ws, n_tokens, &image, 1, FALSE,
                        l == config->num_hidden_layers - 1 ? &pooled : NULL);

  /* post_layernorm on the class token, visual_projection (no bias), L2 normalisation */
  clip_layer_norm_rows (team, ws->normed, ws->hidden, ld, w->final_layernorm_w,
                        w->final_layernorm_b, 1, hidden, config->layer_norm_eps);
  clip_linear_forward (team, ws, &w->projection, ws->normed, ld, 1, embedding,
                       model->config.projection_dim, CLIP_EPILOGUE_STORE);
  if (team->tid == 0)
    clip_l2_normalize (embedding, model->config.projection_dim);
}
