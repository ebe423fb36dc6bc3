/* clipresult.c — a ClipResult as the GstStructure of the bus message and the buffer meta.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipresult.h"

#include <string.h>

/* The values the top lists rank. */
static const double *
clip_result_ranked (const ClipResult *result)
{
  return result->smoothed ? result->smoothed : result->scores;
}

/* The highest negative label's probability: a label must beat it to count. -1 without
 * negatives. */
static double
clip_result_bar (const ClipResult *result)
{
  const ClipLabelSet *set = result->labels;
  const double *values = clip_result_ranked (result);
  double bar = -1.0;

  for (guint j = 0; j < set->n_negative; j++)
    bar = MAX (bar, values[set->n_labels + j]);
  return bar;
}

guint
clip_result_top (const ClipResult *result, guint top_k, double threshold, guint *indices)
{
  const double *values = clip_result_ranked (result);
  double bar = clip_result_bar (result);
  guint n = 0, i, j;

  /* Insertion into a list of at most top_k: label sets are small and top_k smaller. */
  for (i = 0; i < result->labels->n_labels; i++) {
    double score = values[i];

    if (score < threshold || score <= bar)
      continue;
    for (j = n; j > 0 && values[indices[j - 1]] < score; j--) {
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

gboolean
clip_result_best (const ClipResult *result, double threshold, guint *index)
{
  const ClipLabelSet *set = result->labels;
  const double *values = clip_result_ranked (result);
  guint best = 0, i;

  if (set->n_labels == 0)
    return FALSE;
  for (i = 1; i < set->n_labels; i++)
    if (values[i] > values[best])
      best = i;
  if (values[best] < threshold || values[best] <= clip_result_bar (result))
    return FALSE;
  *index = best;
  return TRUE;
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

const char *
clip_result_top_label (const ClipResult *result, double threshold)
{
  guint best;

  return clip_result_best (result, threshold, &best) ? result->labels->labels[best] : "";
}

GstStructure *
clip_result_to_structure (const ClipResult *result, guint top_k, double threshold,
                          GstClockTime timestamp, GstClockTime stream_time,
                          GstClockTime running_time)
{
  ClipResultFormat format = { .top_k = top_k, .threshold = threshold };

  return clip_result_to_structure_full (result, &format, timestamp, stream_time, running_time);
}

static void
append_float (GValue *array, float number)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_FLOAT);
  g_value_set_float (&value, number);
  gst_value_array_append_and_take_value (array, &value);
}

GstStructure *
clip_result_to_structure_full (const ClipResult *result, const ClipResultFormat *format,
                               GstClockTime timestamp, GstClockTime stream_time,
                               GstClockTime running_time)
{
  guint top_k = format->top_k;
  double threshold = format->threshold;
  const ClipLabelSet *set = result->labels;
  const double *ranked = clip_result_ranked (result);
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT;
  GValue negative_labels = G_VALUE_INIT, negative_scores = G_VALUE_INIT;
  GValue top_labels = G_VALUE_INIT, top_scores = G_VALUE_INIT;
  GValue smoothed = G_VALUE_INIT, smoothed_negative = G_VALUE_INIT;
  GstStructure *s;
  guint *top, n_top, best = 0, i;
  gboolean has_best;

  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  g_value_init (&negative_labels, GST_TYPE_ARRAY);
  g_value_init (&negative_scores, GST_TYPE_ARRAY);
  g_value_init (&top_labels, GST_TYPE_ARRAY);
  g_value_init (&top_scores, GST_TYPE_ARRAY);

  for (i = 0; i < set->n_labels; i++) {
    append_string (&labels, set->labels[i]);
    append_double (&scores, result->scores[i]);
  }
  for (i = 0; i < set->n_negative; i++) {
    append_string (&negative_labels, set->negative_labels[i]);
    append_double (&negative_scores, result->scores[set->n_labels + i]);
  }
  has_best = clip_result_best (result, threshold, &best);

  top = g_new (guint, MAX (MIN (top_k, set->n_labels), 1));
  n_top = clip_result_top (result, top_k, threshold, top);
  for (i = 0; i < n_top; i++) {
    append_string (&top_labels, set->labels[top[i]]);
    append_double (&top_scores, ranked[top[i]]);
  }
  g_free (top);

  /* Field order is what `gst-launch-1.0 -m` prints: the whole set first, as level does. */
  s = gst_structure_new_empty (CLIP_RESULT_MESSAGE_NAME);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_take_value (s, "negative-labels", &negative_labels);
  gst_structure_take_value (s, "negative-scores", &negative_scores);
  if (result->smoothed) {
    g_value_init (&smoothed, GST_TYPE_ARRAY);
    g_value_init (&smoothed_negative, GST_TYPE_ARRAY);
    for (i = 0; i < set->n_labels; i++)
      append_double (&smoothed, result->smoothed[i]);
    for (i = 0; i < set->n_negative; i++)
      append_double (&smoothed_negative, result->smoothed[set->n_labels + i]);
    gst_structure_take_value (s, "smoothed-scores", &smoothed);
    gst_structure_take_value (s, "smoothed-negative-scores", &smoothed_negative);
  }
  gst_structure_take_value (s, "top-labels", &top_labels);
  gst_structure_take_value (s, "top-scores", &top_scores);
  gst_structure_set (s,
      "top-label", G_TYPE_STRING, has_best ? set->labels[best] : "",
      "top-score", G_TYPE_DOUBLE, has_best ? ranked[best] : 0.0, NULL);
  if (format->previous_top_label)
    gst_structure_set (s, "previous-top-label", G_TYPE_STRING, format->previous_top_label,
                       NULL);
  gst_structure_set (s,
      "analysed-pts", G_TYPE_UINT64,
      (guint64) (result->pts == CLIP_WORKER_NO_PTS ? GST_CLOCK_TIME_NONE : result->pts),
      "latency", G_TYPE_UINT64, result->latency_ns,
      "rescored", G_TYPE_BOOLEAN, result->rescored,
      "timestamp", G_TYPE_UINT64, timestamp,
      "stream-time", G_TYPE_UINT64, stream_time,
      "running-time", G_TYPE_UINT64, running_time, NULL);

  if (format->embeddings && result->image_embedding) {
    GValue embedding = G_VALUE_INIT;

    /* gst_value_array_init reserves the room up front: projection_dim is 512 or more */
    gst_value_array_init (&embedding, (guint) set->dim);
    for (int d = 0; d < set->dim; d++)
      append_float (&embedding, result->image_embedding[d]);
    gst_structure_take_value (s, "image-embedding", &embedding);
  }
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
clip_result_label_fields (const ClipResult *result, const char *name,
                          const ClipResultFormat *format)
{
  /* a region has no track of its own: no previous-top-label */
  ClipResultFormat own = { .top_k = format->top_k, .threshold = format->threshold,
                           .embeddings = format->embeddings };
  GstStructure *s = clip_result_to_structure_full (result, &own, GST_CLOCK_TIME_NONE,
                                                   GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);

  gst_structure_filter_and_map_in_place (s, keep_label_field, NULL);
  gst_structure_set_name (s, name);
  return s;
}

void
clip_result_regions_value (const ClipResult *result, const ClipResultFormat *format,
                           GValue *value)
{
  const ClipRegionList *regions = result->regions;

  g_value_init (value, GST_TYPE_ARRAY);
  for (guint i = 0; regions && i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    const char *type = g_quark_to_string (r->roi_type);
    /* the label fields first (GstStructure cannot insert before them without copying them) */
    GstStructure *region = clip_result_label_fields (result->region_results[i],
                                                     CLIP_REGION_STRUCTURE_NAME, format);
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
clip_result_to_structure_base (const ClipResult *result, const ClipResultFormat *format,
                               GstClockTime timestamp, GstClockTime stream_time,
                               GstClockTime running_time)
{
  GstStructure *s;

  if (result->scores)
    return clip_result_to_structure_full (result, format, timestamp, stream_time,
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
  ClipResultFormat format = { .top_k = top_k, .threshold = threshold };
  GstStructure *s = clip_result_to_structure_base (result, &format, timestamp, stream_time,
                                                   running_time);

  if (result->regions) {
    GValue regions = G_VALUE_INIT;

    clip_result_regions_value (result, &format, &regions);
    gst_structure_take_value (s, "regions", &regions);
  }
  return s;
}

/* Made on the worker (clip_result_prepare_regions): the `regions` value twice, one for the meta
 * and one for the message, each taken without a copy. */
typedef struct {
  ClipResultFormat format;     /* previous_top_label unused (NULL) */
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
clip_result_prepare_regions (ClipResult *result, const ClipResultFormat *format)
{
  ClipPreparedRegions *prepared;

  if (!result->regions)
    return;
  prepared = g_new0 (ClipPreparedRegions, 1);
  prepared->format.top_k = format->top_k;
  prepared->format.threshold = format->threshold;
  prepared->format.embeddings = format->embeddings;
  clip_result_regions_value (result, &prepared->format, &prepared->values[0]);
  clip_result_regions_value (result, &prepared->format, &prepared->values[1]);
  if (result->prepared_free)
    result->prepared_free (result->prepared);
  result->prepared = prepared;
  result->prepared_free = clip_prepared_regions_free;
}

void
clip_result_take_regions (ClipResult *result, const ClipResultFormat *format, GValue *for_meta,
                          GValue *for_message)
{
  ClipPreparedRegions *prepared = result->prepared;

  if (prepared && result->prepared_free == clip_prepared_regions_free
      && prepared->format.top_k == format->top_k
      && prepared->format.threshold == format->threshold
      && !prepared->format.embeddings == !format->embeddings
      && G_IS_VALUE (&prepared->values[0])) {
    *for_meta = prepared->values[0];
    *for_message = prepared->values[1];
    memset (prepared->values, 0, sizeof prepared->values);
    return;
  }
  /* top-k, threshold or embeddings changed since: made here after all */
  clip_result_regions_value (result, format, for_meta);
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
clip_result_attach_roi_params (const ClipResult *result, GstBuffer *buffer,
                               const ClipResultFormat *format)
{
  const ClipRegionList *regions = result->regions;

  for (guint i = 0; regions && i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    GstVideoRegionOfInterestMeta *meta;
    GstStructure *param, *existing;

    if (!(r->origin & CLIP_REGION_ROI_META) || !(meta = nth_roi_meta (buffer, r->index)))
      continue;
    param = clip_result_label_fields (result->region_results[i], CLIP_REGION_PARAM_NAME,
                                      format);
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
