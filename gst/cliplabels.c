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

/* ClipLabelSet.id of the last set built */
static guint64 next_id;
G_LOCK_DEFINE_STATIC (next_id);

struct _ClipLabelCache {
  GHashTable *embeddings;     /* prompt (owned) -> float[dim] (owned) */
  ClipModel *model;           /* the model the embeddings belong to (not a ref: identity only) */
  guint64 n_computed;         /* prompts embedded since creation */
};

ClipLabelCache *
clip_label_cache_new (void)
{
  ClipLabelCache *cache = g_new0 (ClipLabelCache, 1);

  cache->embeddings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return cache;
}

guint64
clip_label_cache_get_n_computed (const ClipLabelCache *cache)
{
  return cache->n_computed;
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
  return clip_label_set_build_full (ctx, cache, labels_text, NULL, template_, cancellable,
                                    error);
}

ClipLabelSet *
clip_label_set_build_full (ClipContext *ctx, ClipLabelCache *cache, const char *labels_text,
                           const char *negative_text, const char *template_,
                           GCancellable *cancellable, GError **error)
{
  ClipModel *model;
  ClipLabelSet *set;
  char **templates = NULL, **prompts = NULL;
  GPtrArray *missing = NULL;
  float *computed = NULL, *gathered = NULL;
  guint i, t, n_templates, n_prompts, n_all;
  char **all = NULL;
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

  templates = clip_templates_parse (template_, error);
  if (!templates)
    return NULL;
  n_templates = g_strv_length (templates);

  set = g_new0 (ClipLabelSet, 1);
  set->ref_count = 1;
  set->dim = dim;
  G_LOCK (next_id);
  set->id = ++next_id;
  G_UNLOCK (next_id);
  set->labels = clip_labels_split (labels_text);
  set->n_labels = g_strv_length (set->labels);
  set->negative_labels = clip_negative_labels_split (negative_text,
                                                    (const char *const *) set->labels);
  set->n_negative = g_strv_length (set->negative_labels);
  n_all = set->n_labels + set->n_negative;
  set->embeddings = g_new0 (float, (gsize) MAX (n_all, 1) * dim);
  /* labels then negatives, as the embeddings are laid out */
  all = g_new0 (char *, n_all + 1);
  for (i = 0; i < n_all; i++)
    all[i] = i < set->n_labels ? set->labels[i] : set->negative_labels[i - set->n_labels];

  /* prompts [label][template]: each is cached on its own, so a new label costs its own prompts
   * and a new template only the prompts it makes */
  n_prompts = n_all * n_templates;
  prompts = g_new0 (char *, n_prompts + 1);
  missing = g_ptr_array_new ();
  for (i = 0; i < n_prompts; i++) {
    prompts[i] = clip_format_prompt (templates[i % n_templates], all[i / n_templates], error);
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
     * take the text tower many seconds (imagenet-80 makes 80 prompts a label). 16 prompts of
     * ViT-B/16 take ~0.3 s on one core, and with ~8 rows each the weights are still read once
     * per hundred rows or so. */
    for (i = 0; i < missing->len; i += CLIP_LABELS_CHUNK) {
      guint n = MIN (CLIP_LABELS_CHUNK, missing->len - i);

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        goto failed;
      if (!clip_embed_text (ctx, (const char *const *) missing->pdata + i, (int) n,
                            computed + (gsize) i * dim, error))
        goto failed;
    }
    cache->n_computed += missing->len;
    if (g_hash_table_size (cache->embeddings) + missing->len > CACHE_MAX_PROMPTS)
      clip_label_cache_trim (cache, prompts);
    for (i = 0; i < missing->len; i++)
      g_hash_table_insert (cache->embeddings, g_strdup (missing->pdata[i]),
                           g_memdup2 (computed + (gsize) i * dim, sizeof (float) * dim));
  }

  gathered = g_new (float, (gsize) n_templates * dim);
  for (i = 0; i < n_all; i++) {
    for (t = 0; t < n_templates; t++) {
      const float *embedding = g_hash_table_lookup (cache->embeddings,
                                                    prompts[i * n_templates + t]);

      memcpy (gathered + (gsize) t * dim, embedding, sizeof (float) * dim);
    }
    clip_ensemble_combine (gathered, (int) n_templates, dim, set->embeddings + (gsize) i * dim);
  }

  g_free (gathered);
  g_free (computed);
  g_ptr_array_unref (missing);
  g_strfreev (prompts);
  g_strfreev (templates);
  g_free (all);
  return set;

  /* ERRORS */
failed:
  g_free (computed);
  g_ptr_array_unref (missing);
  g_strfreev (prompts);
  g_strfreev (templates);
  g_free (all);
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
  g_strfreev (set->negative_labels);
  g_free (set->embeddings);
  g_free (set);
}
