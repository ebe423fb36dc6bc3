/* clip-gst-test-util.c — reading the element's results, for the C tests of the element.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-gst-test-util.h"

const GValue *
clip_test_field (const GstStructure *s, const char *name, GType type)
{
  const GValue *value = gst_structure_get_value (s, name);

  if (!value)
    g_error ("field %s missing from %" GST_PTR_FORMAT, name, s);
  g_assert_cmpstr (G_VALUE_TYPE_NAME (value), ==, g_type_name (type));
  return value;
}

double *
clip_test_double_array (const GstStructure *s, const char *name, guint *n_out)
{
  const GValue *array = clip_test_field (s, name, GST_TYPE_ARRAY);
  guint n = gst_value_array_get_size (array);
  double *numbers = g_new0 (double, MAX (n, 1));

  for (guint i = 0; i < n; i++) {
    const GValue *item = gst_value_array_get_value (array, i);

    g_assert_true (G_VALUE_HOLDS_DOUBLE (item));
    numbers[i] = g_value_get_double (item);
  }
  *n_out = n;
  return numbers;
}

const GstStructure *
clip_test_buffer_result (GstBuffer *buffer)
{
  GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer, CLIP_TEST_META_NAME);

  return meta ? gst_custom_meta_get_structure (meta) : NULL;
}

void
clip_test_assert_same_fields (const GstStructure *a, const GstStructure *b)
{
  g_assert_cmpint (gst_structure_n_fields (a), ==, gst_structure_n_fields (b));
  for (int i = 0; i < gst_structure_n_fields (a); i++) {
    const char *name = gst_structure_nth_field_name (a, i);
    const GValue *other = gst_structure_get_value (b, name);

    g_assert_nonnull (other);
    g_assert_cmpint (gst_value_compare (gst_structure_get_value (a, name), other), ==,
                     GST_VALUE_EQUAL);
  }
}
