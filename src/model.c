/* model.c — load a HuggingFace CLIPModel directory into an immutable, refcounted ClipModel.
 *
 * The weights are bound against a table of expected tensors built from config.json (name and
 * exact shape of each, as transformers' modeling_clip.py creates them), so a checkpoint that
 * disagrees with its config fails here, naming the tensor, rather than reading out of bounds in
 * a forward pass. F32 tensors are used in place in the mapping; F16/BF16 ones are converted once
 * into a single buffer. Tensors the table does not name (position_ids buffers...) are ignored.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-private.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

G_DEFINE_QUARK (clip-error-quark, clip_error)

#define MODEL_HINT \
  "run scripts/download-model.sh, or point `model` at a HuggingFace CLIP directory " \
  "(config.json, model.safetensors, vocab.json, merges.txt, preprocessor_config.json)"

/* ------------------------------------------------------------------------------------------ */
/* Expected-tensor table */

typedef struct {
  char *name;
  int n_dims;
  int64_t shape[4];
  gboolean scalar;                   /* logit_scale: 0-dim, or [1] as some exporters write */
  const float **dst;
  const ClipTensorInfo *info;        /* bound in bind_tensors () */
} ExpectedTensor;

static void
expect (GArray *table, const float **dst, int n_dims, const int64_t *shape, const char *fmt, ...)
{
  ExpectedTensor e = { 0 };
  va_list args;

  va_start (args, fmt);
  e.name = g_strdup_vprintf (fmt, args);
  va_end (args);
  e.n_dims = n_dims;
  memcpy (e.shape, shape, n_dims * sizeof (int64_t));
  e.dst = dst;
  g_array_append_val (table, e);
}

#define EXPECT1(table, dst, d0, ...) \
  expect (table, dst, 1, (const int64_t[]) { d0 }, __VA_ARGS__)
#define EXPECT2(table, dst, d0, d1, ...) \
  expect (table, dst, 2, (const int64_t[]) { d0, d1 }, __VA_ARGS__)

static void
expect_encoder (GArray *table, const char *prefix, const ClipTowerConfig *c, ClipLayerWeights *layers)
{
  const int64_t h = c->hidden_size, inter = c->intermediate_size;

  for (int i = 0; i < c->num_hidden_layers; i++) {
    ClipLayerWeights *l = &layers[i];
    const char *p = prefix;
    EXPECT1 (table, &l->layer_norm1_w, h, "%s.encoder.layers.%d.layer_norm1.weight", p, i);
    EXPECT1 (table, &l->layer_norm1_b, h, "%s.encoder.layers.%d.layer_norm1.bias", p, i);
    EXPECT2 (table, &l->q_proj_w, h, h, "%s.encoder.layers.%d.self_attn.q_proj.weight", p, i);
    EXPECT1 (table, &l->q_proj_b, h, "%s.encoder.layers.%d.self_attn.q_proj.bias", p, i);
    EXPECT2 (table, &l->k_proj_w, h, h, "%s.encoder.layers.%d.self_attn.k_proj.weight", p, i);
    EXPECT1 (table, &l->k_proj_b, h, "%s.encoder.layers.%d.self_attn.k_proj.bias", p, i);
    EXPECT2 (table, &l->v_proj_w, h, h, "%s.encoder.layers.%d.self_attn.v_proj.weight", p, i);
    EXPECT1 (table, &l->v_proj_b, h, "%s.encoder.layers.%d.self_attn.v_proj.bias", p, i);
    EXPECT2 (table, &l->out_proj_w, h, h, "%s.encoder.layers.%d.self_attn.out_proj.weight", p, i);
    EXPECT1 (table, &l->out_proj_b, h, "%s.encoder.layers.%d.self_attn.out_proj.bias", p, i);
    EXPECT1 (table, &l->layer_norm2_w, h, "%s.encoder.layers.%d.layer_norm2.weight", p, i);
    EXPECT1 (table, &l->layer_norm2_b, h, "%s.encoder.layers.%d.layer_norm2.bias", p, i);
    EXPECT2 (table, &l->fc1_w, inter, h, "%s.encoder.layers.%d.mlp.fc1.weight", p, i);
    EXPECT1 (table, &l->fc1_b, inter, "%s.encoder.layers.%d.mlp.fc1.bias", p, i);
    EXPECT2 (table, &l->fc2_w, h, inter, "%s.encoder.layers.%d.mlp.fc2.weight", p, i);
    EXPECT1 (table, &l->fc2_b, h, "%s.encoder.layers.%d.mlp.fc2.bias", p, i);
  }
}

static GArray *
build_table (ClipModel *model, const float **logit_scale)
{
  const ClipTowerConfig *tc = &model->config.text, *vc = &model->config.vision;
  const int64_t proj = model->config.projection_dim;
  const int64_t th = tc->hidden_size, vh = vc->hidden_size, patch = vc->patch_size;
  const int64_t grid = vc->image_size / vc->patch_size;
  ClipTowerWeights *t = &model->text, *v = &model->vision;
  GArray *table = g_array_new (FALSE, TRUE, sizeof (ExpectedTensor));
  ExpectedTensor scalar = { 0 };

  t->layers = g_new0 (ClipLayerWeights, tc->num_hidden_layers);
  v->layers = g_new0 (ClipLayerWeights, vc->num_hidden_layers);

  /* CLIPTextTransformer */
  EXPECT2 (table, &t->token_embedding, tc->vocab_size, th,
      "text_model.embeddings.token_embedding.weight");
  EXPECT2 (table, &t->position_embedding, tc->max_position_embeddings, th,
      "text_model.embeddings.position_embedding.weight");
  expect_encoder (table, "text_model", tc, t->layers);
  EXPECT1 (table, &t->final_layernorm_w, th, "text_model.final_layer_norm.weight");
  EXPECT1 (table, &t->final_layernorm_b, th, "text_model.final_layer_norm.bias");
  EXPECT2 (table, &t->projection, proj, th, "text_projection.weight");

  /* CLIPVisionTransformer ("pre_layrnorm" is HF's spelling) */
  EXPECT1 (table, &v->class_embedding, vh, "vision_model.embeddings.class_embedding");
  expect (table, &v->patch_embedding, 4, (const int64_t[]) { vh, vc->num_channels, patch, patch },
      "vision_model.embeddings.patch_embedding.weight");
  EXPECT2 (table, &v->position_embedding, grid * grid + 1, vh,
      "vision_model.embeddings.position_embedding.weight");
  EXPECT1 (table, &v->pre_layernorm_w, vh, "vision_model.pre_layrnorm.weight");
  EXPECT1 (table, &v->pre_layernorm_b, vh, "vision_model.pre_layrnorm.bias");
  expect_encoder (table, "vision_model", vc, v->layers);
  EXPECT1 (table, &v->final_layernorm_w, vh, "vision_model.post_layernorm.weight");
  EXPECT1 (table, &v->final_layernorm_b, vh, "vision_model.post_layernorm.bias");
  EXPECT2 (table, &v->projection, proj, vh, "visual_projection.weight");

  scalar.name = g_strdup ("logit_scale");
  scalar.scalar = TRUE;
  scalar.dst = logit_scale;
  g_array_append_val (table, scalar);
  return table;
}

static void
free_table (GArray *table)
{
  for (guint i = 0; i < table->len; i++)
    g_free (g_array_index (table, ExpectedTensor, i).name);
  g_array_free (table, TRUE);
}

static char *
shape_to_string (int n_dims, const int64_t *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
shape_matches (const ExpectedTensor *e, const ClipTensorInfo *info)
{
  if (e->scalar)
    return info->n_dims == 0 || (info->n_dims == 1 && info->shape[0] == 1);
  if (info->n_dims != e->n_dims)
    return FALSE;
  for (int i = 0; i < e->n_dims; i++)
    if (info->shape[i] != e->shape[i])
      return FALSE;
  return TRUE;
}

/* F32 in the mapping is used as is when aligned for float loads (always, for files written by
 * the safetensors library); anything else goes to the converted buffer. */
static gboolean
needs_copy (const ClipTensorInfo *info)
{
  return info->dtype != CLIP_DTYPE_F32 || ((uintptr_t) info->data % _Alignof (float)) != 0;
}

static gboolean
bind_tensors (ClipModel *model, GArray *table, GError **error)
{
  const char *path = clip_safetensors_get_path (model->safetensors);
  size_t n_convert = 0;
  float *cursor;

  /* Check everything before allocating anything. */
  for (guint i = 0; i < table->len; i++) {
    ExpectedTensor *e = &g_array_index (table, ExpectedTensor, i);
    const ClipTensorInfo *info = clip_safetensors_find (model->safetensors, e->name);

    if (info == NULL) {
      char *shape = e->scalar ? g_strdup ("[]") : shape_to_string (e->n_dims, e->shape);
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND,
          "%s: tensor '%s' (shape %s) is missing; is this a HuggingFace CLIPModel checkpoint?",
          path, e->name, shape);
      g_free (shape);
      return FALSE;
    }
    if (info->dtype != CLIP_DTYPE_F32 && info->dtype != CLIP_DTYPE_F16
        && info->dtype != CLIP_DTYPE_BF16) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported", path, e->name,
          info->dtype_name);
      return FALSE;
    }
    if (!shape_matches (e, info)) {
      char *expected = e->scalar ? g_strdup ("[] or [1]") : shape_to_string (e->n_dims, e->shape);
      char *found = shape_to_string (info->n_dims, info->shape);
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_SHAPE,
          "%s: tensor '%s' has shape %s, but config.json implies %s", path, e->name, found,
          expected);
      g_free (expected);
      g_free (found);
      return FALSE;
    }
    e->info = info;
    if (needs_copy (info)) {
      if (n_convert > G_MAXSIZE / sizeof (float) - (size_t) info->n_elements)
        goto too_large;
      n_convert += (size_t) info->n_elements;
    }
  }

  if (n_convert > 0) {
    model->converted = g_try_new (float, n_convert);
    if (model->converted == NULL)
      goto too_large;
    model->converted_bytes = n_convert * sizeof (float);
  }

  cursor = model->converted;
  for (guint i = 0; i < table->len; i++) {
    ExpectedTensor *e = &g_array_index (table, ExpectedTensor, i);
    if (needs_copy (e->info)) {
      clip_tensor_to_f32 (e->info, cursor);
      *e->dst = cursor;
      cursor += e->info->n_elements;
    } else {
      *e->dst = e->info->data;
    }
  }
  return TRUE;

  /* ERRORS */
too_large:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
      "%s: cannot allocate %" G_GSIZE_FORMAT " floats to convert its F16/BF16 tensors to F32",
      path, n_convert);
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading */

static char *
require_file (const char *dir, const char *name, GError **error)
{
  char *path = g_build_filename (dir, name, NULL);
  char *alt;

  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return path;

  if (strcmp (name, "model.safetensors") == 0) {
    alt = g_build_filename (dir, "pytorch_model.bin", NULL);
    if (g_file_test (alt, G_FILE_TEST_EXISTS)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND,
          "%s not found (%s is there, but only safetensors weights can be loaded): %s", path,
          alt, MODEL_HINT);
      g_free (alt);
      g_free (path);
      return NULL;
    }
    g_free (alt);
  }
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND, "%s not found: %s", path, MODEL_HINT);
  g_free (path);
  return NULL;
}

/* The pixel tensor the vision tower takes is image_size square; the preprocessing must make
 * exactly that whatever the input's aspect ratio. */
static gboolean
check_preprocess (const ClipModel *model, const char *path, GError **error)
{
  const ClipPreprocessConfig *p = &model->preprocess;
  const int s = model->config.vision.image_size;

  if (!p->do_center_crop) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: do_center_crop is false, so images would not come out %dx%d (vision_config."
        "image_size)", path, s, s);
    return FALSE;
  }
  if (p->crop_width != s || p->crop_height != s) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_SHAPE,
        "%s: crop_size %dx%d differs from vision_config.image_size %d in config.json", path,
        p->crop_width, p->crop_height, s);
    return FALSE;
  }
  return TRUE;
}

ClipModel *
clip_model_load (const char *model_dir, GError **error)
{
  ClipModel *model;
  char *config_path = NULL, *weights_path = NULL, *vocab_path = NULL, *merges_path = NULL;
  char *preprocess_path = NULL;
  const float *logit_scale = NULL;
  GArray *table = NULL;
  int tokenizer_vocab;

  g_return_val_if_fail (model_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  model = g_new0 (ClipModel, 1);
  model->ref_count = 1;
  model->path = g_strdup (model_dir);

  if (!g_file_test (model_dir, G_FILE_TEST_IS_DIR))
    goto no_dir;
  if ((config_path = require_file (model_dir, "config.json", error)) == NULL
      || (weights_path = require_file (model_dir, "model.safetensors", error)) == NULL
      || (vocab_path = require_file (model_dir, "vocab.json", error)) == NULL
      || (merges_path = require_file (model_dir, "merges.txt", error)) == NULL)
    goto failed;

  if (!clip_config_load (config_path, &model->config, error))
    goto failed;

  /* Optional: CLIPImageProcessor's defaults, sized for this model's vision tower. */
  preprocess_path = g_build_filename (model_dir, "preprocessor_config.json", NULL);
  if (!clip_preprocess_config_load (preprocess_path, &model->preprocess, error))
    goto failed;
  if (!g_file_test (preprocess_path, G_FILE_TEST_EXISTS)) {
    model->preprocess.shortest_edge = model->config.vision.image_size;
    model->preprocess.crop_width = model->preprocess.crop_height = model->config.vision.image_size;
  }
  if (!check_preprocess (model, preprocess_path, error))
    goto failed;

  model->tokenizer = clip_tokenizer_load (vocab_path, merges_path, error);
  if (model->tokenizer == NULL)
    goto failed;
  /* Every id the tokenizer emits indexes the token embedding. */
  tokenizer_vocab = clip_tokenizer_get_vocab_size (model->tokenizer);
  if (tokenizer_vocab > model->config.text.vocab_size)
    goto vocab_mismatch;

  model->safetensors = clip_safetensors_open (weights_path, error);
  if (model->safetensors == NULL)
    goto failed;
  table = build_table (model, &logit_scale);
  if (!bind_tensors (model, table, error))
    goto failed;
  model->logit_scale = *logit_scale;
  if (!isfinite (model->logit_scale) || model->logit_scale > 80.0f)
    goto bad_logit_scale;

  free_table (table);
  g_free (config_path);
  g_free (weights_path);
  g_free (vocab_path);
  g_free (merges_path);
  g_free (preprocess_path);
  return model;

  /* ERRORS */
no_dir:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND, "Model directory %s not found: %s",
      model_dir, MODEL_HINT);
  goto failed;
vocab_mismatch:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_SHAPE,
      "%s has %d tokens, more than text_config.vocab_size %d in %s", vocab_path,
      tokenizer_vocab, model->config.text.vocab_size, config_path);
  goto failed;
bad_logit_scale:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: tensor 'logit_scale' is %g; exp() of it is not a usable temperature", weights_path,
      model->logit_scale);
  goto failed;
failed:
  if (table != NULL)
    free_table (table);
  g_free (config_path);
  g_free (weights_path);
  g_free (vocab_path);
  g_free (merges_path);
  g_free (preprocess_path);
  clip_model_unref (model);
  return NULL;
}

ClipModel *
clip_model_ref (ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
clip_model_unref (ClipModel *model)
{
  if (model == NULL)
    return;
  if (!g_atomic_int_dec_and_test (&model->ref_count))
    return;
  if (model->tokenizer != NULL)
    clip_tokenizer_free (model->tokenizer);
  clip_safetensors_close (model->safetensors);
  g_free (model->converted);
  g_free (model->text.layers);
  g_free (model->vision.layers);
  g_free (model->path);
  g_free (model);
}

/* ------------------------------------------------------------------------------------------ */
/* Getters */

const char *
clip_model_get_path (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->path;
}

int
clip_model_get_image_size (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.vision.image_size;
}

int
clip_model_get_embedding_dim (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.projection_dim;
}

int
clip_model_get_context_length (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->config.text.max_position_embeddings;
}

float
clip_model_get_logit_scale (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0.0f);
  return expf (model->logit_scale);
}

const ClipTokenizer *
clip_model_get_tokenizer (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->tokenizer;
}

const ClipPreprocessConfig *
clip_model_get_preprocess_config (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return &model->preprocess;
}

size_t
clip_model_get_converted_bytes (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->converted_bytes;
}
