/* clipregions.c — regions of interest: collected on the streaming thread, cut on the worker.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipregions.h"

#include <stdlib.h>
#include <string.h>

#ifdef HAVE_GST_ANALYTICS
#include "clipanalytics.h"
#endif

ClipRegionList *
clip_region_list_ref (ClipRegionList *list)
{
  return g_atomic_rc_box_acquire (list);
}

static void
clip_region_list_clear (ClipRegionList *list)
{
  g_free (list->regions);
}

void
clip_region_list_unref (ClipRegionList *list)
{
  if (list)
    g_atomic_rc_box_release_full (list, (GDestroyNotify) clip_region_list_clear);
}

guint
clip_region_list_n_images (const ClipRegionList *list)
{
  return list ? (list->frame ? 1 : 0) + list->n_regions : 1;
}

GBytes *
clip_region_types_parse (const char *text)
{
  GArray *quarks = g_array_new (FALSE, FALSE, sizeof (GQuark));
  char **names = g_strsplit (text ? text : "", ",", -1);
  gsize size;

  for (char **name = names; *name; name++) {
    GQuark quark;

    g_strstrip (*name);
    if (!**name)
      continue;
    quark = g_quark_from_string (*name);
    /* a name given twice counts once */
    for (guint i = 0; i < quarks->len && quark; i++)
      if (g_array_index (quarks, GQuark, i) == quark)
        quark = 0;
    if (quark)
      g_array_append_val (quarks, quark);
  }
  g_strfreev (names);
  size = quarks->len * sizeof (GQuark);
  return g_bytes_new_take (g_array_free (quarks, FALSE), size);
}

static gboolean
type_wanted (GBytes *types, GQuark roi_type)
{
  gsize size;
  const GQuark *quarks = types ? g_bytes_get_data (types, &size) : NULL;

  if (!quarks || size == 0)
    return TRUE;
  for (gsize i = 0; i < size / sizeof (GQuark); i++)
    if (quarks[i] == roi_type)
      return TRUE;
  return FALSE;
}

/* [x, x + width) clamped to [0, limit) (64-bit: x + width can overflow a guint or an int); the
 * empty interval gives *length 0. */
static void
clamp_span (gint64 x, gint64 width, int limit, guint *start, guint *length)
{
  gint64 a = CLAMP (x, 0, limit), b = CLAMP (x + MAX (width, 0), 0, limit);

  *start = (guint) a;
  *length = (guint) (b - a);
}

void
clip_region_add (GArray *regions, ClipRegionOrigin origin, guint index, gint id, GQuark roi_type,
                 gint64 x, gint64 y, gint64 width, gint64 height, int frame_width,
                 int frame_height, GBytes *types)
{
  ClipRegion region = { origin, index, id, roi_type, 0, 0, 0, 0 };

  if (!type_wanted (types, roi_type))
    return;
  clamp_span (x, width, frame_width, &region.x, &region.width);
  clamp_span (y, height, frame_height, &region.y, &region.height);
  if (region.width == 0 || region.height == 0)
    return;
  g_array_append_val (regions, region);
}

/* A detection attached as an ODMtd and a ROI meta (same id, same rectangle) counts once: the
 * ROI meta's region takes the ODMtd's origin too, the ODMtd's goes. */
static void
merge_duplicates (GArray *regions)
{
  for (guint i = 0; i < regions->len; i++) {
    ClipRegion *od = &g_array_index (regions, ClipRegion, i);

    if (od->origin != CLIP_REGION_OD_MTD)
      continue;
    for (guint j = 0; j < regions->len; j++) {
      ClipRegion *roi = &g_array_index (regions, ClipRegion, j);

      if (roi->origin == CLIP_REGION_ROI_META && roi->id == od->id && roi->x == od->x
          && roi->y == od->y && roi->width == od->width && roi->height == od->height) {
        roi->origin |= CLIP_REGION_OD_MTD;
        g_array_remove_index (regions, i--);
        break;
      }
    }
  }
}

/* Largest area first; equal areas keep the order they were found in (ROI metas, then ODMtds,
 * each in buffer order), so the choice under max-regions is deterministic. */
static int
compare_area (const void *pa, const void *pb)
{
  const ClipRegion *a = pa, *b = pb;
  guint64 area_a = (guint64) a->width * a->height, area_b = (guint64) b->width * b->height;

  if (area_a != area_b)
    return area_a > area_b ? -1 : 1;
  /* ROI metas (merged or not) before ODMtds alone */
  if ((a->origin & CLIP_REGION_ROI_META) != (b->origin & CLIP_REGION_ROI_META))
    return a->origin & CLIP_REGION_ROI_META ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

ClipRegionList *
clip_region_list_collect (GstBuffer *buffer, int width, int height, gboolean frame,
                          GBytes *types, guint max_regions)
{
  GArray *regions = g_array_new (FALSE, FALSE, sizeof (ClipRegion));
  ClipRegionList *list;
  gpointer state = NULL;
  GstMeta *meta;
  guint index = 0;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;

    clip_region_add (regions, CLIP_REGION_ROI_META, index++, roi->id, roi->roi_type, roi->x,
                     roi->y, roi->w, roi->h, width, height, types);
  }
#ifdef HAVE_GST_ANALYTICS
  clip_analytics_collect_regions (buffer, width, height, types, regions);
#endif
  merge_duplicates (regions);

  if (regions->len == 0 && !frame) {
    g_array_free (regions, TRUE);
    return NULL;
  }
  /* (no qsort of an empty array: its data is NULL, which qsort must not be given) */
  if (regions->len > 1)
    qsort (regions->data, regions->len, sizeof (ClipRegion), compare_area);
  if (regions->len > max_regions)
    g_array_set_size (regions, max_regions);

  list = g_atomic_rc_box_new0 (ClipRegionList);
  list->frame = frame;
  list->n_regions = regions->len;
  list->regions = (ClipRegion *) g_array_free (regions, FALSE);
  return list;
}

gboolean
clip_region_list_may_have (GstBuffer *buffer)
{
  if (gst_buffer_get_meta (buffer, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
    return TRUE;
#ifdef HAVE_GST_ANALYTICS
  if (clip_analytics_may_have_regions (buffer))
    return TRUE;
#endif
  return FALSE;
}

float *
clip_image_batch_reserve (ClipImageBatch *batch, guint n_images, gsize image_floats)
{
  gsize needed = (gsize) n_images * image_floats;

  if (needed > batch->capacity) {
    g_free (batch->pixels);
    batch->pixels = g_new (float, needed);
    batch->capacity = needed;
  }
  batch->n_images = n_images;
  return batch->pixels;
}

void
clip_image_batch_clear (ClipImageBatch *batch)
{
  g_clear_pointer (&batch->pixels, g_free);
  g_clear_pointer (&batch->regions, clip_region_list_unref);
  batch->capacity = 0;
  batch->n_images = 0;
}

gboolean
clip_regions_is_label_field (const char *name)
{
  static const char *const not_labels[] = {
    "analysed-pts", "latency", "rescored", "timestamp", "stream-time", "running-time",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (not_labels); i++)
    if (g_str_equal (name, not_labels[i]))
      return FALSE;
  return TRUE;
}
