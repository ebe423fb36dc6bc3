/* cliplabels.c — label sets: parsing the `labels` property, prompts, cached text embeddings.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cliplabels.h"

#include <string.h>

/* A relabeling application may cycle through many vocabularies; beyond this many cached prompts
 * the cache keeps only the current set's. */
#define CACHE_MAX_PROMPTS 1024

struct _ClipLabelCache {
  GHashTable *embeddings;     /* prompt (owned) -> float[dim] (owned) */
  ClipModel *model;           /* the model the embeddings belong to (not a ref: identity only) */
};

/* ';' if the text has an unescaped semicolon, else ','. */
static char
clip_labels_separator (const char *text)
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
clip_labels_parse (const char *text)
{
  GPtrArray *labels = g_ptr_array_new ();
  GString *current = g_string_new (NULL);
  char separator;
  const char *p;

  text = text ? text : "";
  separator = clip_labels_separator (text);
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

ClipLabelCache *
clip_label_cache_new (void)
{
  ClipLabelCache *cache = g_new0 (ClipLabelCache, 1);

  cache->embeddings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return cache;
}

void
clip_label_cache_free (ClipLabelCache *cache)
{
  if (!cache)
    return;
  g_hash_table_unref (cache->embeddings);
  g_free (cache);
}

/* Drops every cached prompt the current set does not use. */
static void
clip_label_cache_trim (ClipLabelCache *cache, char **prompts)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, cache->embeddings);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    if (!g_strv_contains ((const char *const *) prompts, key))
      g_hash_table_iter_remove (&iter);
  }
}

ClipLabelSet *
clip_label_set_build (ClipContext *ctx, ClipLabelCache *cache, const char *labels_text,
                      const char *template_, GCancellable *cancellable, GError **error)
{
  ClipModel *model;
  ClipLabelSet *set;
  char **prompts = NULL;
  GPtrArray *missing = NULL;
  float *computed = NULL;
  guint i;
  int dim;

  g_return_val_if_fail (ctx != NULL, NULL);
  g_return_val_if_fail (cache != NULL, NULL);

  model = clip_context_get_model (ctx);
  dim = clip_model_get_embedding_dim (model);
  /* Embeddings of another model would silently score against the wrong space. */
  if (cache->model != model) {
    g_hash_table_remove_all (cache->embeddings);
    cache->model = model;
  }

  set = g_new0 (ClipLabelSet, 1);
  set->ref_count = 1;
  set->dim = dim;
  set->labels = clip_labels_parse (labels_text);
  set->n_labels = g_strv_length (set->labels);
  set->embeddings = g_new0 (float, (gsize) MAX (set->n_labels, 1) * dim);

  prompts = g_new0 (char *, set->n_labels + 1);
  missing = g_ptr_array_new ();
  for (i = 0; i < set->n_labels; i++) {
    prompts[i] = clip_format_prompt (template_ ? template_ : CLIP_DEFAULT_TEMPLATE,
                                     set->labels[i], error);
    if (!prompts[i])
      goto failed;
    /* A prompt listed twice is computed once. */
    if (!g_hash_table_contains (cache->embeddings, prompts[i])
        && !g_ptr_array_find_with_equal_func (missing, prompts[i], g_str_equal, NULL))
      g_ptr_array_add (missing, prompts[i]);
  }

  if (missing->len > 0) {
    computed = g_new (float, (gsize) missing->len * dim);
    /* In batches, so that a stop is not kept waiting for the whole set: thousands of labels
     * take the text tower many seconds. 16 prompts of ViT-B/16 take ~0.3 s on one core, and
     * with ~8 rows each the weights are still read once per hundred rows or so. */
    for (i = 0; i < missing->len; i += CLIP_LABELS_CHUNK) {
      guint n = MIN (CLIP_LABELS_CHUNK, missing->len - i);

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        goto failed;
      if (!clip_embed_text (ctx, (const char *const *) missing->pdata + i, (int) n,
                            computed + (gsize) i * dim, error))
        goto failed;
    }
    if (g_hash_table_size (cache->embeddings) + missing->len > CACHE_MAX_PROMPTS)
      clip_label_cache_trim (cache, prompts);
    for (i = 0; i < missing->len; i++)
      g_hash_table_insert (cache->embeddings, g_strdup (missing->pdata[i]),
                           g_memdup2 (computed + (gsize) i * dim, sizeof (float) * dim));
  }

  for (i = 0; i < set->n_labels; i++) {
    const float *embedding = g_hash_table_lookup (cache->embeddings, prompts[i]);

    memcpy (set->embeddings + (gsize) i * dim, embedding, sizeof (float) * dim);
  }

  g_free (computed);
  g_ptr_array_unref (missing);
  g_strfreev (prompts);
  return set;

  /* ERRORS */
failed:
  g_free (computed);
  g_ptr_array_unref (missing);
  g_strfreev (prompts);
  clip_label_set_unref (set);
  return NULL;
}

ClipLabelSet *
clip_label_set_ref (ClipLabelSet *set)
{
  g_return_val_if_fail (set != NULL, NULL);
  g_atomic_int_inc (&set->ref_count);
  return set;
}

void
clip_label_set_unref (ClipLabelSet *set)
{
  if (!set || !g_atomic_int_dec_and_test (&set->ref_count))
    return;
  g_strfreev (set->labels);
  g_free (set->embeddings);
  g_free (set);
}
