/* clipresult.c — a ClipResult as the GstStructure of the bus message and the buffer meta.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipresult.h"

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
