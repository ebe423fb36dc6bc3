/* json-out.h — the tools' JSON output: strings, float arrays.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_JSON_OUT_H
#define CLIP_JSON_OUT_H

#include <glib.h>

G_BEGIN_DECLS

/* A JSON string of s, which must be valid UTF-8 (it passes through, control characters
 * escaped). */
void json_append_string (GString *json, const char *s);
/* ["a", "b", ...] */
void json_append_strings (GString *json, char *const *strings, int n);
/* %.9g round-trips a float. JSON has no NaN/Infinity: those become null. */
void json_append_float (GString *json, float v);
/* [x, y, ...] of json_append_float */
void json_append_floats (GString *json, const float *v, int n);

G_END_DECLS

#endif /* CLIP_JSON_OUT_H */
