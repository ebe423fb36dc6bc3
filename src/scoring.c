/* scoring.c — label lists, prompt templates and prompt ensembles.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A prompt ensemble (Radford et al. 2021, section 3.1.4, and the "Prompt Engineering for
 * ImageNet" notebook of github.com/openai/CLIP) describes each label with several templates:
 * the label's text embedding is the L2-normalised mean of the L2-normalised embeddings of the
 * template filled with the label, one per template.
 */
#include "clip.h"

#include <math.h>
#include <string.h>

/* Prompts per text-tower call: the workspace grows with the rows of a batch. */
#define CLIP_ENSEMBLE_BATCH 256

/* The 80 templates of the notebook's ImageNet ensemble, in its order. */
static const char *const imagenet_80[] = {
  "a bad photo of a {}.",
  "a photo of many {}.",
  "a sculpture of a {}.",
  "a photo of the hard to see {}.",
  "a low resolution photo of the {}.",
  "a rendering of a {}.",
  "graffiti of a {}.",
  "a bad photo of the {}.",
  "a cropped photo of the {}.",
  "a tattoo of a {}.",
  "the embroidered {}.",
  "a photo of a hard to see {}.",
  "a bright photo of a {}.",
  "a photo of a clean {}.",
  "a photo of a dirty {}.",
  "a dark photo of the {}.",
  "a drawing of a {}.",
  "a photo of my {}.",
  "the plastic {}.",
  "a photo of the cool {}.",
  "a close-up photo of a {}.",
  "a black and white photo of the {}.",
  "a painting of the {}.",
  "a painting of a {}.",
  "a pixelated photo of the {}.",
  "a sculpture of the {}.",
  "a bright photo of the {}.",
  "a cropped photo of a {}.",
  "a plastic {}.",
  "a photo of the dirty {}.",
  "a jpeg corrupted photo of a {}.",
  "a blurry photo of the {}.",
  "a photo of the {}.",
  "a good photo of the {}.",
  "a rendering of the {}.",
  "a {} in a video game.",
  "a photo of one {}.",
  "a doodle of a {}.",
  "a close-up photo of the {}.",
  "a photo of a {}.",
  "the origami {}.",
  "the {} in a video game.",
  "a sketch of a {}.",
  "a doodle of the {}.",
  "a origami {}.",
  "a low resolution photo of a {}.",
  "the toy {}.",
  "a rendition of the {}.",
  "a photo of the clean {}.",
  "a photo of a large {}.",
  "a rendition of a {}.",
  "a photo of a nice {}.",
  "a photo of a weird {}.",
  "a blurry photo of a {}.",
  "a cartoon {}.",
  "art of a {}.",
  "a sketch of the {}.",
  "a embroidered {}.",
  "a pixelated photo of a {}.",
  "itap of the {}.",
  "a jpeg corrupted photo of the {}.",
  "a good photo of a {}.",
  "a plushie {}.",
  "a photo of the nice {}.",
  "a photo of the small {}.",
  "a photo of the weird {}.",
  "the cartoon {}.",
  "art of the {}.",
  "a drawing of the {}.",
  "a photo of the large {}.",
  "a black and white photo of a {}.",
  "the plushie {}.",
  "a dark photo of a {}.",
  "itap of a {}.",
  "graffiti of the {}.",
  "a toy {}.",
  "itap of my {}.",
  "a photo of a cool {}.",
  "a photo of a small {}.",
  "a tattoo of the {}.",
  NULL,
};

/* The 7 the notebook selects from those (its sequential forward selection). */
static const char *const imagenet_7[] = {
  "itap of a {}.",
  "a bad photo of the {}.",
  "a origami {}.",
  "a photo of the large {}.",
  "a {} in a video game.",
  "art of the {}.",
  "a photo of the small {}.",
  NULL,
};

static const struct {
  const char *name;
  const char *const *templates;
} template_sets[] = {
  { "imagenet-80", imagenet_80 },
  { "imagenet-7", imagenet_7 },
};

const char *const *
clip_template_set (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (template_sets); i++)
    if (g_str_equal (name, template_sets[i].name))
      return template_sets[i].templates;
  return NULL;
}

/* ';' if the text has an unescaped semicolon, else ','. */
static char
labels_separator (const char *text)
{
  for (const char *p = text; *p; p++) {
    if (*p == '\\' && p[1])
      p++;
    else if (*p == ';')
      return ';';
  }
  return ',';
}

char **
clip_labels_split (const char *text)
{
  GPtrArray *labels = g_ptr_array_new ();
  GString *current = g_string_new (NULL);
  char separator;
  const char *p;

  text = text ? text : "";
  separator = labels_separator (text);
  for (p = text; ; p++) {
    if (*p == '\\' && (p[1] == ',' || p[1] == ';' || p[1] == '\\')) {
      g_string_append_c (current, p[1]);
      p++;
    } else if (*p == separator || *p == '\0') {
      char *label = g_strstrip (g_strdup (current->str));

      /* A label listed twice would split its probability between its two copies. */
      if (*label && !g_ptr_array_find_with_equal_func (labels, label, g_str_equal, NULL))
        g_ptr_array_add (labels, label);
      else
        g_free (label);
      g_string_truncate (current, 0);
      if (*p == '\0')
        break;
    } else {
      g_string_append_c (current, *p);
    }
  }

  g_string_free (current, TRUE);
  g_ptr_array_add (labels, NULL);
  return (char **) g_ptr_array_free (labels, FALSE);
}

char **
clip_negative_labels_split (const char *text, const char *const *labels)
{
  char **parsed = clip_labels_split (text);
  GPtrArray *kept = g_ptr_array_new ();

  for (char **p = parsed; *p; p++) {
    if (g_strv_contains (labels, *p))
      g_free (*p);
    else
      g_ptr_array_add (kept, *p);
  }
  g_free (parsed);
  g_ptr_array_add (kept, NULL);
  return (char **) g_ptr_array_free (kept, FALSE);
}

/* Appends member (trimmed) to templates, or the named set it names; FALSE with an error when it
 * has no "{}". An empty member is ignored. */
static gboolean
templates_add (GPtrArray *templates, const char *member, GError **error)
{
  char *trimmed = g_strstrip (g_strdup (member));
  const char *const *set;

  if (*trimmed == '\0') {
    g_free (trimmed);
    return TRUE;
  }
  if ((set = clip_template_set (trimmed)) != NULL) {
    for (; *set; set++)
      g_ptr_array_add (templates, g_strdup (*set));
    g_free (trimmed);
    return TRUE;
  }
  if (strstr (trimmed, "{}") == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Prompt template \"%s\" has no \"{}\" for the label (e.g. \"%s\"; several templates "
        "are separated by \"|\", and \"imagenet-80\" or \"imagenet-7\" name CLIP's ImageNet "
        "ensembles)", trimmed, CLIP_DEFAULT_TEMPLATE);
    g_free (trimmed);
    return FALSE;
  }
  g_ptr_array_add (templates, trimmed);
  return TRUE;
}

char **
clip_templates_parse (const char *spec, GError **error)
{
  GPtrArray *templates;
  GString *member;
  const char *p;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!spec)
    spec = CLIP_DEFAULT_TEMPLATE;
  if (!g_utf8_validate (spec, -1, NULL)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Prompt template is not valid UTF-8");
    return NULL;
  }

  templates = g_ptr_array_new_with_free_func (g_free);
  member = g_string_new (NULL);
  for (p = spec; ; p++) {
    if (*p == '\\' && p[1] == '|') {
      g_string_append_c (member, '|');
      p++;
    } else if (*p == '|' || *p == '\0') {
      if (!templates_add (templates, member->str, error))
        goto failed;
      g_string_truncate (member, 0);
      if (*p == '\0')
        break;
    } else {
      g_string_append_c (member, *p);
    }
  }
  if (templates->len == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
        "Prompt template \"%s\" holds no template (e.g. \"%s\")", spec, CLIP_DEFAULT_TEMPLATE);
    goto failed;
  }

  g_string_free (member, TRUE);
  g_ptr_array_set_free_func (templates, NULL);
  g_ptr_array_add (templates, NULL);
  return (char **) g_ptr_array_free (templates, FALSE);

failed:
  g_string_free (member, TRUE);
  g_ptr_array_unref (templates);
  return NULL;
}

void
clip_ensemble_combine (const float *prompt_embeddings, int n_templates, int dim, float *out)
{
  double norm = 0.0;

  g_return_if_fail (prompt_embeddings != NULL && out != NULL && n_templates >= 1 && dim >= 1);

  /* One template: its embedding as it is (already normalised), bit for bit. */
  if (n_templates == 1) {
    if (out != prompt_embeddings)
      memmove (out, prompt_embeddings, sizeof (float) * dim);
    return;
  }
  for (int d = 0; d < dim; d++) {
    double sum = 0.0;

    for (int t = 0; t < n_templates; t++)
      sum += prompt_embeddings[(size_t) t * dim + d];
    /* the mean's 1/n cancels in the normalisation */
    out[d] = (float) sum;
    norm += sum * sum;
  }
  norm = sqrt (norm);
  /* Opposite embeddings cancel out: leave the zero vector (it scores 0 against everything). */
  if (norm > 0.0)
    for (int d = 0; d < dim; d++)
      out[d] = (float) (out[d] / norm);
}

gboolean
clip_embed_text_batched (ClipContext *ctx, const char *const *texts, int n_texts,
                         float *embeddings, GError **error)
{
  int dim;

  g_return_val_if_fail (ctx != NULL && (texts != NULL || n_texts == 0), FALSE);
  dim = clip_model_get_embedding_dim (clip_context_get_model (ctx));
  for (int first = 0; first < n_texts; first += CLIP_ENSEMBLE_BATCH) {
    int n = MIN (CLIP_ENSEMBLE_BATCH, n_texts - first);

    if (!clip_embed_text (ctx, texts + first, n, embeddings + (size_t) first * dim, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
clip_embed_labels (ClipContext *ctx, const char *template_, const char *const *labels,
                   int n_labels, float *embeddings, GError **error)
{
  char **templates;
  char **prompts = NULL;
  float *prompt_embeddings = NULL;
  int n_templates, dim;
  gboolean ok = FALSE;

  g_return_val_if_fail (ctx != NULL && (labels != NULL || n_labels == 0), FALSE);
  g_return_val_if_fail (embeddings != NULL || n_labels == 0, FALSE);

  templates = clip_templates_parse (template_, error);
  if (!templates)
    return FALSE;
  n_templates = (int) g_strv_length (templates);
  dim = clip_model_get_embedding_dim (clip_context_get_model (ctx));

  /* prompts [label][template] */
  prompts = g_new0 (char *, (gsize) n_labels * n_templates + 1);
  for (int i = 0; i < n_labels; i++)
    for (int t = 0; t < n_templates; t++) {
      prompts[i * n_templates + t] = clip_format_prompt (templates[t], labels[i], error);
      if (!prompts[i * n_templates + t])
        goto out;
    }
  prompt_embeddings = g_new (float, (gsize) MAX (n_labels * n_templates, 1) * dim);
  if (!clip_embed_text_batched (ctx, (const char *const *) prompts, n_labels * n_templates,
                                prompt_embeddings, error))
    goto out;
  for (int i = 0; i < n_labels; i++)
    clip_ensemble_combine (prompt_embeddings + (size_t) i * n_templates * dim, n_templates, dim,
                           embeddings + (size_t) i * dim);
  ok = TRUE;

out:
  g_free (prompt_embeddings);
  g_strfreev (prompts);
  g_strfreev (templates);
  return ok;
}
