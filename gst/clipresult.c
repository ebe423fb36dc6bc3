/* clipresult.c — a ClipResult as the GstStructure of the bus message and the buffer meta.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipresult.h"

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
copy_label_field (GQuark field, const GValue *value, gpointer user_data)
{
  if (clip_regions_is_label_field (g_quark_to_string (field)))
    gst_structure_id_set_value (user_data, field, value);
  return TRUE;
}

GstStructure *
clip_result_label_fields (const ClipResult *result, const char *name, guint top_k,
                          double threshold)
{
  GstStructure *full = clip_result_to_structure (result, top_k, threshold, GST_CLOCK_TIME_NONE,
                                                 GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);
  GstStructure *s = gst_structure_new_empty (name);

  gst_structure_foreach (full, copy_label_field, s);
  gst_structure_free (full);
  return s;
}

GstStructure *
clip_result_to_structure_with_regions (const ClipResult *result, guint top_k, double threshold,
                                       GstClockTime timestamp, GstClockTime stream_time,
                                       GstClockTime running_time)
{
  const ClipRegionList *regions = result->regions;
  GValue array = G_VALUE_INIT;
  GstStructure *s;

  if (!regions)
    return clip_result_to_structure (result, top_k, threshold, timestamp, stream_time,
                                     running_time);

  /* region=both: the frame's fields first, as without regions */
  s = result->scores ? clip_result_to_structure (result, top_k, threshold, timestamp,
                                                 stream_time, running_time)
      : gst_structure_new_empty (CLIP_RESULT_MESSAGE_NAME);

  g_value_init (&array, GST_TYPE_ARRAY);
  for (guint i = 0; i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    const char *type = g_quark_to_string (r->roi_type);
    GstStructure *region = gst_structure_new (CLIP_REGION_STRUCTURE_NAME,
        "id", G_TYPE_INT, r->id,
        "roi-type", G_TYPE_STRING, type ? type : "",
        "x", G_TYPE_UINT, r->x, "y", G_TYPE_UINT, r->y,
        "width", G_TYPE_UINT, r->width, "height", G_TYPE_UINT, r->height, NULL);
    GstStructure *labels = clip_result_label_fields (result->region_results[i], "labels",
                                                     top_k, threshold);
    GValue value = G_VALUE_INIT;

    gst_structure_foreach (labels, copy_label_field, region);
    gst_structure_free (labels);
    g_value_init (&value, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&value, region);
    gst_value_array_append_and_take_value (&array, &value);
  }
  gst_structure_take_value (s, "regions", &array);

  /* region=roi: no frame-level labels, the analysis and carrier fields after the regions */
  if (!result->scores)
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
