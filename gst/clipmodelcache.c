/* clipmodelcache.c — one loaded ClipModel per model directory and precision, shared by every
 * element.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The table's mutex guards the table and the entries' fields only, and is never held across a
 * load: the first element asking for a directory inserts a loading entry and loads without the
 * lock; elements asking for the same directory meanwhile wait on the condition variable for that
 * load (and share its model, or its error); elements using other directories, and releases, go
 * on. A failed load takes its entry out of the table at once, so the next request loads again.
 */
#include "clipmodelcache.h"

typedef struct {
  ClipModel *model;           /* the entry's own reference; NULL while loading or after failure */
  guint users;                /* elements holding the model, or waiting for its load */
  gboolean loading;
  GError *error;              /* of a failed load, for those who waited on it */
} ClipModelCacheEntry;

static GMutex cache_lock;
static GCond cache_loaded;        /* some entry's load finished */
static GHashTable *cache_table;   /* "canonical path\nprecision" (owned) -> ClipModelCacheEntry (ours) */

static void
clip_model_cache_entry_free (ClipModelCacheEntry *entry)
{
  if (entry->model)
    clip_model_unref (entry->model);
  g_clear_error (&entry->error);
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
    cache_table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  entry = g_hash_table_lookup (cache_table, key);
  if (entry) {
    entry->users++;
    while (entry->loading)
      g_cond_wait (&cache_loaded, &cache_lock);
  } else {
    GError *load_error = NULL;

    entry = g_new0 (ClipModelCacheEntry, 1);
    entry->users = 1;
    entry->loading = TRUE;
    g_hash_table_insert (cache_table, g_strdup (key), entry);

    /* Seconds for a real model: nobody else waits for the table meanwhile. */
    g_mutex_unlock (&cache_lock);
    model = clip_model_load_with_params (path, &params, &load_error);
    g_mutex_lock (&cache_lock);

    entry->loading = FALSE;
    entry->model = model;
    entry->error = load_error;
    if (!model)
      g_hash_table_remove (cache_table, key);
    g_cond_broadcast (&cache_loaded);
  }

  if (entry->model) {
    model = clip_model_ref (entry->model);
  } else {
    /* The load failed: each of its users gets the error; the last one frees the entry. */
    model = NULL;
    g_propagate_error (error, g_error_copy (entry->error));
    if (--entry->users == 0)
      clip_model_cache_entry_free (entry);
  }
  g_mutex_unlock (&cache_lock);
  g_free (key);
  g_free (path);
  return model;
}

void
clip_model_cache_release (ClipModel *model)
{
  ClipModelCacheEntry *unused = NULL;
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
        if (--entry->users == 0) {
          g_hash_table_iter_remove (&iter);
          unused = entry;
        }
        break;
      }
    }
  }
  g_mutex_unlock (&cache_lock);

  /* Unloading (unmapping the weights) needs no lock either. */
  if (unused)
    clip_model_cache_entry_free (unused);
  clip_model_unref (model);
}
