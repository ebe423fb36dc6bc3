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
  const float **dst;                 /* where an f32 view of it goes; or NULL and: */
  ClipLinear *linear;                /* the linear it is packed into, */
  int row0;                          /* at this first output row, */
  float scale;                       /* times this, */
  gboolean is_bias;                  /* as the linear's bias rather than its weight */
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

/* The tensor last added is packed into `linear` (its weight, or with is_bias its bias) at row0. */
static void
packed_into (GArray *table, ClipLinear *linear, int row0, float scale, gboolean is_bias)
{
  ExpectedTensor *e = &g_array_index (table, ExpectedTensor, table->len - 1);
  e->linear = linear;
  e->row0 = row0;
  e->scale = scale;
  e->is_bias = is_bias;
}

/* weight [n_out, n_in] and bias [n_out] of an nn.Linear packed at row0 of `linear` */
static void
expect_linear (GArray *table, ClipLinear *linear, int row0, float scale, int64_t n_out,
               int64_t n_in, const char *prefix, int layer, const char *name)
{
  EXPECT2 (table, NULL, n_out, n_in, "%s.encoder.layers.%d.%s.weight", prefix, layer, name);
  packed_into (table, linear, row0, scale, FALSE);
  EXPECT1 (table, NULL, n_out, "%s.encoder.layers.%d.%s.bias", prefix, layer, name);
  packed_into (table, linear, row0, scale, TRUE);
}

static void
expect_encoder (GArray *table, const char *prefix, const ClipTowerConfig *c, ClipLayerWeights *layers)
{
  const int64_t h = c->hidden_size, inter = c->intermediate_size;
  /* HF multiplies q by head_dim^-0.5; packing it into q's weight and bias saves a pass */
  const float q_scale = 1.0f / sqrtf ((float) (c->hidden_size / c->num_attention_heads));

  for (int i = 0; i < c->num_hidden_layers; i++) {
    ClipLayerWeights *l = &layers[i];
    const char *p = prefix;
    EXPECT1 (table, &l->layer_norm1_w, h, "%s.encoder.layers.%d.layer_norm1.weight", p, i);
    EXPECT1 (table, &l->layer_norm1_b, h, "%s.encoder.layers.%d.layer_norm1.bias", p, i);
    expect_linear (table, &l->qkv, 0, q_scale, h, h, p, i, "self_attn.q_proj");
    expect_linear (table, &l->qkv, h, 1.0f, h, h, p, i, "self_attn.k_proj");
    expect_linear (table, &l->qkv, 2 * h, 1.0f, h, h, p, i, "self_attn.v_proj");
    expect_linear (table, &l->out_proj, 0, 1.0f, h, h, p, i, "self_attn.out_proj");
    EXPECT1 (table, &l->layer_norm2_w, h, "%s.encoder.layers.%d.layer_norm2.weight", p, i);
    EXPECT1 (table, &l->layer_norm2_b, h, "%s.encoder.layers.%d.layer_norm2.bias", p, i);
    expect_linear (table, &l->fc1, 0, 1.0f, inter, h, p, i, "mlp.fc1");
    expect_linear (table, &l->fc2, 0, 1.0f, h, inter, p, i, "mlp.fc2");
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
  EXPECT2 (table, NULL, proj, th, "text_projection.weight");
  packed_into (table, &t->projection, 0, 1.0f, FALSE);

  /* CLIPVisionTransformer ("pre_layrnorm" is HF's spelling) */
  EXPECT1 (table, &v->class_embedding, vh, "vision_model.embeddings.class_embedding");
  expect (table, NULL, 4, (const int64_t[]) { vh, vc->num_channels, patch, patch },
      "vision_model.embeddings.patch_embedding.weight");
  packed_into (table, &v->patch_embedding, 0, 1.0f, FALSE);
  EXPECT2 (table, &v->position_embedding, grid * grid + 1, vh,
      "vision_model.embeddings.position_embedding.weight");
  EXPECT1 (table, &v->pre_layernorm_w, vh, "vision_model.pre_layrnorm.weight");
  EXPECT1 (table, &v->pre_layernorm_b, vh, "vision_model.pre_layrnorm.bias");
  expect_encoder (table, "vision_model", vc, v->layers);
  EXPECT1 (table, &v->final_layernorm_w, vh, "vision_model.post_layernorm.weight");
  EXPECT1 (table, &v->final_layernorm_b, vh, "vision_model.post_layernorm.bias");
  EXPECT2 (table, NULL, proj, vh, "visual_projection.weight");
  packed_into (table, &v->projection, 0, 1.0f, FALSE);

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
needs_f32_copy (const ClipTensorInfo *info)
{
  return info->dtype != CLIP_DTYPE_F32 || ((uintptr_t) info->data % _Alignof (float)) != 0;
}

static gboolean
needs_copy (const ExpectedTensor *e)
{
  return e->linear == NULL && needs_f32_copy (e->info);
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
    if (needs_copy (e)) {
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
    if (e->linear != NULL)
      continue;
    if (needs_copy (e)) {
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
/* Packing */

static gboolean
init_tower_linears (ClipModel *model, const ClipTowerConfig *c, ClipTowerWeights *w,
                    int patch_dim, GError **error)
{
  int h = c->hidden_size, inter = c->intermediate_size;
  ClipIsa isa = model->isa;
  ClipPrecision precision = model->precision;

  if (!clip_linear_init (&w->projection, isa, precision, model->config.projection_dim, h, error))
    return FALSE;
  if (patch_dim > 0 && !clip_linear_init (&w->patch_embedding, isa, precision, h, patch_dim, error))
    return FALSE;
  for (int i = 0; i < c->num_hidden_layers; i++) {
    ClipLayerWeights *l = &w->layers[i];
    if (!clip_linear_init (&l->qkv, isa, precision, 3 * h, h, error)
        || !clip_linear_init (&l->out_proj, isa, precision, h, h, error)
        || !clip_linear_init (&l->fc1, isa, precision, inter, h, error)
        || !clip_linear_init (&l->fc2, isa, precision, h, inter, error))
      return FALSE;
  }
  return TRUE;
}

static void
clear_tower_linears (ClipTowerWeights *w, int n_layers)
{
  clip_linear_clear (&w->projection);
  clip_linear_clear (&w->patch_embedding);
  for (int i = 0; w->layers != NULL && i < n_layers; i++) {
    clip_linear_clear (&w->layers[i].qkv);
    clip_linear_clear (&w->layers[i].out_proj);
    clip_linear_clear (&w->layers[i].fc1);
    clip_linear_clear (&w->layers[i].fc2);
  }
}

static size_t
tower_packed_bytes (const ClipTowerWeights *w, int n_layers)
{
  size_t bytes = w->projection.panel_bytes + w->patch_embedding.panel_bytes;
  for (int i = 0; i < n_layers; i++)
    bytes += w->layers[i].qkv.panel_bytes + w->layers[i].out_proj.panel_bytes
           + w->layers[i].fc1.panel_bytes + w->layers[i].fc2.panel_bytes;
  return bytes;
}

/* Packs every GEMM weight for the model's kernels. Each tensor's mapped pages are dropped once it
 * is packed, so the packed weights take the place of the file's pages in memory rather than
 * sitting beside them. */
static gboolean
pack_weights (ClipModel *model, GArray *table, GError **error)
{
  const ClipTowerConfig *vc = &model->config.vision;
  float *rows = NULL;
  size_t rows_capacity = 0;

  if (!init_tower_linears (model, &model->config.text, &model->text, 0, error)
      || !init_tower_linears (model, vc, &model->vision,
                              vc->num_channels * vc->patch_size * vc->patch_size, error))
    return FALSE;

  for (guint i = 0; i < table->len; i++) {
    ExpectedTensor *e = &g_array_index (table, ExpectedTensor, i);
    const ClipTensorInfo *info = e->info;
    const float *values = info->data;
    if (e->linear == NULL)
      continue;
    if (needs_f32_copy (info)) {
      if ((size_t) info->n_elements > rows_capacity) {
        g_free (rows);
        rows_capacity = (size_t) info->n_elements;
        rows = g_try_new (float, rows_capacity);
        if (rows == NULL) {
          g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
                       "%s: cannot allocate %" G_GSIZE_FORMAT " floats to convert tensor '%s'",
                       clip_safetensors_get_path (model->safetensors), rows_capacity, e->name);
          return FALSE;
        }
      }
      clip_tensor_to_f32 (info, rows);
      values = rows;
    }
    int n_rows = (int) info->shape[0];
    if (e->is_bias)
      clip_linear_pack_bias (e->linear, e->row0, n_rows, values, e->scale);
    else
      clip_linear_pack_rows (e->linear, e->row0, n_rows, values, e->scale);
    clip_safetensors_release (model->safetensors, info);
  }
  g_free (rows);
  model->packed_bytes = tower_packed_bytes (&model->text, model->config.text.num_hidden_layers)
                      + tower_packed_bytes (&model->vision, vc->num_hidden_layers);
  return TRUE;
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

ClipModelParams
clip_model_params_default (void)
{
  ClipModelParams params = { .precision = CLIP_PRECISION_FP32 };
  return params;
}

const char *
clip_precision_name (ClipPrecision precision)
{
  return precision == CLIP_PRECISION_BF16 ? "bf16" : "fp32";
}

gboolean
clip_precision_from_string (const char *name, ClipPrecision *precision, GError **error)
{
  if (name != NULL && g_ascii_strcasecmp (name, "fp32") == 0)
    *precision = CLIP_PRECISION_FP32;
  else if (name != NULL && g_ascii_strcasecmp (name, "bf16") == 0)
    *precision = CLIP_PRECISION_BF16;
  else {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "precision '%s' is not fp32 or bf16", name ? name : "(null)");
    return FALSE;
  }
  return TRUE;
}

ClipModel *
clip_model_load (const char *model_dir, GError **error)
{
  return clip_model_load_with_params (model_dir, NULL, error);
}

ClipModel *
clip_model_load_with_params (const char *model_dir, const ClipModelParams *params,
                             GError **error)
{
  ClipModelParams defaults = clip_model_params_default ();
  ClipModel *model;
  char *config_path = NULL, *weights_path = NULL, *vocab_path = NULL, *merges_path = NULL;
  char *preprocess_path = NULL;
  const float *logit_scale = NULL;
  GArray *table = NULL;
  int tokenizer_vocab;

  g_return_val_if_fail (model_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (params == NULL)
    params = &defaults;
  model = g_new0 (ClipModel, 1);
  model->ref_count = 1;
  model->path = g_strdup (model_dir);

  if (!clip_isa_select (&model->isa, error))
    goto failed;
  model->precision = params->precision;
  if (params->precision == CLIP_PRECISION_BF16 && model->isa != CLIP_ISA_AVX512) {
    model->precision = CLIP_PRECISION_FP32;
    model->precision_note = g_strdup_printf ("bf16 is unavailable on the %s kernel path "
        "(it needs avx512 and AVX512_BF16): running fp32", clip_isa_name (model->isa));
  } else if (params->precision == CLIP_PRECISION_BF16 && !clip_cpu_has_avx512_bf16 ()) {
    model->precision = CLIP_PRECISION_FP32;
    model->precision_note = g_strdup ("bf16 is unavailable: this CPU has no AVX512_BF16; "
                                      "running fp32");
  }

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
  if (!bind_tensors (model, table, error) || !pack_weights (model, table, error))
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
  clear_tower_linears (&model->text, model->config.text.num_hidden_layers);
  clear_tower_linears (&model->vision, model->config.vision.num_hidden_layers);
  g_free (model->precision_note);
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

size_t
clip_model_get_packed_bytes (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->packed_bytes;
}

const char *
clip_model_get_isa (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return clip_isa_name (model->isa);
}

ClipPrecision
clip_model_get_precision (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, CLIP_PRECISION_FP32);
  return model->precision;
}

const char *
clip_model_get_precision_note (const ClipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->precision_note;
}
