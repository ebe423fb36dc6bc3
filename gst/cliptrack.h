/* cliptrack.h — what the element remembers between results of one label set and segment:
 * temporally smoothed scores (the smoothing property) and the last top label (changes-only,
 * previous-top-label).
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A track starts afresh with the first result of a label set (ClipLabelSet.id: a set built
 * again, even with the same labels, is a new one) and after clip_track_reset, which the element
 * calls on flush, on a new segment and at start. Within a track, with smoothing tau seconds:
 *
 *   s_1 = p_1,   s_k = s_(k-1) + a_k (p_k - s_(k-1)),   a_k = 1 - exp (-dt_k / tau)
 *
 * where p are the result's probabilities (labels then negative labels) and dt_k the difference
 * of the analysed frames' running times in seconds (a frame without one restarts the average:
 * a_k = 1). Streaming thread only; GStreamer-free apart from GstClockTime.
 */
#ifndef CLIP_TRACK_H
#define CLIP_TRACK_H

#include <gst/gst.h>
#include "clipworker.h"

G_BEGIN_DECLS

typedef struct {
  guint64 set_id;             /* of the track's label set; 0: no result since the reset */
  double *smoothed;           /* [n] the last smoothed values (smoothing on) */
  guint n;
  gboolean smoothing;         /* smoothed holds a track's values */
  GstClockTime last_time;     /* running time of the last analysed frame */
  char *last_top;             /* top-label of the last result */
} ClipTrack;

void clip_track_init (ClipTrack *track);
/* Starts afresh: the next result is the first of its track. */
void clip_track_reset (ClipTrack *track);
void clip_track_clear (ClipTrack *track);

/* Takes in result, whose analysed frame has this running time (GST_CLOCK_TIME_NONE if unknown).
 * With tau > 0 (seconds) it sets result->smoothed (which the top lists then rank). Returns the
 * top-label (under this threshold) of the track's previous result ("" for the track's first;
 * owned by the caller) and sets *first when result begins a track. */
char *clip_track_update (ClipTrack *track, ClipResult *result, GstClockTime running_time,
                         double tau, double threshold, gboolean *first);

G_END_DECLS

#endif /* CLIP_TRACK_H */
