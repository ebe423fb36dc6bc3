/* clipjson.h — results as JSON lines (the json-location property).
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A result's GstStructure (clipresult.h) as one JSON object on one line: every field under its
 * own name, arrays as JSON arrays, strings, numbers and booleans as themselves, guint64 times as
 * integers in nanoseconds (null for GST_CLOCK_TIME_NONE), plus "element" (the element's name).
 * Written with json-glib.
 */
#ifndef CLIP_JSON_H
#define CLIP_JSON_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* The line, without its newline. */
char *clip_json_line (const GstStructure *result, const char *element_name);

typedef struct _ClipJsonWriter ClipJsonWriter;

/* Opens location for appending (created if missing); "-" is stdout. NULL with a GError in
 * G_FILE_ERROR when it cannot be opened. */
ClipJsonWriter *clip_json_writer_open (const char *location, GError **error);
/* Appends one line, written straight to the file (no buffering: a line is out when this
 * returns). FALSE with errno's error when the write fails. Thread-safe. */
gboolean clip_json_writer_write (ClipJsonWriter *writer, const GstStructure *result,
                                 const char *element_name, GError **error);
/* Closes the file (stdout stays open). */
void clip_json_writer_close (ClipJsonWriter *writer);

G_END_DECLS

#endif /* CLIP_JSON_H */
