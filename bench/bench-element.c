/* bench-element.c — what the element benchmarks share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench-element.h"

#include <gst/gst.h>

gboolean
clip_bench_ensure_element (const char *program)
{
  GstElementFactory *factory = gst_element_factory_find ("clipclassify");

  if (!factory) {
    /* Not on GST_PLUGIN_PATH: the plugin this program was built with. */
    GError *error = NULL;
    GstPlugin *plugin = gst_plugin_load_file (CLIPCLASSIFY_BUILD_PLUGIN, &error);

    if (!plugin) {
      g_printerr ("%s: no clipclassify element: set GST_PLUGIN_PATH to the build's gst/ "
                  "directory (%s)\n", program, error->message);
      g_error_free (error);
      return FALSE;
    }
    gst_object_unref (plugin);
    factory = gst_element_factory_find ("clipclassify");
    if (!factory)
      return FALSE;
  }
  gst_object_unref (factory);
  return TRUE;
}
