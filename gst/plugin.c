/* plugin.c — the clipclassify plugin: registers the element and its buffer meta.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/gst.h>

#include "clipmeta.h"
#include "gstclipclassify.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  /* Registered with the plugin, not the first element, so that applications can read the meta
   * of buffers as soon as the plugin is loaded. */
  gst_clip_classify_meta_get_info ();
  return GST_ELEMENT_REGISTER (clipclassify, plugin);
}

/* GST_PADDING_INIT fills the reserved array with one initializer, which -Wextra reports. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, clipclassify,
    "Zero-shot video classification with OpenAI CLIP on the CPU",
    plugin_init, CLIPCLASSIFY_VERSION, "LGPL", "clipclassify", CLIPCLASSIFY_ORIGIN)
