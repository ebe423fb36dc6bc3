/* config.c — config.json (CLIPConfig) and preprocessor_config.json (CLIPImageProcessor).
 *
 * Absent fields take the defaults of HF transformers' CLIPTextConfig, CLIPVisionConfig, CLIPConfig
 * and CLIPImageProcessor, so a config.json that HF loads loads here with the same values. Fields
 * that are present must have the right JSON type; nothing is coerced from strings.
 *
 * Every size is bounded (CLIP_ERROR_UNSUPPORTED beyond), so that nothing a config.json implies
 * (weights, activations, attention scores, workspaces) can overflow or ask for absurd memory:
 * the limits below are generous, far beyond the largest CLIP (ViT-L/14-336: 577 tokens per
 * image, 24 layers, hidden size 1024, intermediate size 4096, 77 positions, 49,408 tokens).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-private.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#define MAX_LAYERS 128                   /* num_hidden_layers */
#define MAX_HIDDEN_SIZE 8192             /* hidden_size */
#define MAX_INTERMEDIATE_SIZE 65536      /* intermediate_size */
#define MAX_IMAGE_TOKENS 4096            /* (image_size / patch_size)^2 + 1 (the class token) */
#define MAX_IMAGE_SIZE 4096              /* image_size (pixels of a side) */
#define MAX_POSITIONS 4096               /* text_config.max_position_embeddings */
#define MAX_VOCAB_SIZE (1 << 20)         /* text_config.vocab_size (multilingual ones: 250,002) */
#define MAX_PROJECTION_DIM 8192          /* projection_dim */

static const float openai_clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float openai_clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

/* ------------------------------------------------------------------------------------------ */
/* Typed field readers. `section` prefixes the field in messages ("text_config."); absent and
 * null fields keep the value already in *out (the default). */

typedef struct {
  const char *path;
  const char *section;
  JsonObject *obj;
} Fields;

static gboolean
field_get (const Fields *f, const char *key, JsonNode **out)
{
  JsonNode *node = f->obj ? json_object_get_member (f->obj, key) : NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return FALSE;
  *out = node;
  return TRUE;
}

static gboolean
bad_type (const Fields *f, const char *key, const char *expected, GError **error)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: %s%s must be %s", f->path,
      f->section, key, expected);
  return FALSE;
}

static gboolean
node_get_int (JsonNode *node, int *out)
{
  GType type;
  double d;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64) {
    gint64 v = json_node_get_int (node);
    if (v < G_MININT || v > G_MAXINT)
      return FALSE;
    *out = (int) v;
    return TRUE;
  }
  /* Some writers emit 224.0; accept integral floats. */
  if (type == G_TYPE_DOUBLE) {
    d = json_node_get_double (node);
    if (d != floor (d) || d < G_MININT || d > G_MAXINT)
      return FALSE;
    *out = (int) d;
    return TRUE;
  }
  return FALSE;
}

static gboolean
node_get_double (JsonNode *node, double *out)
{
  GType type;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else if (type == G_TYPE_INT64)
    *out = (double) json_node_get_int (node);
  else
    return FALSE;
  return isfinite (*out);
}

static gboolean
read_int (const Fields *f, const char *key, int *out, GError **error)
{
  JsonNode *node;

  if (!field_get (f, key, &node))
    return TRUE;
  if (!node_get_int (node, out))
    return bad_type (f, key, "an integer", error);
  return TRUE;
}

static gboolean
read_positive_int (const Fields *f, const char *key, int *out, GError **error)
{
  if (!read_int (f, key, out, error))
    return FALSE;
  if (*out <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: %s%s must be positive, not %d",
        f->path, f->section, key, *out);
    return FALSE;
  }
  return TRUE;
}

/* A positive integer of at most `max`. */
static gboolean
read_bounded_int (const Fields *f, const char *key, int max, int *out, GError **error)
{
  if (!read_positive_int (f, key, out, error))
    return FALSE;
  if (*out > max) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: %s%s %d is more than the %d supported", f->path, f->section, key, *out, max);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_double (const Fields *f, const char *key, double *out, GError **error)
{
  JsonNode *node;

  if (!field_get (f, key, &node))
    return TRUE;
  if (!node_get_double (node, out))
    return bad_type (f, key, "a number", error);
  return TRUE;
}

static gboolean
read_bool (const Fields *f, const char *key, gboolean *out, GError **error)
{
  JsonNode *node;

  if (!field_get (f, key, &node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return bad_type (f, key, "true or false", error);
  *out = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
read_object (const Fields *f, const char *key, JsonObject **out, GError **error)
{
  JsonNode *node;

  *out = NULL;
  if (!field_get (f, key, &node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad_type (f, key, "an object", error);
  *out = json_node_get_object (node);
  return TRUE;
}

/* config.json is about 4 kB, preprocessor_config.json a few hundred bytes; even a config with a
 * label map of 20,000 classes stays under 1 MB. Larger files are refused before they are read. */
#define MAX_CONFIG_BYTES (16 * 1024 * 1024)

static JsonParser *
load_json_object (const char *path, const char *what, JsonObject **root_out, GError **error)
{
  JsonParser *parser = NULL;
  GError *file_error = NULL, *json_error = NULL;
  char *contents = NULL;
  gsize len;
  gssize too_deep;
  GStatBuf sb;
  JsonNode *root;

  if (g_stat (path, &sb) == 0 && S_ISREG (sb.st_mode) && sb.st_size > MAX_CONFIG_BYTES) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: %" G_GINT64_FORMAT " bytes is more than a %s can be (at most %d)", path,
        (gint64) sb.st_size, what, MAX_CONFIG_BYTES);
    return NULL;
  }
  if (!g_file_get_contents (path, &contents, &len, &file_error)) {
    if (g_error_matches (file_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND, "%s not found: %s", what, path);
    else
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "Cannot read %s: %s", path,
          file_error->message);
    g_error_free (file_error);
    return NULL;
  }
  /* json-glib's parser recurses once per nesting level: a deep enough file would overflow the
   * stack, so the depth is checked first. */
  too_deep = clip_json_find_excess_nesting (contents, len, CLIP_JSON_MAX_DEPTH);
  if (too_deep >= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: JSON nested deeper than %d levels (at byte %" G_GSSIZE_FORMAT "): not a %s",
        path, CLIP_JSON_MAX_DEPTH, too_deep, what);
    g_free (contents);
    return NULL;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, contents, (gssize) len, &json_error)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: not valid JSON (%s)", path,
        json_error->message);
    g_error_free (json_error);
    g_free (contents);
    g_object_unref (parser);
    return NULL;
  }
  g_free (contents);
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: not a JSON object", path);
    g_object_unref (parser);
    return NULL;
  }
  *root_out = json_node_get_object (root);
  return parser;
}

/* ------------------------------------------------------------------------------------------ */
/* config.json */

static void
text_defaults (ClipTowerConfig *t)
{
  /* transformers' CLIPTextConfig. eos_token_id: 49407 since transformers 4.31 (older configs
   * write 2, which the text tower reads as "pool at the largest id"). */
  memset (t, 0, sizeof *t);
  t->hidden_size = 512;
  t->intermediate_size = 2048;
  t->num_hidden_layers = 12;
  t->num_attention_heads = 8;
  t->hidden_act = CLIP_ACT_QUICK_GELU;
  t->layer_norm_eps = 1e-5f;
  t->max_position_embeddings = 77;
  t->vocab_size = 49408;
  t->eos_token_id = 49407;
}

static void
vision_defaults (ClipTowerConfig *v)
{
  /* transformers' CLIPVisionConfig (ViT-B/32). */
  memset (v, 0, sizeof *v);
  v->hidden_size = 768;
  v->intermediate_size = 3072;
  v->num_hidden_layers = 12;
  v->num_attention_heads = 12;
  v->hidden_act = CLIP_ACT_QUICK_GELU;
  v->layer_norm_eps = 1e-5f;
  v->image_size = 224;
  v->patch_size = 32;
  v->num_channels = 3;
}

static gboolean
read_tower (const Fields *f, gboolean text, ClipTowerConfig *t, GError **error)
{
  JsonNode *act_node;
  double eps = t->layer_norm_eps;

  if (!read_bounded_int (f, "hidden_size", MAX_HIDDEN_SIZE, &t->hidden_size, error)
      || !read_bounded_int (f, "intermediate_size", MAX_INTERMEDIATE_SIZE,
          &t->intermediate_size, error)
      || !read_bounded_int (f, "num_hidden_layers", MAX_LAYERS, &t->num_hidden_layers, error)
      || !read_bounded_int (f, "num_attention_heads", MAX_HIDDEN_SIZE,
          &t->num_attention_heads, error)
      || !read_double (f, "layer_norm_eps", &eps, error))
    return FALSE;

  /* It is used as a float, in threads that flush denormals to zero: a smaller value would be
   * 0 there (1e-50 passed a check of the double), and a constant row would divide by zero. */
  if (!(eps >= FLT_MIN && eps <= 1)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: %slayer_norm_eps must be in [%g, 1] (a normal float), not %g", f->path, f->section,
        FLT_MIN, eps);
    return FALSE;
  }
  t->layer_norm_eps = (float) eps;

  if (field_get (f, "hidden_act", &act_node)) {
    const char *act;
    if (!JSON_NODE_HOLDS_VALUE (act_node) || json_node_get_value_type (act_node) != G_TYPE_STRING)
      return bad_type (f, "hidden_act", "a string", error);
    act = json_node_get_string (act_node);
    if (strcmp (act, "quick_gelu") == 0) {
      t->hidden_act = CLIP_ACT_QUICK_GELU;
    } else if (strcmp (act, "gelu") == 0) {
      t->hidden_act = CLIP_ACT_GELU;
    } else {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: %shidden_act \"%s\" is not supported (only \"quick_gelu\" and \"gelu\")",
          f->path, f->section, act);
      return FALSE;
    }
  }

  if (t->hidden_size % t->num_attention_heads != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: %shidden_size %d is not divisible by num_attention_heads %d", f->path, f->section,
        t->hidden_size, t->num_attention_heads);
    return FALSE;
  }

  if (text) {
    if (!read_bounded_int (f, "max_position_embeddings", MAX_POSITIONS,
            &t->max_position_embeddings, error)
        || !read_bounded_int (f, "vocab_size", MAX_VOCAB_SIZE, &t->vocab_size, error)
        || !read_int (f, "eos_token_id", &t->eos_token_id, error))
      return FALSE;
    if (t->eos_token_id < 0 || t->eos_token_id >= t->vocab_size) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: %seos_token_id %d is outside the vocabulary (vocab_size %d)", f->path,
          f->section, t->eos_token_id, t->vocab_size);
      return FALSE;
    }
    /* A BOS and an EOS token at least. */
    if (t->max_position_embeddings < 2) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: %smax_position_embeddings must be at least 2, not %d", f->path, f->section,
          t->max_position_embeddings);
      return FALSE;
    }
  } else {
    gint64 grid;

    if (!read_bounded_int (f, "image_size", MAX_IMAGE_SIZE, &t->image_size, error)
        || !read_bounded_int (f, "patch_size", MAX_IMAGE_SIZE, &t->patch_size, error)
        || !read_positive_int (f, "num_channels", &t->num_channels, error))
      return FALSE;
    if (t->num_channels != 3) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: %snum_channels %d is not supported (RGB only: 3)", f->path, f->section,
          t->num_channels);
      return FALSE;
    }
    /* image_size need not be a multiple of patch_size: like HF's stride-P convolution, the
     * tower then takes the (image_size / patch_size)^2 whole patches and drops the remainder.
     * It needs one patch at least. */
    if (t->patch_size > t->image_size) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: %spatch_size %d is larger than image_size %d", f->path, f->section,
          t->patch_size, t->image_size);
      return FALSE;
    }
    grid = t->image_size / t->patch_size;
    if (grid * grid + 1 > MAX_IMAGE_TOKENS) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: %simage_size %d / patch_size %d gives %" G_GINT64_FORMAT " tokens per image "
          "(%" G_GINT64_FORMAT "^2 patches and the class token); at most %d are supported",
          f->path, f->section, t->image_size, t->patch_size, grid * grid + 1, grid,
          MAX_IMAGE_TOKENS);
      return FALSE;
    }
  }
  return TRUE;
}

/* Configs written by transformers < 4.27 may carry {text,vision}_config_dict next to
 * {text,vision}_config. CLIPConfig then rebuilds the sub-config from the _dict alone, with
 * defaults for what it lacks, and that wins over every field of the plain one: do the same. */
static gboolean
read_sub_config (const char *path, JsonObject *root, gboolean text, ClipTowerConfig *t,
                 GError **error)
{
  const char *plain = text ? "text_config" : "vision_config";
  const char *legacy = text ? "text_config_dict" : "vision_config_dict";
  Fields top = { path, "", root };
  Fields f = { path, NULL, NULL };
  JsonObject *plain_obj, *legacy_obj;

  if (!read_object (&top, plain, &plain_obj, error)
      || !read_object (&top, legacy, &legacy_obj, error))
    return FALSE;
  if (legacy_obj != NULL) {
    f.section = text ? "text_config_dict." : "vision_config_dict.";
    f.obj = legacy_obj;
  } else {
    f.section = text ? "text_config." : "vision_config.";
    f.obj = plain_obj;
  }
  if (text)
    text_defaults (t);
  else
    vision_defaults (t);
  return read_tower (&f, text, t, error);
}

gboolean
clip_config_load (const char *path, ClipConfig *config, GError **error)
{
  JsonParser *parser;
  JsonObject *root;
  Fields top;
  gboolean ok = FALSE;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  parser = load_json_object (path, "config.json", &root, error);
  if (parser == NULL)
    return FALSE;

  memset (config, 0, sizeof *config);
  config->projection_dim = 512;
  top = (Fields) { path, "", root };
  if (!read_sub_config (path, root, TRUE, &config->text, error)
      || !read_sub_config (path, root, FALSE, &config->vision, error)
      || !read_bounded_int (&top, "projection_dim", MAX_PROJECTION_DIM,
          &config->projection_dim, error))
    goto out;
  ok = TRUE;

out:
  g_object_unref (parser);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* preprocessor_config.json */

static void
preprocess_defaults (ClipPreprocessConfig *p)
{
  /* transformers' CLIPImageProcessor. */
  memset (p, 0, sizeof *p);
  p->do_resize = TRUE;
  p->shortest_edge = 224;
  p->do_center_crop = TRUE;
  p->crop_height = p->crop_width = 224;
  p->do_rescale = TRUE;
  p->rescale_factor = 1.0 / 255.0;
  p->do_normalize = TRUE;
  memcpy (p->image_mean, openai_clip_mean, sizeof p->image_mean);
  memcpy (p->image_std, openai_clip_std, sizeof p->image_std);
}

static gboolean
size_field_int (const Fields *f, const char *key, JsonObject *obj, const char *member, int *out,
                GError **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  if (node == NULL || !node_get_int (node, out) || *out <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: %s.%s must be a positive integer", f->path, key, member);
    return FALSE;
  }
  return TRUE;
}

/* "size": n (CLIPFeatureExtractor) or {"shortest_edge": n}. {"height", "width"} asks HF for a
 * plain resize to that size, distorting the aspect ratio; we only do the shortest-edge resize
 * CLIP was trained with, so it is refused rather than silently done differently. */
static gboolean
read_size (const Fields *f, int *shortest_edge, GError **error)
{
  JsonNode *node;
  JsonObject *obj;

  if (!field_get (f, "size", &node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node)) {
    if (!node_get_int (node, shortest_edge) || *shortest_edge <= 0)
      return bad_type (f, "size", "a positive integer or an object", error);
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad_type (f, "size", "a positive integer or an object", error);
  obj = json_node_get_object (node);
  if (json_object_has_member (obj, "shortest_edge"))
    return size_field_int (f, "size", obj, "shortest_edge", shortest_edge, error);
  if (json_object_has_member (obj, "height") || json_object_has_member (obj, "width")) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: size {\"height\", \"width\"} (a resize that ignores the aspect ratio) is not "
        "supported; use {\"shortest_edge\": n}", f->path);
    return FALSE;
  }
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: size must hold \"shortest_edge\"", f->path);
  return FALSE;
}

/* "crop_size": n (square) or {"height": h, "width": w}. */
static gboolean
read_crop_size (const Fields *f, int *height, int *width, GError **error)
{
  JsonNode *node;
  JsonObject *obj;

  if (!field_get (f, "crop_size", &node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node)) {
    if (!node_get_int (node, height) || *height <= 0)
      return bad_type (f, "crop_size", "a positive integer or an object", error);
    *width = *height;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad_type (f, "crop_size", "a positive integer or an object", error);
  obj = json_node_get_object (node);
  return size_field_int (f, "crop_size", obj, "height", height, error)
      && size_field_int (f, "crop_size", obj, "width", width, error);
}

/* A number for all channels, or one per channel. */
static gboolean
read_channels (const Fields *f, const char *key, float out[3], GError **error)
{
  JsonNode *node;
  double v[3];

  if (!field_get (f, key, &node))
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);
    if (json_array_get_length (array) != 3)
      return bad_type (f, key, "a number or an array of 3 numbers", error);
    for (int c = 0; c < 3; c++)
      if (!node_get_double (json_array_get_element (array, c), &v[c]))
        return bad_type (f, key, "a number or an array of 3 numbers", error);
  } else if (node_get_double (node, &v[0])) {
    v[1] = v[2] = v[0];
  } else {
    return bad_type (f, key, "a number or an array of 3 numbers", error);
  }
  for (int c = 0; c < 3; c++)
    out[c] = (float) v[c];
  return TRUE;
}

gboolean
clip_preprocess_config_load (const char *path, ClipPreprocessConfig *config, GError **error)
{
  JsonParser *parser;
  JsonObject *root;
  Fields f;
  gboolean do_convert_rgb = TRUE;
  int resample = 3;
  gboolean ok = FALSE;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  preprocess_defaults (config);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;

  parser = load_json_object (path, "preprocessor_config.json", &root, error);
  if (parser == NULL)
    return FALSE;
  f = (Fields) { path, "", root };

  if (!read_bool (&f, "do_resize", &config->do_resize, error)
      || !read_size (&f, &config->shortest_edge, error)
      || !read_bool (&f, "do_center_crop", &config->do_center_crop, error)
      || !read_crop_size (&f, &config->crop_height, &config->crop_width, error)
      || !read_bool (&f, "do_rescale", &config->do_rescale, error)
      || !read_double (&f, "rescale_factor", &config->rescale_factor, error)
      || !read_bool (&f, "do_normalize", &config->do_normalize, error)
      || !read_channels (&f, "image_mean", config->image_mean, error)
      || !read_channels (&f, "image_std", config->image_std, error)
      || !read_bool (&f, "do_convert_rgb", &do_convert_rgb, error)
      || !read_int (&f, "resample", &resample, error))
    goto out;

  if (config->rescale_factor <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: rescale_factor must be positive, not %g", path, config->rescale_factor);
    goto out;
  }
  for (int c = 0; c < 3; c++) {
    if (!(config->image_std[c] > 0)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: image_std[%d] must be positive, not %g", path, c, config->image_std[c]);
      goto out;
    }
  }
  /* Our resize is Pillow's BICUBIC only (PIL.Image.Resampling.BICUBIC == 3). */
  if (config->do_resize && resample != 3) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: resample %d is not supported (only 3, bicubic)", path, resample);
    goto out;
  }
  ok = TRUE;

out:
  g_object_unref (parser);
  return ok;
}
