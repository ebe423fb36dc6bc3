/* clipanalytics.h — results as GstAnalytics metadata, and GstAnalyticsODMtd as regions
 * (GStreamer >= 1.24 with gstreamer-analytics-1.0 only: built when meson finds them, see the
 * `analytics` option; 1.22 builds have none of this).
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GStreamer 1.24 carries detections as GstAnalyticsODMtd in the buffer's
 * GstAnalyticsRelationMeta (onnxinference ! ssdobjectdetector) and classifications as
 * GstAnalyticsClsMtd related to them, which objectdetectionoverlay draws. With it:
 * - each ODMtd of a sampled buffer is a region (its id is the ODMtd's, its roi-type the object
 *   type), under the same rules as ROI metas (clipregions.h);
 * - every result also becomes ClsMtds on the buffer that carries it: the frame's (when the frame
 *   was analysed) and, on the analysed buffer itself (sync mode), one per ODMtd region, related
 *   from the ODMtd with one set_relation carrying RELATE_TO | CONTAIN: RELATE_TO is what
 *   objectdetectionoverlay looks for, CONTAIN is DL Streamer's convention (the detection
 *   contains its classification). A ClsMtd holds every label as a class quark with its
 *   probability as confidence level, best first: class 0 is the top label, what
 *   objectdetectionoverlay draws.
 */
#ifndef CLIP_ANALYTICS_H
#define CLIP_ANALYTICS_H

#include <gst/gst.h>
#include "clipregions.h"
#include "clipworker.h"

G_BEGIN_DECLS

/* Appends the ODMtds of buffer to regions (clip_region_add: clamped, filtered by types). */
void clip_analytics_collect_regions (GstBuffer *buffer, int width, int height, GBytes *types,
                                     GArray *regions);

/* Whether buffer has a relation meta (where ODMtds would be). */
gboolean clip_analytics_may_have_regions (GstBuffer *buffer);

/* Adds result's ClsMtds to buffer's relation meta (made if missing); own: result is of buffer
 * itself (sync mode), so its ODMtd regions are this buffer's ODMtds and get theirs, related. */
void clip_analytics_add_result (GstBuffer *buffer, const ClipResult *result, gboolean own);

G_END_DECLS

#endif /* CLIP_ANALYTICS_H */
