/* clipregions.h — regions of interest: what of a frame the worker analyses, and their results.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * With region=roi or both, the streaming thread collects the regions of a sampled buffer
 * (GstVideoRegionOfInterestMeta, and GstAnalyticsODMtd where GStreamer >= 1.24 is built with
 * analytics) into a ClipRegionList: each rectangle clamped to the frame, empty ones skipped,
 * filtered by roi type, largest area first, at most max-regions. That is a few microseconds and
 * no pixels: the list rides with the frame copy to the worker, which cuts each rectangle out of
 * the RGB frame, preprocesses it with the crop policy and embeds the frame and every region in
 * one batched forward pass (clip_embed_images). The worker scores each region as it scores a
 * frame; the result carries the list and one sub-result per region.
 *
 * Results per region (the contract in the element's SECTION block):
 * - `regions` in the message and GstClipClassifyMeta: a GST_TYPE_ARRAY of structures named
 *   `clipclassify-region` with the label fields of a frame result (labels, scores,
 *   negative-labels, negative-scores, top-labels, top-scores, top-label, top-score, and
 *   image-embedding with the embeddings property), then `id` (gint: the ROI meta's, or the ODMtd's),
 *   `roi-type` (string), `x`, `y`, `width`, `height` (guint, after clamping).
 * - in sync mode, on each ROI meta, a param structure named `clipclassify` with those label
 *   fields (gst_video_region_of_interest_meta_get_param (meta, "clipclassify")).
 * With region=roi the message and meta carry no frame-level label fields: `analysed-pts`,
 * `latency`, `rescored` and the timestamps, then `regions` (always the last field).
 */
#ifndef CLIP_REGIONS_H
#define CLIP_REGIONS_H

#include <gst/video/video.h>
#include "clip.h"

G_BEGIN_DECLS

#define CLIP_REGION_STRUCTURE_NAME "clipclassify-region"
#define CLIP_REGION_PARAM_NAME "clipclassify"

/* Flags: a detection attached both ways is one region of both origins (see
 * clip_region_list_collect). */
typedef enum {
  CLIP_REGION_ROI_META = 1 << 0, /* a GstVideoRegionOfInterestMeta */
  CLIP_REGION_OD_MTD = 1 << 1,   /* a GstAnalyticsODMtd (analytics builds) */
} ClipRegionOrigin;

typedef struct {
  ClipRegionOrigin origin;
  guint index;                /* the ROI meta's position among the buffer's ROI metas (the
                               * ODMtd's among ODMtds for an ODMtd alone), to find it again on
                               * the same buffer: ROI meta ids need not be unique */
  gint id;                    /* the ROI meta's id, or the ODMtd's (the same when both) */
  GQuark roi_type;
  guint x, y, width, height;  /* clamped to the frame, never empty */
} ClipRegion;

/* What one frame is analysed for: the whole frame (image 0) and/or its regions (the images
 * after it, in this order). Immutable once collected; refcounted (atomic), shared by the frame
 * copy, the worker's kept embeddings and every result of the frame. */
typedef struct {
  gboolean frame;
  guint n_regions;
  ClipRegion *regions;        /* largest area first */
} ClipRegionList;

ClipRegionList *clip_region_list_ref (ClipRegionList *list);
void clip_region_list_unref (ClipRegionList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipRegionList, clip_region_list_unref)

/* Images the worker embeds for a frame analysed for list: 1 (the frame) when list is NULL. */
guint clip_region_list_n_images (const ClipRegionList *list);

/* roi-types: a comma-separated list of roi-type names, each trimmed; empty (or NULL) = every
 * type. Returns the quarks as GBytes of GQuark (empty for "every type"), shared read-only. */
GBytes *clip_region_types_parse (const char *text);

/* Streaming thread: the regions of buffer (width x height video) that pass types (from
 * clip_region_types_parse), largest clamped area first (ties in meta order), at most
 * max_regions. frame: the frame is analysed too. NULL when there is nothing to analyse (no
 * frame and no region). An ODMtd and a ROI meta with the same id and the same clamped
 * rectangle are one detection attached both ways (DL Streamer sets the ROI meta's id to its
 * ODMtd's): one region, of both origins, classified once. */
ClipRegionList *clip_region_list_collect (GstBuffer *buffer, int width, int height,
                                          gboolean frame, GBytes *types, guint max_regions);

/* For the collectors of each kind of meta: appends a region to regions (a GArray of
 * ClipRegion), clamped to the frame_width x frame_height frame, unless it is empty then or its
 * type is not in types. */
void clip_region_add (GArray *regions, ClipRegionOrigin origin, guint index, gint id,
                      GQuark roi_type, gint64 x, gint64 y, gint64 width, gint64 height,
                      int frame_width, int frame_height, GBytes *types);

/* Whether buffer has any meta a region could come from (nanoseconds: a first look, nothing
 * read). FALSE means clip_region_list_collect would find no region. */
gboolean clip_region_list_may_have (GstBuffer *buffer);

/* The images of a frame, back to back, as the worker's prepare function writes them. */
typedef struct {
  float *pixels;              /* n_images tensors of image_floats */
  guint n_images;
  gsize capacity;             /* floats allocated */
  ClipRegionList *regions;    /* what the images are (a reference; NULL: the frame alone) */
} ClipImageBatch;

/* Makes room for n_images tensors of image_floats each (contents not kept); returns pixels. */
float *clip_image_batch_reserve (ClipImageBatch *batch, guint n_images, gsize image_floats);
void clip_image_batch_clear (ClipImageBatch *batch);

/* Label fields of a structure made by clip_result_to_structure: everything but the fields that
 * describe the analysis and the carrying buffer (analysed-pts, latency, rescored, timestamp,
 * stream-time, running-time). */
gboolean clip_regions_is_label_field (const char *name);

G_END_DECLS

#endif /* CLIP_REGIONS_H */
