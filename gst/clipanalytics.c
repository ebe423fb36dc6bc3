/* clipanalytics.c — results as GstAnalytics metadata, and GstAnalyticsODMtd as regions.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipanalytics.h"

#include <gst/analytics/analytics.h>
#include <stdlib.h>

void
clip_analytics_collect_regions (GstBuffer *buffer, int width, int height, GBytes *types,
                                GArray *regions)
{
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buffer);
  GstAnalyticsMtdType od_type = gst_analytics_od_mtd_get_mtd_type ();
  GstAnalyticsMtd mtd;
  gpointer state = NULL;
  guint index = 0;

  if (!rmeta)
    return;
  while (gst_analytics_relation_meta_iterate (rmeta, &state, od_type, &mtd)) {
    GstAnalyticsODMtd *od = (GstAnalyticsODMtd *) &mtd;
    gint x, y, w, h;
    gfloat confidence;

    /* the axis-aligned box (of a rotated one too, since 1.26) */
    if (!gst_analytics_od_mtd_get_location (od, &x, &y, &w, &h, &confidence))
      continue;
    clip_region_add (regions, CLIP_REGION_OD_MTD, index++, (gint) gst_analytics_mtd_get_id (&mtd),
                     gst_analytics_od_mtd_get_obj_type (od), x, y, w, h, width, height, types);
  }
}

gboolean
clip_analytics_may_have_regions (GstBuffer *buffer)
{
  return gst_buffer_get_analytics_relation_meta (buffer) != NULL;
}

typedef struct {
  const double *scores;
  guint index;
} Ranked;

/* best first; equal scores in label order */
static int
compare_ranked (const void *pa, const void *pb)
{
  const Ranked *a = pa, *b = pb;
  double sa = a->scores[a->index], sb = b->scores[b->index];

  if (sa != sb)
    return sa > sb ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* One ClsMtd of every label of result, best first; FALSE if the meta refused it. */
static gboolean
add_cls (GstAnalyticsRelationMeta *rmeta, const ClipResult *result, GstAnalyticsClsMtd *cls)
{
  const ClipLabelSet *set = result->labels;
  guint n = set->n_labels;
  Ranked *ranked = g_new (Ranked, MAX (n, 1));
  gfloat *levels = g_new (gfloat, MAX (n, 1));
  /* class quarks are interned for the process's life: one per distinct label ever set */
  GQuark *quarks = g_new (GQuark, MAX (n, 1));
  gboolean ok;

  for (guint i = 0; i < n; i++)
    ranked[i] = (Ranked) { result->scores, i };
  qsort (ranked, n, sizeof (Ranked), compare_ranked);
  for (guint i = 0; i < n; i++) {
    levels[i] = (gfloat) result->scores[ranked[i].index];
    quarks[i] = g_quark_from_string (set->labels[ranked[i].index]);
  }
  ok = gst_analytics_relation_meta_add_cls_mtd (rmeta, n, levels, quarks, cls);
  g_free (ranked);
  g_free (levels);
  g_free (quarks);
  return ok;
}

void
clip_analytics_add_result (GstBuffer *buffer, const ClipResult *result, gboolean own)
{
  const ClipRegionList *regions = result->regions;
  GstAnalyticsRelationMeta *rmeta;
  GstAnalyticsClsMtd cls;

  /* region=roi in async mode: the regions' detections are on another buffer, nothing to add
   * (and no empty relation meta either) */
  if (result->labels->n_labels == 0 || (!result->scores && !own))
    return;
  rmeta = gst_buffer_get_analytics_relation_meta (buffer);
  /* an ODMtd region implies the meta: without one only the frame's ClsMtd can be added */
  if (!rmeta && result->scores)
    rmeta = gst_buffer_add_analytics_relation_meta (buffer);
  if (!rmeta)
    return;

  if (result->scores)
    add_cls (rmeta, result, &cls);

  /* A later buffer's ODMtds are other detections: only the analysed buffer's get theirs. */
  for (guint i = 0; own && regions && i < regions->n_regions; i++) {
    const ClipRegion *r = &regions->regions[i];
    GstAnalyticsODMtd od;

    if (!(r->origin & CLIP_REGION_OD_MTD)
        || !gst_analytics_relation_meta_get_od_mtd (rmeta, (guint) r->id, &od))
      continue;
    if (add_cls (rmeta, result->region_results[i], &cls))
      gst_analytics_relation_meta_set_relation (rmeta,
          GST_ANALYTICS_REL_TYPE_RELATE_TO | GST_ANALYTICS_REL_TYPE_CONTAIN,
          gst_analytics_mtd_get_id (&od), gst_analytics_mtd_get_id (&cls));
  }
}
