/* clipmeta.h — GstClipClassifyMeta: a classification result on the buffer it belongs to.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GstCustomMeta, so applications read it without linking anything of ours:
 *
 *   C:       GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer, "GstClipClassifyMeta");
 *            const GstStructure *s = gst_custom_meta_get_structure (meta);
 *   Python:  meta = buffer.get_custom_meta("GstClipClassifyMeta")
 *            s = meta.get_structure()
 *
 * The structure holds the fields of the `clipclassify` bus message (see clipresult.h). The meta
 * is tagged "video" only: a result describes the whole picture, so it is kept (copied as is) by
 * buffer copies and by elements that scale, convert or crop video.
 */
#ifndef GST_CLIP_META_H
#define GST_CLIP_META_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_CLIP_CLASSIFY_META_NAME "GstClipClassifyMeta"

/* Registers the meta on first use (plugin_init calls it); thread-safe. */
const GstMetaInfo *gst_clip_classify_meta_get_info (void);

/* Adds a meta holding a copy of every field of fields. buffer must be writable. */
GstCustomMeta *gst_clip_classify_meta_add (GstBuffer *buffer, const GstStructure *fields);

G_END_DECLS

#endif /* GST_CLIP_META_H */
