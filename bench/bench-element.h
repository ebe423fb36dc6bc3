/* bench-element.h — what the element benchmarks share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_BENCH_ELEMENT_H
#define CLIP_BENCH_ELEMENT_H

#include <glib.h>

/* TRUE when the clipclassify element can be made: found on GST_PLUGIN_PATH, or else the plugin
 * this program was built with (CLIPCLASSIFY_BUILD_PLUGIN) loaded. Otherwise says so on stderr,
 * as program, and returns FALSE. */
gboolean clip_bench_ensure_element (const char *program);

#endif /* CLIP_BENCH_ELEMENT_H */
