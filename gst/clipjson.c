/* clipjson.c — results as JSON lines (the json-location property).
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipjson.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct _ClipJsonWriter {
  GMutex lock;
  int fd;
  gboolean is_stdout;
};

static gboolean add_field (GQuark field, const GValue *value, gpointer user_data);

static JsonNode *
value_to_node (const GValue *value)
{
  JsonNode *node = json_node_alloc ();
  GType type = G_VALUE_TYPE (value);

  if (type == GST_TYPE_ARRAY || type == GST_TYPE_LIST) {
    gboolean array = type == GST_TYPE_ARRAY;
    guint n = array ? gst_value_array_get_size (value) : gst_value_list_get_size (value);
    JsonArray *items = json_array_sized_new (n);

    for (guint i = 0; i < n; i++)
      json_array_add_element (items, value_to_node (array ? gst_value_array_get_value (value, i)
                                                          : gst_value_list_get_value (value, i)));
    json_node_init_array (node, items);
    json_array_unref (items);
  } else if (type == G_TYPE_STRING) {
    json_node_init_string (node, g_value_get_string (value) ? g_value_get_string (value) : "");
  } else if (type == G_TYPE_BOOLEAN) {
    json_node_init_boolean (node, g_value_get_boolean (value));
  } else if (type == G_TYPE_DOUBLE || type == G_TYPE_FLOAT) {
    double number = type == G_TYPE_DOUBLE ? g_value_get_double (value)
                                          : (double) g_value_get_float (value);

    /* JSON has no NaN or infinities */
    if (isfinite (number))
      json_node_init_double (node, number);
    else
      json_node_init_null (node);
  } else if (type == G_TYPE_UINT64) {
    /* times in ns; GST_CLOCK_TIME_NONE (unknown) does not fit JSON's integers: null */
    guint64 number = g_value_get_uint64 (value);

    if (number == GST_CLOCK_TIME_NONE || number > (guint64) G_MAXINT64)
      json_node_init_null (node);
    else
      json_node_init_int (node, (gint64) number);
  } else if (type == G_TYPE_INT || type == G_TYPE_UINT || type == G_TYPE_INT64) {
    GValue wide = G_VALUE_INIT;

    g_value_init (&wide, G_TYPE_INT64);
    g_value_transform (value, &wide);
    json_node_init_int (node, g_value_get_int64 (&wide));
  } else if (type == GST_TYPE_STRUCTURE) {
    /* the regions of a result (clipclassify-region structures): one JSON object each, the
     * structure's name left out as the field names say what it is */
    JsonObject *object = json_object_new ();

    gst_structure_foreach (gst_value_get_structure (value), add_field, object);
    json_node_init_object (node, object);
    json_object_unref (object);
  } else {
    char *text = gst_value_serialize (value);

    json_node_init_string (node, text ? text : "");
    g_free (text);
  }
  return node;
}

static gboolean
add_field (GQuark field, const GValue *value, gpointer user_data)
{
  json_object_set_member (user_data, g_quark_to_string (field), value_to_node (value));
  return TRUE;
}

char *
clip_json_line (const GstStructure *result, const char *element_name)
{
  JsonObject *object = json_object_new ();
  JsonNode *root = json_node_alloc ();
  JsonGenerator *generator = json_generator_new ();
  char *line;

  json_object_set_string_member (object, "element", element_name ? element_name : "");
  gst_structure_foreach (result, add_field, object);
  json_node_init_object (root, object);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, FALSE);
  line = json_generator_to_data (generator, NULL);

  g_object_unref (generator);
  json_node_unref (root);
  json_object_unref (object);
  return line;
}

ClipJsonWriter *
clip_json_writer_open (const char *location, GError **error)
{
  ClipJsonWriter *writer;
  gboolean is_stdout = g_str_equal (location, "-");
  int fd = STDOUT_FILENO;

  if (!is_stdout) {
    /* O_APPEND: each line lands at the end, whoever else appends to the file */
    fd = open (location, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s",
                   g_strerror (saved));
      return NULL;
    }
  }
  writer = g_new0 (ClipJsonWriter, 1);
  g_mutex_init (&writer->lock);
  writer->fd = fd;
  writer->is_stdout = is_stdout;
  return writer;
}

gboolean
clip_json_writer_write (ClipJsonWriter *writer, const GstStructure *result,
                        const char *element_name, GError **error)
{
  char *line = clip_json_line (result, element_name);
  gsize length = strlen (line), done = 0;
  int saved = 0;

  /* the newline in the terminator's place: the line goes out in one write() where it can */
  line[length++] = '\n';
  g_mutex_lock (&writer->lock);
  /* what the application printed before comes first */
  if (writer->is_stdout)
    fflush (stdout);
  while (done < length) {
    ssize_t n = write (writer->fd, line + done, length - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      saved = n < 0 ? errno : EIO;
      break;
    }
    done += (gsize) n;
  }
  g_mutex_unlock (&writer->lock);
  g_free (line);

  if (saved) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s",
                 g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}

void
clip_json_writer_close (ClipJsonWriter *writer)
{
  if (!writer)
    return;
  if (!writer->is_stdout)
    close (writer->fd);
  g_mutex_clear (&writer->lock);
  g_free (writer);
}
