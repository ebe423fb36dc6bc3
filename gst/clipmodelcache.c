/* clipmodelcache.c — one loaded ClipModel per model directory, shared by every element.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipmodelcache.h"

typedef struct {
  ClipModel *model;           /* the table's own reference */
  guint users;
} ClipModelCacheEntry;

static GMutex cache_lock;
static GHashTable *cache_table;   /* "canonical path\nprecision" (owned) -> ClipModelCacheEntry (owned) */

static void
clip_model_cache_entry_free (gpointer data)
{
  ClipModelCacheEntry *entry = data;

  clip_model_unref (entry->model);
  g_free (entry);
}

ClipModel *
clip_model_cache_acquire (const char *model_dir, ClipPrecision precision, GError **error)
{
  ClipModelCacheEntry *entry;
  ClipModel *model = NULL;
  ClipModelParams params = clip_model_params_default ();
  char *path, *key;

  g_return_val_if_fail (model_dir != NULL, NULL);

  path = g_canonicalize_filename (model_dir, NULL);
  params.precision = precision;
  key = g_strdup_printf ("%s\n%s", path, clip_precision_name (precision));

  g_mutex_lock (&cache_lock);
  if (!cache_table)
    cache_table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         clip_model_cache_entry_free);

  entry = g_hash_table_lookup (cache_table, key);
  if (!entry) {
    model = clip_model_load_with_params (path, &params, error);
    if (!model)
      goto done;
    entry = g_new0 (ClipModelCacheEntry, 1);
    entry->model = model;
    g_hash_table_insert (cache_table, g_strdup (key), entry);
  }
  entry->users++;
  model = clip_model_ref (entry->model);

done:
  g_mutex_unlock (&cache_lock);
  g_free (key);
  g_free (path);
  return model;
}

void
clip_model_cache_release (ClipModel *model)
{
  GHashTableIter iter;
  gpointer value;

  if (!model)
    return;

  g_mutex_lock (&cache_lock);
  if (cache_table) {
    g_hash_table_iter_init (&iter, cache_table);
    while (g_hash_table_iter_next (&iter, NULL, &value)) {
      ClipModelCacheEntry *entry = value;

      if (entry->model == model) {
        if (--entry->users == 0)
          g_hash_table_iter_remove (&iter);
        break;
      }
    }
  }
  g_mutex_unlock (&cache_lock);

  clip_model_unref (model);
}
