/* clipresult.c — a ClipResult as the GstStructure of the bus message and the buffer meta.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipresult.h"

#include <string.h>

guint
clip_result_top (const ClipResult *result, guint top_k, double threshold, guint *indices)
{
  guint n = 0, i, j;

  /* Insertion into a list of at most top_k: label sets are small and top_k smaller. */
  for (i = 0; i < result->labels->n_labels; i++) {
    double score = result->scores[i];

    if (score < threshold)
      continue;
    for (j = n; j > 0 && result->scores[indices[j - 1]] < score; j--) {
      if (j < top_k)
        indices[j] = indices[j - 1];
    }
    if (j < top_k) {
      indices[j] = i;
      if (n < top_k)
        n++;
    }
  }
  return n;
}

static void
append_string (GValue *array, const char *string)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, string);
  gst_value_array_append_and_take_value (array, &value);
}

static void
append_double (GValue *array, double number)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_DOUBLE);
  g_value_set_double (&value, number);
  gst_value_array_append_and_take_value (array, &value);
}

GstStructure *
clip_result_to_structure (const ClipResult *result, guint top_k, double threshold,
                          GstClockTime timestamp, GstClockTime stream_time,
                          GstClockTime running_time)
{
  const ClipLabelSet *set = result->labels;
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT;
  GValue top_labels = G_VALUE_INIT, top_scores = G_VALUE_INIT;
  GstStructure *s;
  guint *top, n_top, best = 0, i;

  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  g_value_init (&top_labels, GST_TYPE_ARRAY);
  g_value_init (&top_scores, GST_TYPE_ARRAY);

  for (i = 0; i < set->n_labels; i++) {
    append_string (&labels, set->labels[i]);
    append_double (&scores, result->scores[i]);
    if (result->scores[i] > result->scores[best])
      best = i;
  }

  top = g_new (guint, MAX (MIN (top_k, set->n_labels), 1));
  n_top = clip_result_top (result, top_k, threshold, top);
  for (i = 0; i < n_top; i++) {
    append_string (&top_labels, set->labels[top[i]]);
    append_double (&top_scores, result->scores[top[i]]);
  }
  g_free (top);

  /* Field order is what `gst-launch-1.0 -m` prints: the whole set first, as level does. */
  s = gst_structure_new_empty (CLIP_RESULT_MESSAGE_NAME);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_take_value (s, "top-labels", &top_labels);
  gst_structure_take_value (s, "top-scores", &top_scores);
  gst_structure_set (s,
      "top-label", G_TYPE_STRING, set->n_labels > 0 ? set->labels[best] : "",
      "top-score", G_TYPE_DOUBLE, set->n_labels > 0 ? result->scores[best] : 0.0,
      "analysed-pts", G_TYPE_UINT64,
      (guint64) (result->pts == CLIP_WORKER_NO_PTS ? GST_CLOCK_TIME_NONE : result->pts),
      "latency", G_TYPE_UINT64, result->latency_ns,
      "rescored", G_TYPE_BOOLEAN, result->rescored,
      "timestamp", G_TYPE_UINT64, timestamp,
      "stream-time", G_TYPE_UINT64, stream_time,
      "running-time", G_TYPE_UINT64, running_time, NULL);
  return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Regions (issue 7): built from clip_result_to_structure, so a region carries exactly the label
 * fields a frame result does. */

static gboolean
keep_label_field (GQuark field, GValue *value, gpointer user_data)
{
  return clip_regions_is_label_field (g_quark_to_string (field));
}

static gboolean
copy_label_field (GQuark field, const GValue *value, gpointer user_data)
{
  if (clip_regions_is_label_field (g_quark_to_string (field)))
    gst_structure_id_set_value (user_data, field, value);
  return TRUE;
}

/* The streaming thread builds these for every region of every result it delivers: the frame
 * result's structure is turned into the region's in place (the analysis and carrier fields
 * removed, renamed), never copied. */
GstStructure *
clip_result_label_fields (const ClipResult *result, const char *name, guint top_k,
                          double threshold)
{
  GstStructure *s = clip_result_to_structure (result, top_k, threshold, GST_CLOCK_TIME_NONE,
                                              GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);

  gst_structure_filter_and_map_in_place (s, keep_label_field, NULL);
  gst_structure_set_name (s, name);
  return s;
}

void
clip_result_regions_value (const ClipResult *result, guint top_k, double threshold,
                           GValue *value)
{
  const ClipRegionList *regions = result->regions;

  g_value_init (value, GST_TYPE_ARRAY);
  for (guint i = 0; regions && i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    const char *type = g_quark_to_string (r->roi_type);
    /* the label fields first (GstStructure cannot insert before them without copying them) */
    GstStructure *region = clip_result_label_fields (result->region_results[i],
                                                     CLIP_REGION_STRUCTURE_NAME, top_k,
                                                     threshold);
    GValue item = G_VALUE_INIT;

    gst_structure_set (region,
        "id", G_TYPE_INT, r->id,
        "roi-type", G_TYPE_STRING, type ? type : "",
        "x", G_TYPE_UINT, r->x, "y", G_TYPE_UINT, r->y,
        "width", G_TYPE_UINT, r->width, "height", G_TYPE_UINT, r->height, NULL);
    g_value_init (&item, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&item, region);
    gst_value_array_append_and_take_value (value, &item);
  }
}

GstStructure *
clip_result_to_structure_base (const ClipResult *result, guint top_k, double threshold,
                               GstClockTime timestamp, GstClockTime stream_time,
                               GstClockTime running_time)
{
  GstStructure *s;

  if (result->scores)
    return clip_result_to_structure (result, top_k, threshold, timestamp, stream_time,
                                     running_time);
  /* region=roi: no frame-level labels, only the analysis and carrier fields */
  s = gst_structure_new_empty (CLIP_RESULT_MESSAGE_NAME);
  gst_structure_set (s,
      "analysed-pts", G_TYPE_UINT64,
      (guint64) (result->pts == CLIP_WORKER_NO_PTS ? GST_CLOCK_TIME_NONE : result->pts),
      "latency", G_TYPE_UINT64, result->latency_ns,
      "rescored", G_TYPE_BOOLEAN, result->rescored,
      "timestamp", G_TYPE_UINT64, timestamp,
      "stream-time", G_TYPE_UINT64, stream_time,
      "running-time", G_TYPE_UINT64, running_time, NULL);
  return s;
}

GstStructure *
clip_result_to_structure_with_regions (const ClipResult *result, guint top_k, double threshold,
                                       GstClockTime timestamp, GstClockTime stream_time,
                                       GstClockTime running_time)
{
  GstStructure *s = clip_result_to_structure_base (result, top_k, threshold, timestamp,
                                                   stream_time, running_time);

  if (result->regions) {
    GValue regions = G_VALUE_INIT;

    clip_result_regions_value (result, top_k, threshold, &regions);
    gst_structure_take_value (s, "regions", &regions);
  }
  return s;
}

/* Made on the worker (clip_result_prepare_regions): the `regions` value twice, one for the meta
 * and one for the message, each taken without a copy. */
typedef struct {
  guint top_k;
  double threshold;
  GValue values[2];
} ClipPreparedRegions;

static void
clip_prepared_regions_free (gpointer data)
{
  ClipPreparedRegions *prepared = data;

  for (int i = 0; i < 2; i++)
    if (G_IS_VALUE (&prepared->values[i]))
      g_value_unset (&prepared->values[i]);
  g_free (prepared);
}

void
clip_result_prepare_regions (ClipResult *result, guint top_k, double threshold)
{
  ClipPreparedRegions *prepared;

  if (!result->regions)
    return;
  prepared = g_new0 (ClipPreparedRegions, 1);
  prepared->top_k = top_k;
  prepared->threshold = threshold;
  clip_result_regions_value (result, top_k, threshold, &prepared->values[0]);
  clip_result_regions_value (result, top_k, threshold, &prepared->values[1]);
  if (result->prepared_free)
    result->prepared_free (result->prepared);
  result->prepared = prepared;
  result->prepared_free = clip_prepared_regions_free;
}

void
clip_result_take_regions (ClipResult *result, guint top_k, double threshold, GValue *for_meta,
                          GValue *for_message)
{
  ClipPreparedRegions *prepared = result->prepared;

  if (prepared && result->prepared_free == clip_prepared_regions_free
      && prepared->top_k == top_k && prepared->threshold == threshold
      && G_IS_VALUE (&prepared->values[0])) {
    *for_meta = prepared->values[0];
    *for_message = prepared->values[1];
    memset (prepared->values, 0, sizeof prepared->values);
    return;
  }
  /* top-k or threshold changed since: made here after all */
  clip_result_regions_value (result, top_k, threshold, for_meta);
  g_value_init (for_message, GST_TYPE_ARRAY);
  g_value_copy (for_meta, for_message);
}

/* The meta of a region on this buffer: the index-th ROI meta (ids need not be unique). */
static GstVideoRegionOfInterestMeta *
nth_roi_meta (GstBuffer *buffer, guint index)
{
  gpointer state = NULL;
  GstMeta *meta;
  guint i = 0;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
    if (i++ == index)
      return (GstVideoRegionOfInterestMeta *) meta;
  return NULL;
}

void
clip_result_attach_roi_params (const ClipResult *result, GstBuffer *buffer, guint top_k,
                               double threshold)
{
  const ClipRegionList *regions = result->regions;

  for (guint i = 0; regions && i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    GstVideoRegionOfInterestMeta *meta;
    GstStructure *param, *existing;

    if (!(r->origin & CLIP_REGION_ROI_META) || !(meta = nth_roi_meta (buffer, r->index)))
      continue;
    param = clip_result_label_fields (result->region_results[i], CLIP_REGION_PARAM_NAME, top_k,
                                      threshold);
    /* A second pass over the same buffer (two elements, a re-push) replaces the fields rather
     * than stacking params of the same name, which get_param could not tell apart. */
    existing = gst_video_region_of_interest_meta_get_param (meta, CLIP_REGION_PARAM_NAME);
    if (existing) {
      gst_structure_remove_all_fields (existing);
      gst_structure_foreach (param, copy_label_field, existing);
      gst_structure_free (param);
    } else {
      gst_video_region_of_interest_meta_add_param (meta, param);
    }
  }
}
