/* clip-catalog.h — `clip-infer classify --labels L1,L2 IMAGE...`: many images, one process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The model is loaded and the label embeddings computed once; a decoding thread reads and
 * preprocesses the images (in order) while the engine embeds the previous ones. One JSON object
 * per image and line goes to the output, flushed line by line:
 *
 *   {"path": ..., "labels": [...], "scores": [...], ["negative-labels": [...],
 *    "negative-scores": [...],] "top-label": ..., "top-score": ..., ["image-embedding": [...]]}
 *
 * or {"path": ..., "error": "..."} for an image that cannot be read, without stopping the run.
 * An IMAGE may be a directory (its regular files, sorted by name, not recursive) or @FILE (one
 * path per line; relative paths are taken from the current directory).
 */
#ifndef CLIP_CATALOG_H
#define CLIP_CATALOG_H

#include <glib.h>
#include <stdio.h>

#include "clip.h"

G_BEGIN_DECLS

typedef struct {
  const char *model_dir;
  ClipModelParams model_params;
  int n_threads;              /* 0 = every core */
  const char *template_;      /* NULL: CLIP_DEFAULT_TEMPLATE; ensembles as clip_embed_labels */
  const char *labels;         /* clip_labels_split syntax */
  const char *negative;       /* the same, may be NULL */
  gboolean embeddings;        /* add image-embedding */
  int progress;               /* progress bar on stderr: 1 on, 0 off, -1 when it is a tty */
  ClipCrop crop;              /* the crop policy images are preprocessed with */
} ClipCatalogOptions;

/* Expands directories and @lists into image paths, in order. An input that cannot be expanded
 * (an unreadable directory or list) becomes an entry with its error. Returns a vector of
 * ClipCatalogEntry. */
typedef struct {
  char *path;
  char *error;                /* NULL when the path is to be read */
} ClipCatalogEntry;

GPtrArray *clip_catalog_expand (char *const *inputs, int n_inputs);

/* Classifies every image, writing one line each to out. Returns the exit status: 0 when every
 * image was classified, 1 otherwise (an unusable model, labels or template, or any image that
 * could not be classified); fatal errors go to stderr as "clip-infer classify: ...". */
int clip_catalog_classify (const ClipCatalogOptions *options, char *const *inputs, int n_inputs,
                           FILE *out);

G_END_DECLS

#endif /* CLIP_CATALOG_H */
