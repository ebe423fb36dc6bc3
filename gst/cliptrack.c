/* cliptrack.c — smoothed scores and the last top label of one label set and segment.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cliptrack.h"

#include <math.h>
#include <string.h>

#include "clipresult.h"

void
clip_track_init (ClipTrack *track)
{
  memset (track, 0, sizeof *track);
  track->last_time = GST_CLOCK_TIME_NONE;
}

void
clip_track_reset (ClipTrack *track)
{
  track->set_id = 0;
  track->smoothing = FALSE;
  track->last_time = GST_CLOCK_TIME_NONE;
  g_clear_pointer (&track->last_top, g_free);
}

void
clip_track_clear (ClipTrack *track)
{
  clip_track_reset (track);
  g_clear_pointer (&track->smoothed, g_free);
  track->n = 0;
}

char *
clip_track_update (ClipTrack *track, ClipResult *result, GstClockTime running_time, double tau,
                   double threshold, gboolean *first)
{
  const ClipLabelSet *set = result->labels;
  guint n = set->n_labels + set->n_negative, i;
  char *previous;

  *first = track->set_id == 0 || track->set_id != set->id;
  if (*first) {
    clip_track_reset (track);
    track->set_id = set->id;
  }

  if (tau > 0) {
    double alpha = 1.0;     /* without both running times: the raw values */

    if (track->n != n) {
      g_free (track->smoothed);
      track->smoothed = g_new0 (double, MAX (n, 1));
      track->n = n;
      track->smoothing = FALSE;
    }
    /* smoothing just switched on counts as a track's first result too */
    if (track->smoothing && GST_CLOCK_TIME_IS_VALID (running_time)
        && GST_CLOCK_TIME_IS_VALID (track->last_time)) {
      double dt = running_time > track->last_time ?
          (double) (running_time - track->last_time) / GST_SECOND : 0.0;

      alpha = -expm1 (-dt / tau);
    }
    if (!track->smoothing) {
      for (i = 0; i < n; i++)
        track->smoothed[i] = result->scores[i];
    } else {
      for (i = 0; i < n; i++)
        track->smoothed[i] += alpha * (result->scores[i] - track->smoothed[i]);
    }
    track->smoothing = TRUE;
    g_free (result->smoothed);
    result->smoothed = g_memdup2 (track->smoothed, sizeof (double) * MAX (n, 1));
  } else {
    track->smoothing = FALSE;
  }
  track->last_time = running_time;

  previous = g_strdup (track->last_top ? track->last_top : "");
  g_free (track->last_top);
  track->last_top = g_strdup (clip_result_top_label (result, threshold));
  return previous;
}
