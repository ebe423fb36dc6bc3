/* clipmeta.c — GstClipClassifyMeta: a classification result on the buffer it belongs to.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipmeta.h"

#include <gst/video/video.h>

static gboolean
copy_field (GQuark field, const GValue *value, gpointer user_data)
{
  gst_structure_id_set_value (user_data, field, value);
  return TRUE;
}

/* A result describes the picture as a whole: it stays true through copies, scaling, cropping
 * and colour conversion, so every transform copies it unchanged. */
static gboolean
gst_clip_classify_meta_transform (GstBuffer *transbuf, GstCustomMeta *meta, GstBuffer *buffer,
                                  GQuark type, gpointer data, gpointer user_data)
{
  GstCustomMeta *copy = gst_buffer_add_custom_meta (transbuf, GST_CLIP_CLASSIFY_META_NAME);

  if (!copy)
    return FALSE;
  gst_structure_foreach (gst_custom_meta_get_structure (meta), copy_field,
                         gst_custom_meta_get_structure (copy));
  return TRUE;
}

const GstMetaInfo *
gst_clip_classify_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) &info)) {
    const gchar *tags[] = { GST_META_TAG_VIDEO_STR, NULL };
    const GstMetaInfo *registered =
        gst_meta_register_custom (GST_CLIP_CLASSIFY_META_NAME, tags,
                                  gst_clip_classify_meta_transform, NULL, NULL);

    g_once_init_leave ((GstMetaInfo **) &info, (GstMetaInfo *) registered);
  }
  return info;
}

GstCustomMeta *
gst_clip_classify_meta_add (GstBuffer *buffer, const GstStructure *fields)
{
  GstCustomMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (fields != NULL, NULL);

  gst_clip_classify_meta_get_info ();
  meta = gst_buffer_add_custom_meta (buffer, GST_CLIP_CLASSIFY_META_NAME);
  if (meta)
    gst_structure_foreach (fields, copy_field, gst_custom_meta_get_structure (meta));
  return meta;
}
