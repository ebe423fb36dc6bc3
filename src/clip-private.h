/* clip-private.h — engine internals shared between src/ files. Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_PRIVATE_H
#define CLIP_PRIVATE_H

#include "clip.h"
#include "gemm.h"
#include "safetensors.h"

G_BEGIN_DECLS

/* ------------------------------------------------------------------------------------------ */
/* Configuration (config.json). Field names follow HF's CLIPTextConfig / CLIPVisionConfig. */

typedef enum {
  CLIP_ACT_QUICK_GELU,       /* x * sigmoid(1.702 x) */
  CLIP_ACT_GELU,             /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
} ClipActivation;

typedef struct {
  int hidden_size;
  int intermediate_size;
  int num_hidden_layers;
  int num_attention_heads;
  ClipActivation hidden_act;
  float layer_norm_eps;
  /* vision tower only */
  int image_size;
  int patch_size;
  int num_channels;          /* 3 */
  /* text tower only */
  int max_position_embeddings;
  int vocab_size;
  int eos_token_id;          /* 2 in legacy configs: pool at argmax(ids) instead */
} ClipTowerConfig;

typedef struct {
  ClipTowerConfig text;
  ClipTowerConfig vision;
  int projection_dim;
} ClipConfig;

/* Parses config.json (CLIPConfig with text_config/vision_config; absent fields take HF's
 * defaults). */
gboolean clip_config_load (const char *path, ClipConfig *config, GError **error);
/* Parses preprocessor_config.json (legacy integer size/crop_size and the dict forms). */
gboolean clip_preprocess_config_load (const char *path, ClipPreprocessConfig *config,
                                      GError **error);

/* ------------------------------------------------------------------------------------------ */
/* Weights. The GEMM weights are packed at load (gemm.h), each into a ClipLinear with its bias;
 * q, k and v as one linear of 3 x hidden outputs, q's rows and bias scaled by head_dim^-0.5 as
 * HF scales q. The other pointers are f32, into the mmap'ed safetensors file or into the model's
 * buffer of converted f16/bf16 tensors. */

typedef struct {
  const float *layer_norm1_w, *layer_norm1_b;  /* layer_norm1.{weight,bias}     [hidden] */
  ClipLinear qkv;                              /* self_attn.{q,k,v}_proj         [3 hidden, hidden] */
  ClipLinear out_proj;                         /* self_attn.out_proj           [hidden, hidden] */
  const float *layer_norm2_w, *layer_norm2_b;  /* layer_norm2.{weight,bias}     [hidden] */
  ClipLinear fc1;                              /* mlp.fc1                      [intermediate, hidden] */
  ClipLinear fc2;                              /* mlp.fc2                      [hidden, intermediate] */
} ClipLayerWeights;

typedef struct {
  ClipLayerWeights *layers;                    /* {text,vision}_model.encoder.layers.{i}.* */
  const float *position_embedding;             /* embeddings.position_embedding.weight [n_positions, hidden] */
  /* text tower */
  const float *token_embedding;                /* text_model.embeddings.token_embedding.weight [vocab, hidden] */
  /* vision tower */
  const float *class_embedding;                /* vision_model.embeddings.class_embedding [hidden] */
  ClipLinear patch_embedding;                  /* vision_model.embeddings.patch_embedding.weight [hidden, 3 P P] */
  const float *pre_layernorm_w, *pre_layernorm_b; /* vision_model.pre_layrnorm [hidden] */
  /* both: text_model.final_layer_norm / vision_model.post_layernorm */
  const float *final_layernorm_w, *final_layernorm_b; /* [hidden] */
  ClipLinear projection;                       /* text_projection.weight / visual_projection.weight [projection_dim, hidden] */
} ClipTowerWeights;

struct _ClipModel {
  gint ref_count;
  char *path;
  ClipConfig config;
  ClipPreprocessConfig preprocess;
  ClipTokenizer *tokenizer;
  ClipSafetensors *safetensors;                /* mmap'ed model.safetensors */
  float *converted;                            /* f16/bf16 tensors converted to f32 (or NULL) */
  size_t converted_bytes;
  size_t packed_bytes;
  ClipIsa isa;                                 /* the kernels the weights are packed for */
  ClipPrecision precision;                     /* in use */
  char *precision_note;                        /* why it is not the one asked for, or NULL */
  ClipTowerWeights text;
  ClipTowerWeights vision;
  float logit_scale;                           /* logit_scale as stored (log of the factor) */
};

G_END_DECLS

#endif /* CLIP_PRIVATE_H */
