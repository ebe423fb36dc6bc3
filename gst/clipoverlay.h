/* clipoverlay.h — renders classification results as a GstVideoOverlayComposition.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Draws the given lines ("label  87.3%" with a bar proportional to the score) with pango/cairo
 * into a premultiplied ARGB buffer, as GStreamer's textoverlay does, and wraps it in one
 * GstVideoOverlayRectangle inside a cached GstVideoOverlayComposition. The composition is
 * rendered again only when the text, the scores (at the 0.1 % shown) or the video size change;
 * otherwise the same composition is returned, so downstream sees an unchanged seqnum.
 *
 * Geometry (all in video pixels, from the video height H):
 *   font size  CLIP_OVERLAY_FONT_PX (H)  = MAX (10, H / 24)
 *   margin     CLIP_OVERLAY_MARGIN_PX (H) = MAX (2, H / 48)
 * The box sits at (margin, margin), top-left, and never extends past the frame: it is at most
 * MIN (width - 2 * margin, MAX (3/5 width, 12 font sizes)) wide and height - 2 * margin tall
 * (long labels are ellipsized, keeping the score; rows that do not fit are dropped). Text is white on a dark translucent box with a dark outline, so it reads
 * on any background.
 *
 * Not thread-safe: one ClipOverlay per element, used from the streaming thread.
 */
#ifndef CLIP_OVERLAY_H
#define CLIP_OVERLAY_H

#include <gst/video/video.h>

G_BEGIN_DECLS

#define CLIP_OVERLAY_FONT_PX(h) MAX (10, (h) / 24)
#define CLIP_OVERLAY_MARGIN_PX(h) MAX (2, (h) / 48)

typedef struct _ClipOverlay ClipOverlay;

ClipOverlay *clip_overlay_new (void);
void clip_overlay_free (ClipOverlay *overlay);

/* labels[i] with scores[i] (probabilities in [0, 1]) for i < n, drawn top to bottom in the order
 * given (the caller passes them best first). Returns a new reference to the (possibly cached)
 * composition, or NULL when n == 0 or the frame is too small to hold any text. */
GstVideoOverlayComposition *clip_overlay_get_composition (ClipOverlay *overlay,
                                                          const GstVideoInfo *info,
                                                          const char *const *labels,
                                                          const double *scores, guint n);

/* Regions of interest (issue 7): a box outline and, when label is set, a tag with
 * "label  87.3%" just above the box (inside it, at its top, where there is no room above; moved
 * left to stay in the frame). Geometry from the video height H:
 *   line width   CLIP_OVERLAY_REGION_LINE_PX (H) = MAX (2, H / 240)
 *   tag font     CLIP_OVERLAY_REGION_FONT_PX (H) = MAX (10, H / 32)
 * Each box is four thin rectangles and each tag one small one, so the overlay's memory and
 * blending cost follow the outlines drawn, not the boxes' areas. */
#define CLIP_OVERLAY_REGION_LINE_PX(h) MAX (2, (h) / 240)
#define CLIP_OVERLAY_REGION_FONT_PX(h) MAX (10, (h) / 32)

typedef struct {
  int x, y, width, height;    /* in video pixels, inside the frame */
  const char *label;          /* the region's top label, or NULL: the box alone */
  double score;               /* its probability */
} ClipOverlayRegion;

/* clip_overlay_get_composition's label box (when n > 0) plus the regions' boxes, in one
 * composition. Rendered again only when the rows, the regions (labels at the 0.1 % shown) or
 * the video size change. NULL when there is nothing to draw. */
GstVideoOverlayComposition *clip_overlay_get_composition_full (ClipOverlay *overlay,
                                                               const GstVideoInfo *info,
                                                               const char *const *labels,
                                                               const double *scores, guint n,
                                                               const ClipOverlayRegion *regions,
                                                               guint n_regions);

G_END_DECLS

#endif /* CLIP_OVERLAY_H */
