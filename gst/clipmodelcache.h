/* clipmodelcache.h — one loaded ClipModel per model directory and precision, shared by every
 * element.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The process-wide table behind one mutex is the plugin's only global; the mutex is never held
 * across a load. Paths are compared after g_canonicalize_filename, so "models/x" and
 * "/abs/models/x" share a model; each precision is a model of its own (its weights are packed
 * differently). An entry lives while some element holds it; the last release
 * unloads the model. GLib only.
 */
#ifndef CLIP_MODEL_CACHE_H
#define CLIP_MODEL_CACHE_H

#include <glib.h>
#include "clip.h"

G_BEGIN_DECLS

/* Returns a reference to the model in model_dir packed for `precision`, loading it if no element
 * holds it yet. Two elements asking for the same path and precision at once load it once (the
 * second waits for that load, and shares its error if it fails); requests for other paths and
 * releases never wait for a load. */
ClipModel *clip_model_cache_acquire (const char *model_dir, ClipPrecision precision,
                                     GError **error);

/* Gives back a model obtained from clip_model_cache_acquire. */
void clip_model_cache_release (ClipModel *model);

G_END_DECLS

#endif /* CLIP_MODEL_CACHE_H */
