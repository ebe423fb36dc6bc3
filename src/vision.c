/* vision.c — the image tower, top to bottom.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "ops.h"

#include <string.h>

void
clip_vision_forward_batch (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                           const float *pixels, int n_images, float *embeddings)
{
  const ClipTowerConfig *config = &model->config.vision;
  const ClipTowerWeights *w = &model->vision;
  int hidden = config->hidden_size, size = config->image_size, patch = config->patch_size;
  int grid = size / patch, n_patches = grid * grid, n_tokens = n_patches + 1;
  int patch_dim = config->num_channels * patch * patch, dim = model->config.projection_dim;
  size_t ld = clip_row_stride (hidden), ld_patches = clip_row_stride (patch_dim);
  size_t image_floats = (size_t) config->num_channels * size * size;
  int r0, r1;

  /* patches[i * n_patches + p] = the p-th patch of image i (row-major over the grid),
   * flattened as (channel, y, x): the layout of patch_embedding.weight [hidden, C, P, P], so the
   * stride-P convolution is a GEMM */
  clip_team_split (team, n_images * n_patches, 1, &r0, &r1);
  for (int ip = r0; ip < r1; ip++) {
    int i = ip / n_patches, p = ip % n_patches;
    int gy = p / grid, gx = p % grid;
    const float *image = pixels + (size_t) i * image_floats;
    float *row = ws->patches + ip * ld_patches;
    for (int c = 0; c < config->num_channels; c++)
      for (int y = 0; y < patch; y++) {
        const float *src = image + ((size_t) c * size + gy * patch + y) * size + gx * patch;
        memcpy (row + (c * patch + y) * patch, src, patch * sizeof (float));
      }
  }
  clip_team_barrier (team);

  /* Image i is the sequence of rows [i * n_tokens, (i + 1) * n_tokens): its class token, then
   * its patches. hidden[1..] = patch embeddings (one GEMM per image, as its rows sit between two
   * class tokens); hidden[0] = class embedding; + position embeddings */
  for (int i = 0; i < n_images; i++)
    clip_linear_forward (team, ws, &w->patch_embedding, ws->patches + i * n_patches * ld_patches,
                         ld_patches, n_patches, ws->hidden + ((size_t) i * n_tokens + 1) * ld, ld,
                         CLIP_EPILOGUE_STORE);
  clip_team_split (team, n_images * n_tokens, 1, &r0, &r1);
  for (int it = r0; it < r1; it++) {
    int t = it % n_tokens;
    float *row = ws->hidden + it * ld;
    const float *position = w->position_embedding + (size_t) t * hidden;
    if (t == 0)
      memcpy (row, w->class_embedding, hidden * sizeof (float));
    for (int c = 0; c < hidden; c++)
      row[c] += position[c];
  }
  clip_team_barrier (team);

  /* pre_layrnorm, in place */
  clip_layer_norm_rows (team, ws->hidden, ws->hidden, ld, w->pre_layernorm_w,
                        w->pre_layernorm_b, n_images * n_tokens, hidden, config->layer_norm_eps);

  /* Attention stays within each image; the tower pools each class token (its row 0), and the
   * last layer computes those rows alone, leaving image i's in hidden row i. */
  ClipSequence *images = g_newa (ClipSequence, n_images);
  int *pooled = g_newa (int, n_images);
  for (int i = 0; i < n_images; i++) {
    images[i] = (ClipSequence) { i * n_tokens, n_tokens, 0 };
    pooled[i] = 0;
  }
  for (int l = 0; l < config->num_hidden_layers; l++)
    clip_encoder_layer (team, model, config, &w->layers[l], ws, n_images * n_tokens, images,
                        n_images, FALSE, l == config->num_hidden_layers - 1 ? pooled : NULL);

  /* post_layernorm on the class tokens, visual_projection (no bias), L2 normalisation */
  clip_layer_norm_rows (team, ws->normed, ws->hidden, ld, w->final_layernorm_w,
                        w->final_layernorm_b, n_images, hidden, config->layer_norm_eps);
  clip_linear_forward (team, ws, &w->projection, ws->normed, ld, n_images, embeddings, dim,
                       CLIP_EPILOGUE_STORE);
  clip_team_split (team, n_images, 1, &r0, &r1);
  for (int i = r0; i < r1; i++)
    clip_l2_normalize (embeddings + (size_t) i * dim, dim);
  clip_team_barrier (team);
}

void
clip_vision_forward (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                     const float *pixels, float *embedding)
{
  clip_vision_forward_batch (team, model, ws, pixels, 1, embedding);
}
