/* json-out.c — the tools' JSON output: strings, float arrays.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "json-out.h"

#include <math.h>

void
json_append_string (GString *json, const char *s)
{
  g_string_append_c (json, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;

    if (c == '"' || c == '\\')
      g_string_append_printf (json, "\\%c", c);
    else if (c == '\n')
      g_string_append (json, "\\n");
    else if (c == '\t')
      g_string_append (json, "\\t");
    else if (c < 0x20 || c == 0x7f)
      g_string_append_printf (json, "\\u%04x", c);
    else
      g_string_append_c (json, c);   /* UTF-8 passes through (validated on input) */
  }
  g_string_append_c (json, '"');
}

void
json_append_strings (GString *json, char *const *strings, int n)
{
  g_string_append_c (json, '[');
  for (int i = 0; i < n; i++) {
    if (i > 0)
      g_string_append (json, ", ");
    json_append_string (json, strings[i]);
  }
  g_string_append_c (json, ']');
}

void
json_append_float (GString *json, float v)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (isfinite (v))
    g_string_append (json, g_ascii_formatd (buffer, sizeof buffer, "%.9g", v));
  else
    g_string_append (json, "null");
}

void
json_append_floats (GString *json, const float *v, int n)
{
  g_string_append_c (json, '[');
  for (int i = 0; i < n; i++) {
    if (i > 0)
      g_string_append (json, ", ");
    json_append_float (json, v[i]);
  }
  g_string_append_c (json, ']');
}
