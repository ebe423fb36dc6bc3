/* clip-gst-test-util.h — reading the element's results, for the C tests of the element.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_GST_TEST_UTIL_H
#define CLIP_GST_TEST_UTIL_H

#include <gst/gst.h>

/* The name of the custom meta that carries a frame's result. */
#define CLIP_TEST_META_NAME "GstClipClassifyMeta"

/* The value of field name of s, which must exist and hold a type. */
const GValue *clip_test_field (const GstStructure *s, const char *name, GType type);

/* The doubles of the array field name of s (each must be a double); *n_out of them. */
double *clip_test_double_array (const GstStructure *s, const char *name, guint *n_out);

/* The result attached to buffer (the structure of its CLIP_TEST_META_NAME meta), or NULL. */
const GstStructure *clip_test_buffer_result (GstBuffer *buffer);

/* a and b have the same fields with equal values. */
void clip_test_assert_same_fields (const GstStructure *a, const GstStructure *b);

#endif /* CLIP_GST_TEST_UTIL_H */
