/* clipresult.h — a ClipResult as the GstStructure that both the bus message and the buffer
 * meta carry.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Fields (the contract documented in the element's SECTION block):
 *   labels        GST_TYPE_ARRAY of G_TYPE_STRING   the whole label set, in label order
 *   scores        GST_TYPE_ARRAY of G_TYPE_DOUBLE   probabilities, same order (with the
 *                                                   negative-scores they sum to 1)
 *   negative-labels GST_TYPE_ARRAY of G_TYPE_STRING the negative labels (may be empty)
 *   negative-scores GST_TYPE_ARRAY of G_TYPE_DOUBLE their probabilities, same softmax
 *   smoothed-scores GST_TYPE_ARRAY of G_TYPE_DOUBLE scores smoothed in time (with `smoothing`)
 *   smoothed-negative-scores  ... and negative-scores (with `smoothing`)
 *   top-labels    GST_TYPE_ARRAY of G_TYPE_STRING   best first: at most top-k, each >= threshold
 *                                                   and above every negative label
 *   top-scores    GST_TYPE_ARRAY of G_TYPE_DOUBLE   their probabilities
 *   top-label     G_TYPE_STRING                     the best label (whatever the threshold), ""
 *                                                   when a negative label scores as high
 *   top-score     G_TYPE_DOUBLE                     its probability (0 with "")
 *                 (the top fields rank the smoothed values when there are some)
 *   previous-top-label G_TYPE_STRING                the top-label of the previous result of the
 *                                                   same label set and segment ("" for the first)
 *   analysed-pts  G_TYPE_UINT64                     PTS of the analysed frame
 *   latency       G_TYPE_UINT64                     inference time on the worker, ns
 *   rescored      G_TYPE_BOOLEAN                    TRUE: an earlier frame's embedding scored
 *                                                   against labels set since (async only)
 *   timestamp     G_TYPE_UINT64                     PTS of the buffer that carries the result
 *   stream-time   G_TYPE_UINT64                     ... and its stream time
 *   running-time  G_TYPE_UINT64                     ... and its running time
 *   image-embedding GST_TYPE_ARRAY of G_TYPE_FLOAT  the frame's L2-normalised image embedding
 *                                                   (projection_dim floats; with `embeddings`)
 * Times are GST_CLOCK_TIME_NONE when unknown.
 */
#ifndef CLIP_RESULT_H
#define CLIP_RESULT_H

#include <gst/gst.h>
#include <gst/video/video.h>
#include "clipworker.h"

G_BEGIN_DECLS

#define CLIP_RESULT_MESSAGE_NAME "clipclassify"

/* Indices of the top-k scores >= threshold and above every negative label's, best first (ties
 * in label order); returns how many were written to indices (room for MIN (top_k, n_labels)). */
guint clip_result_top (const ClipResult *result, guint top_k, double threshold, guint *indices);
/* The best label, the first of clip_result_top's list: FALSE when there is none, it scores
 * under threshold, or a negative label scores at least as high. */
gboolean clip_result_best (const ClipResult *result, double threshold, guint *index);
/* Its name, or "" (top-label). */
const char *clip_result_top_label (const ClipResult *result, double threshold);

GstStructure *clip_result_to_structure (const ClipResult *result, guint top_k, double threshold,
                                        GstClockTime timestamp, GstClockTime stream_time,
                                        GstClockTime running_time);

/* What the element's properties add to a result's structure. */
typedef struct {
  guint top_k;
  double threshold;
  gboolean embeddings;            /* add image-embedding */
  const char *previous_top_label; /* add previous-top-label (NULL: not) */
} ClipResultFormat;

GstStructure *clip_result_to_structure_full (const ClipResult *result,
                                             const ClipResultFormat *format,
                                             GstClockTime timestamp, GstClockTime stream_time,
                                             GstClockTime running_time);

/* Issue 7, regions (clipregions.h has the contract). For a result with regions: the frame's
 * fields (unless only regions were analysed), then `regions`, an array of
 * `clipclassify-region` structures; without regions, clip_result_to_structure. */
GstStructure *clip_result_to_structure_with_regions (const ClipResult *result, guint top_k,
                                                     double threshold, GstClockTime timestamp,
                                                     GstClockTime stream_time,
                                                     GstClockTime running_time);
/* ... in two steps: every field but `regions` (region=roi: the analysis and carrier fields
 * only), and the `regions` value (GST_TYPE_ARRAY; an empty one without regions). */
GstStructure *clip_result_to_structure_base (const ClipResult *result,
                                             const ClipResultFormat *format,
                                             GstClockTime timestamp, GstClockTime stream_time,
                                             GstClockTime running_time);
void clip_result_regions_value (const ClipResult *result, const ClipResultFormat *format,
                                GValue *value);
/* Worker thread: makes the `regions` value for the meta and for the message ahead of time, so
 * the streaming thread delivering the result builds none of it (a structure per region costs it
 * microseconds each). No-op without regions. */
void clip_result_prepare_regions (ClipResult *result, const ClipResultFormat *format);
/* Streaming thread: the two values (uninitialised GValues in), taken from what
 * clip_result_prepare_regions made when top_k, threshold and embeddings are still those, else
 * made now. */
void clip_result_take_regions (ClipResult *result, const ClipResultFormat *format,
                               GValue *for_meta, GValue *for_message);
/* The label fields of result (labels, scores, top-..., whatever clip_result_to_structure puts
 * there besides the analysis and carrier fields), in a structure named name. */
GstStructure *clip_result_label_fields (const ClipResult *result, const char *name,
                                        const ClipResultFormat *format);
/* Sync mode: gives each ROI meta of buffer that was analysed as a region of result a param
 * structure named `clipclassify` with its label fields (replacing one from an earlier pass). */
void clip_result_attach_roi_params (const ClipResult *result, GstBuffer *buffer,
                                    const ClipResultFormat *format);

G_END_DECLS

#endif /* CLIP_RESULT_H */
