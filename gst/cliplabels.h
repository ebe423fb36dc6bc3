/* cliplabels.h — label sets: parsing the `labels` property, prompts, cached text embeddings.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A ClipLabelSet is immutable once built and refcounted, so a result can keep the exact set it
 * was scored against while the element swaps in a new one. Sets are built on the worker thread;
 * the ClipLabelCache (prompt -> text embedding) belongs to that thread alone. GLib only.
 */
#ifndef CLIP_LABELS_H
#define CLIP_LABELS_H

#include <gio/gio.h>
#include "clip.h"

G_BEGIN_DECLS

typedef struct {
  gint ref_count;
  guint n_labels;
  char **labels;              /* n_labels + NULL, as the user wrote them (unescaped, trimmed) */
  float *embeddings;          /* [n_labels + n_negative, dim], L2-normalised text embeddings:
                               * the labels', then the negative labels' */
  int dim;
  guint n_negative;           /* "none of these" labels, scored in the same softmax */
  char **negative_labels;     /* n_negative + NULL */
  guint64 id;                 /* unique to this set among all sets built in the process (the
                               * same labels built again get a new one) */
} ClipLabelSet;

typedef struct _ClipLabelCache ClipLabelCache;

ClipLabelCache *clip_label_cache_new (void);
void clip_label_cache_free (ClipLabelCache *cache);
/* How many prompts the cache has had embedded since its creation (tests, logs). */
guint64 clip_label_cache_get_n_computed (const ClipLabelCache *cache);

/* Prompts embedded per batch while a set is built: a stop waits for one batch at most. */
#define CLIP_LABELS_CHUNK 16

/* Builds the set for `labels_text` with the prompt template: one template, several separated by
 * "|" or a named set (clip_templates_parse); each label's embedding is the ensemble of its
 * prompts (clip_ensemble_combine). The embedding of every prompt not in the cache is computed
 * with ctx, in batches of CLIP_LABELS_CHUNK prompts; cached ones are reused, so relabeling embeds
 * only new prompts. Fails (and leaves the cache as it was) on a template without "{}", text the
 * tokenizer or the model refuses, or with G_IO_ERROR_CANCELLED once cancellable is cancelled,
 * which is checked before each batch. */
ClipLabelSet *clip_label_set_build (ClipContext *ctx, ClipLabelCache *cache,
                                    const char *labels_text, const char *template_,
                                    GCancellable *cancellable, GError **error);
/* ... with negative labels (same syntax as labels; one that is also a label is dropped from the
 * negatives: a label cannot be both). */
ClipLabelSet *clip_label_set_build_full (ClipContext *ctx, ClipLabelCache *cache,
                                         const char *labels_text, const char *negative_text,
                                         const char *template_, GCancellable *cancellable,
                                         GError **error);
ClipLabelSet *clip_label_set_ref (ClipLabelSet *set);
void clip_label_set_unref (ClipLabelSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipLabelSet, clip_label_set_unref)

G_END_DECLS

#endif /* CLIP_LABELS_H */
