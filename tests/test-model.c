/* test-model.c — the loader: safetensors validation, config.json / preprocessor_config.json,
 * binding a CLIPModel checkpoint, prompts.
 *
 * Checkpoints come from tests/reference/make_checkpoint.py (random weights, exact HF layout),
 * run with $PYTHON. Corrupt files are either written by hand here (a header string plus data
 * bytes) or rewritten from a generated checkpoint with one thing changed. Every error class
 * checks its GError code and that the message names the file and the tensor or field.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-private.h"
#include "clip-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static char *fixture_dir;            /* removed at exit when every test passed */

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

static char *
fixture_path (const char *name)
{
  return g_build_filename (fixture_dir, name, NULL);
}

static char *
reference_script (void)
{
  const char *dir = g_getenv ("CLIP_REFERENCE_DIR");

  g_assert_nonnull (dir);
  return g_build_filename (dir, "make_checkpoint.py", NULL);
}

/* Generates (once per name) a checkpoint with make_checkpoint.py's command line. */
static const char *
checkpoint (const char *name, const char *const *options)
{
  static GHashTable *made;
  char *dir;

  if (made == NULL)
    made = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if ((dir = g_hash_table_lookup (made, name)) != NULL)
    return dir;

  dir = fixture_path (name);
  clip_test_make_checkpoint (dir, options);
  g_hash_table_insert (made, g_strdup (name), dir);
  return dir;
}

static const char *
tiny (void)
{
  return checkpoint ("tiny", (const char *[]) { "--seed", "1", NULL });
}

static void
copy_file (const char *src, const char *dst)
{
  char *contents;
  gsize len;

  g_assert_true (g_file_get_contents (src, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (dst, contents, len, NULL));
  g_free (contents);
}

/* A fresh directory holding a copy of src's files, except those in `skip`. */
static char *
copy_checkpoint (const char *src, const char *name, const char *const *skip)
{
  static const char *files[] = {
    "config.json", "model.safetensors", "vocab.json", "merges.txt",
    "preprocessor_config.json", NULL
  };
  char *dst = fixture_path (name);

  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  for (int i = 0; files[i]; i++) {
    gboolean skipped = FALSE;
    for (int j = 0; skip && skip[j]; j++)
      skipped |= strcmp (skip[j], files[i]) == 0;
    if (!skipped) {
      char *s = g_build_filename (src, files[i], NULL), *d = g_build_filename (dst, files[i], NULL);
      copy_file (s, d);
      g_free (s);
      g_free (d);
    }
  }
  return dst;
}

static void
write_text (const char *dir, const char *file, const char *text)
{
  char *path = g_build_filename (dir, file, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_free (path);
}

/* A safetensors file from a header string: 8-byte length, header, then data_len bytes whose
 * i-th byte is i & 0xff. */
static char *
write_raw (const char *name, const char *header, gsize data_len)
{
  char *path = fixture_path (name);
  gsize header_len = strlen (header);
  guint64 len_le = GUINT64_TO_LE ((guint64) header_len);
  guint8 *buf = g_malloc (8 + header_len + data_len);

  memcpy (buf, &len_le, 8);
  memcpy (buf + 8, header, header_len);
  for (gsize i = 0; i < data_len; i++)
    buf[8 + header_len + i] = (guint8) i;
  g_assert_true (g_file_set_contents (path, (char *) buf, 8 + header_len + data_len, NULL));
  g_free (buf);
  return path;
}

/* Tensors as plain records, to rewrite a generated model.safetensors with one change. */
typedef struct {
  char *name;
  char *dtype;
  int n_dims;
  int64_t shape[CLIP_SAFETENSORS_MAX_DIMS];
  GBytes *data;
} TestTensor;

static void
test_tensor_free (gpointer p)
{
  TestTensor *t = p;

  g_free (t->name);
  g_free (t->dtype);
  g_bytes_unref (t->data);
  g_free (t);
}

static GPtrArray *
read_tensors (const char *path)
{
  GError *error = NULL;
  ClipSafetensors *st = clip_safetensors_open (path, &error);
  GPtrArray *tensors = g_ptr_array_new_with_free_func (test_tensor_free);

  g_assert_no_error (error);
  for (int i = 0; i < clip_safetensors_get_n_tensors (st); i++) {
    const ClipTensorInfo *info = clip_safetensors_get_tensor (st, i);
    TestTensor *t = g_new0 (TestTensor, 1);
    t->name = g_strdup (info->name);
    t->dtype = g_strdup (info->dtype_name);
    t->n_dims = info->n_dims;
    memcpy (t->shape, info->shape, sizeof t->shape);
    t->data = g_bytes_new (info->data, info->n_bytes);
    g_ptr_array_add (tensors, t);
  }
  clip_safetensors_close (st);
  return tensors;
}

static TestTensor *
find_tensor (GPtrArray *tensors, const char *name)
{
  for (guint i = 0; i < tensors->len; i++) {
    TestTensor *t = g_ptr_array_index (tensors, i);
    if (strcmp (t->name, name) == 0)
      return t;
  }
  g_error ("no tensor %s", name);
  return NULL;
}

/* Contiguous, in array order, header padded to 8 bytes as the safetensors library does. */
static void
write_tensors (const char *path, GPtrArray *tensors)
{
  GString *header = g_string_new ("{\"__metadata__\":{\"format\":\"pt\"}");
  GByteArray *file = g_byte_array_new ();
  guint64 offset = 0, len_le;

  for (guint i = 0; i < tensors->len; i++) {
    TestTensor *t = g_ptr_array_index (tensors, i);
    gsize n = g_bytes_get_size (t->data);
    g_string_append_printf (header, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
    for (int d = 0; d < t->n_dims; d++)
      g_string_append_printf (header, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
    g_string_append_printf (header, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%"
        G_GUINT64_FORMAT "]}", offset, offset + n);
    offset += n;
  }
  g_string_append_c (header, '}');
  while (header->len % 8)
    g_string_append_c (header, ' ');
  len_le = GUINT64_TO_LE ((guint64) header->len);
  g_byte_array_append (file, (guint8 *) &len_le, 8);
  g_byte_array_append (file, (guint8 *) header->str, header->len);
  for (guint i = 0; i < tensors->len; i++) {
    TestTensor *t = g_ptr_array_index (tensors, i);
    g_byte_array_append (file, g_bytes_get_data (t->data, NULL), g_bytes_get_size (t->data));
  }
  g_assert_true (g_file_set_contents (path, (char *) file->data, file->len, NULL));
  g_byte_array_free (file, TRUE);
  g_string_free (header, TRUE);
}

static void
assert_error (const GError *error, ClipError code, const char *s1, const char *s2)
{
  g_assert_nonnull (error);
  if (!g_error_matches (error, CLIP_ERROR, code))
    g_error ("expected CLIP_ERROR code %d, got %s %d: %s", code,
        g_quark_to_string (error->domain), error->code, error->message);
  if (s1 && !strstr (error->message, s1))
    g_error ("message does not name '%s': %s", s1, error->message);
  if (s2 && !strstr (error->message, s2))
    g_error ("message does not name '%s': %s", s2, error->message);
}

static void
assert_open_fails (const char *header, gsize data_len, ClipError code, const char *tensor)
{
  char *path = write_raw ("raw.safetensors", header, data_len);
  GError *error = NULL;

  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, code, path, tensor);
  g_test_message ("%s", error->message);
  g_error_free (error);
  g_free (path);
}

static ClipModel *
load_ok (const char *dir)
{
  GError *error = NULL;
  ClipModel *model = clip_model_load (dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (model);
  return model;
}

static void
assert_load_fails (const char *dir, ClipError code, const char *s1, const char *s2)
{
  GError *error = NULL;

  g_assert_null (clip_model_load (dir, &error));
  assert_error (error, code, s1, s2);
  g_test_message ("%s", error->message);
  g_error_free (error);
}

/* ------------------------------------------------------------------------------------------ */
/* safetensors */

#define T_F32_2x3 "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"

static void
test_safetensors_valid (void)
{
  /* Header of 120 bytes is not a multiple of 8 on purpose: nothing may assume alignment. */
  const char *header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
      T_F32_2x3 ","
      "\"scalar\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[32,34]},"
      "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[34,50]},"
      "\"empty\":{\"dtype\":\"U8\",\"shape\":[3,0],\"data_offsets\":[50,50]},"
      "\"nib\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[50,52]}}";
  char *path = write_raw ("valid.safetensors", header, 52);
  GError *error = NULL;
  ClipSafetensors *st = clip_safetensors_open (path, &error);
  const ClipTensorInfo *a, *f16, *scalar, *ids, *empty, *nib;
  const guint8 *data;

  g_assert_no_error (error);
  g_assert_cmpint (clip_safetensors_get_n_tensors (st), ==, 6);
  g_assert_cmpstr (clip_safetensors_get_path (st), ==, path);
  g_assert_cmpuint (clip_safetensors_get_file_size (st), ==, 8 + strlen (header) + 52);
  g_assert_null (clip_safetensors_find (st, "__metadata__"));
  g_assert_null (clip_safetensors_find (st, "b"));

  a = clip_safetensors_find (st, "a");
  g_assert_nonnull (a);
  g_assert_cmpstr (a->name, ==, "a");
  g_assert_cmpint (a->dtype, ==, CLIP_DTYPE_F32);
  g_assert_cmpstr (a->dtype_name, ==, "F32");
  g_assert_cmpint (a->n_dims, ==, 2);
  g_assert_cmpint (a->shape[0], ==, 2);
  g_assert_cmpint (a->shape[1], ==, 3);
  g_assert_cmpint (a->n_elements, ==, 6);
  g_assert_cmpuint (a->n_bytes, ==, 24);
  /* The data section starts right after the header; write_raw's byte i is i & 0xff. */
  data = a->data;
  for (int i = 0; i < 24; i++)
    g_assert_cmpint (data[i], ==, i);

  f16 = clip_safetensors_find (st, "f16");
  g_assert_cmpint (f16->dtype, ==, CLIP_DTYPE_F16);
  g_assert_true ((const guint8 *) f16->data == data + 24);
  scalar = clip_safetensors_find (st, "scalar");
  g_assert_cmpint (scalar->dtype, ==, CLIP_DTYPE_BF16);
  g_assert_cmpint (scalar->n_dims, ==, 0);
  g_assert_cmpint (scalar->n_elements, ==, 1);
  ids = clip_safetensors_find (st, "ids");
  g_assert_cmpint (ids->dtype, ==, CLIP_DTYPE_I64);
  g_assert_cmpint (ids->n_elements, ==, 2);
  empty = clip_safetensors_find (st, "empty");
  g_assert_cmpint (empty->dtype, ==, CLIP_DTYPE_OTHER);
  g_assert_cmpstr (empty->dtype_name, ==, "U8");
  g_assert_cmpint (empty->n_elements, ==, 0);
  g_assert_cmpuint (empty->n_bytes, ==, 0);
  nib = clip_safetensors_find (st, "nib");
  g_assert_cmpint (nib->dtype, ==, CLIP_DTYPE_OTHER);
  g_assert_cmpuint (nib->n_bytes, ==, 2);   /* 3 x 4 bits, rounded up to bytes */

  for (int i = 0; i < 6; i++)
    g_assert_nonnull (clip_safetensors_get_tensor (st, i)->name);
  clip_safetensors_close (st);
  g_free (path);
}

static void
test_safetensors_open_errors (void)
{
  GError *error = NULL;
  char *path = fixture_path ("absent.safetensors");

  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_NOT_FOUND, path, NULL);
  g_clear_error (&error);
  g_free (path);

  /* A directory is there but cannot be read as a file. */
  g_assert_null (clip_safetensors_open (fixture_dir, &error));
  assert_error (error, CLIP_ERROR_IO, fixture_dir, NULL);
  g_clear_error (&error);

  path = fixture_path ("short.safetensors");
  g_assert_true (g_file_set_contents (path, "abcd", 4, NULL));
  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_CORRUPT, path, NULL);
  g_clear_error (&error);
  g_free (path);
}

static void
test_safetensors_header_past_end (void)
{
  char *path = fixture_path ("past-end.safetensors");
  guint8 buf[8 + 16] = { 0 };
  guint64 len = GUINT64_TO_LE (17);   /* one more than the 16 bytes after it */
  GError *error = NULL;

  memcpy (buf, &len, 8);
  memcpy (buf + 8, "{}              ", 16);
  g_assert_true (g_file_set_contents (path, (char *) buf, sizeof buf, NULL));
  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_CORRUPT, path, "header length 17");
  g_clear_error (&error);

  /* A huge length (a text file read as safetensors) must not overflow the check. */
  g_assert_true (g_file_set_contents (path, "{\"a\": 1, \"b\": 2}", -1, NULL));
  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_CORRUPT, path, "past the end");
  g_clear_error (&error);
  g_free (path);
}

static void
test_safetensors_bad_json (void)
{
  assert_open_fails ("{\"a\":{\"dtype\":\"F32\",", 0, CLIP_ERROR_CORRUPT, "not valid JSON");
  assert_open_fails ("[1, 2, 3]", 0, CLIP_ERROR_CORRUPT, "not a JSON object");
  assert_open_fails ("\"a\"", 0, CLIP_ERROR_CORRUPT, "not a JSON object");
  assert_open_fails ("{\"__metadata__\":[]}", 0, CLIP_ERROR_CORRUPT, "__metadata__");
  /* An empty, valid header is a valid (empty) file. */
  {
    char *path = write_raw ("empty.safetensors", "{}      ", 0);
    GError *error = NULL;
    ClipSafetensors *st = clip_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (clip_safetensors_get_n_tensors (st), ==, 0);
    clip_safetensors_close (st);
    g_free (path);
  }
}

/* '[' x depth, then ']' x depth, inside a __metadata__ member (a valid header otherwise). */
static char *
nested_metadata (int depth)
{
  GString *h = g_string_new ("{\"__metadata__\":{\"a\":");

  for (int i = 0; i < depth; i++)
    g_string_append_c (h, '[');
  for (int i = 0; i < depth; i++)
    g_string_append_c (h, ']');
  g_string_append (h, "}}");
  return g_string_free (h, FALSE);
}

/* json-glib's parser recurses once per level: a 2 MB header of '[' used to overflow the stack.
 * Nesting is refused before parsing, at 64 levels (the root object and __metadata__ count);
 * brackets inside strings are not nesting. */
static void
test_safetensors_deep_nesting (void)
{
  char *header, *path;
  GError *error = NULL;
  ClipSafetensors *st;

  header = nested_metadata (1000000);
  assert_open_fails (header, 0, CLIP_ERROR_CORRUPT, "nested deeper than 64");
  g_free (header);

  header = nested_metadata (63);      /* 65 levels */
  assert_open_fails (header, 0, CLIP_ERROR_CORRUPT, "nested deeper than 64");
  g_free (header);

  header = nested_metadata (62);      /* 64 levels: allowed */
  path = write_raw ("nested-64.safetensors", header, 0);
  st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (clip_safetensors_get_n_tensors (st), ==, 0);
  clip_safetensors_close (st);
  g_free (path);
  g_free (header);

  /* brackets (and an escaped quote before them) in strings do not nest */
  {
    GString *h = g_string_new ("{\"__metadata__\":{\"k\\\"[[\":\"\\\"");
    for (int i = 0; i < 200000; i++)
      g_string_append (h, "[{");
    g_string_append (h, "\"}," T_F32_2x3 "}");
    path = write_raw ("nested-strings.safetensors", h->str, 24);
    st = clip_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (clip_safetensors_get_n_tensors (st), ==, 1);
    g_assert_nonnull (clip_safetensors_find (st, "a"));
    clip_safetensors_close (st);
    g_free (path);
    g_string_free (h, TRUE);
  }
}

/* The header is capped far below the format's 100 MB: 8 MiB, when real checkpoints need well
 * under 1 MB. */
static void
test_safetensors_header_cap (void)
{
  const gsize big = 9 * 1024 * 1024, fine = 1024 * 1024;
  char *header = g_malloc (big + 1), *path;
  GError *error = NULL;
  ClipSafetensors *st;

  /* a valid header, padded with spaces as the safetensors library pads */
  memset (header, ' ', big);
  memcpy (header, "{" T_F32_2x3 "}", strlen ("{" T_F32_2x3 "}"));
  header[big] = '\0';
  assert_open_fails (header, 24, CLIP_ERROR_CORRUPT, "exceeds");

  header[fine] = '\0';
  path = write_raw ("header-1mb.safetensors", header, 24);
  st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (clip_safetensors_find (st, "a"));
  clip_safetensors_close (st);
  g_free (path);
  g_free (header);
}

static void
test_safetensors_bad_entries (void)
{
  /* Each names the tensor ("w") whose entry is wrong. */
  static const char *headers[] = {
    "{\"w\":[1,2]}",
    "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"begin\":0}}}",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
      "\"data_offsets\":[0,8]}}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (headers); i++)
    assert_open_fails (headers[i], 16, CLIP_ERROR_CORRUPT, "'w'");

  assert_open_fails ("{\"w\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
      CLIP_ERROR_CORRUPT, "'F17'");
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
      "\"data_offsets\":[0,4]}}", 16, CLIP_ERROR_UNSUPPORTED, "'w'");
}

static void
test_safetensors_offsets (void)
{
  /* past the data section (16 bytes) */
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[17,17]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  /* end before begin */
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  /* byte length disagrees with dtype x shape */
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  assert_open_fails ("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  assert_open_fails ("{\"w\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  /* other dtypes are sized too */
  {
    char *path = write_raw ("f64.safetensors",
        "{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
    GError *error = NULL;
    ClipSafetensors *st = clip_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (clip_safetensors_find (st, "w")->dtype, ==, CLIP_DTYPE_OTHER);
    clip_safetensors_close (st);
    g_free (path);
  }
}

static void
test_safetensors_overlap (void)
{
  GError *error = NULL;
  char *path = write_raw ("overlap.safetensors",
      "{\"first\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
      "\"second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);

  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_CORRUPT, "'first'", "'second'");
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);
  g_free (path);

  /* same range twice */
  assert_open_fails ("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, CLIP_ERROR_CORRUPT,
      "'w'");
  /* one inside another, listed in the other order */
  assert_open_fails ("{\"w\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[4,6]},"
      "\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");

  /* Adjacent tensors and empty ones touch nothing. */
  path = write_raw ("adjacent.safetensors",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
      "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
  clip_safetensors_close (clip_safetensors_open (path, &error));
  g_assert_no_error (error);
  g_free (path);
}

static void
test_safetensors_duplicates (void)
{
  /* JsonParser would keep only the second "w"; the first one's data would go unnoticed. */
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, CLIP_ERROR_CORRUPT,
      "'w'");
  /* The same name spelled with an escape is the same name. */
  assert_open_fails ("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"\\u0077\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
      CLIP_ERROR_CORRUPT, "'w'");
  /* A field given twice inside one entry. */
  assert_open_fails ("{\"w\":{\"dtype\":\"F16\",\"dtype\":\"F32\",\"shape\":[2],"
      "\"data_offsets\":[0,8]}}", 16, CLIP_ERROR_CORRUPT, "'w'");
  /* Equal names in different objects are not duplicates. */
  {
    char *path = write_raw ("nodup.safetensors",
        "{\"__metadata__\":{\"dtype\":\"x\"},"
        "\"dtype\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    GError *error = NULL;
    clip_safetensors_close (clip_safetensors_open (path, &error));
    g_assert_no_error (error);
    g_free (path);
  }
}

static void
test_safetensors_truncated (void)
{
  char *src = g_build_filename (tiny (), "model.safetensors", NULL);
  char *path = fixture_path ("truncated.safetensors");
  GPtrArray *tensors = read_tensors (src);
  const char *last_name = NULL, *last_end = NULL;
  gsize len;
  char *contents;
  GError *error = NULL;
  ClipSafetensors *st;

  /* The tensor whose data ends last is the one cut off. */
  st = clip_safetensors_open (src, &error);
  g_assert_no_error (error);
  for (int i = 0; i < clip_safetensors_get_n_tensors (st); i++) {
    const ClipTensorInfo *t = clip_safetensors_get_tensor (st, i);
    const char *end = (const char *) t->data + t->n_bytes;
    if (last_name == NULL || end > last_end) {
      last_name = t->name;
      last_end = end;
    }
  }
  last_name = g_strdup (last_name);
  clip_safetensors_close (st);

  g_assert_true (g_file_get_contents (src, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (path, contents, len - 3, NULL));
  g_assert_null (clip_safetensors_open (path, &error));
  assert_error (error, CLIP_ERROR_CORRUPT, path, last_name);
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);

  g_free ((char *) last_name);
  g_free (contents);
  g_ptr_array_unref (tensors);
  g_free (path);
  g_free (src);
}

/* f16/bf16 -> f32 against numpy: every one of the 65536 bit patterns of each. */
static void
test_safetensors_conversion (void)
{
  char *path = fixture_path ("patterns.safetensors");
  char *script = reference_script ();
  GString *code = g_string_new (
      "import sys, os, numpy as np\n"
      "sys.path.insert(0, os.path.dirname(r'''SCRIPT'''))\n"
      "from make_checkpoint import write_safetensors\n"
      "bits = np.arange(65536, dtype=np.uint16)\n"
      "h = bits.view(np.float16)\n"
      "bf = (bits.astype(np.uint32) << 16).view(np.float32)\n"
      "write_safetensors(r'''OUT''', [\n"
      "  ('f16', 'F16', (65536,), h), ('f16_as_f32', 'F32', (65536,), h.astype(np.float32)),\n"
      "  ('bf16', 'BF16', (256, 256), bits), ('bf16_as_f32', 'F32', (256, 256), bf)])\n");
  GError *error = NULL;
  ClipSafetensors *st;
  float *out = g_new (float, 65536);
  const char *pairs[][2] = { { "f16", "f16_as_f32" }, { "bf16", "bf16_as_f32" } };

  g_string_replace (code, "SCRIPT", script, 0);
  g_string_replace (code, "OUT", path, 0);
  clip_test_run_python ((const char *[]) { "-c", code->str, NULL });

  st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);
  for (int p = 0; p < 2; p++) {
    const ClipTensorInfo *src = clip_safetensors_find (st, pairs[p][0]);
    const ClipTensorInfo *expected = clip_safetensors_find (st, pairs[p][1]);
    const guint32 *want = expected->data;
    g_assert_true (clip_tensor_to_f32 (src, out));
    for (int i = 0; i < 65536; i++) {
      guint32 got;
      memcpy (&got, &out[i], 4);
      if (got != want[i])
        g_error ("%s pattern 0x%04x: got 0x%08x, numpy 0x%08x", pairs[p][0], i, got, want[i]);
    }
  }
  /* F32 is a copy; integers are refused. */
  g_assert_true (clip_tensor_to_f32 (clip_safetensors_find (st, "f16_as_f32"), out));
  g_assert_cmpmem (out, 65536 * 4, clip_safetensors_find (st, "f16_as_f32")->data, 65536 * 4);

  clip_safetensors_close (st);
  g_free (out);
  g_string_free (code, TRUE);
  g_free (script);
  g_free (path);
}

/* ------------------------------------------------------------------------------------------ */
/* config.json */

static char *
config_file (const char *name, const char *json)
{
  char *path = fixture_path (name);

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
  return path;
}

static void
assert_config_fails (const char *json, ClipError code, const char *field)
{
  char *path = config_file ("bad-config.json", json);
  GError *error = NULL;
  ClipConfig config;

  g_assert_false (clip_config_load (path, &config, &error));
  assert_error (error, code, path, field);
  g_test_message ("%s", error->message);
  g_error_free (error);
  g_free (path);
}

static void
test_config_defaults (void)
{
  /* transformers' CLIPConfig() with no arguments: ViT-B/32 shapes. */
  char *path = config_file ("empty-config.json", "{}");
  ClipConfig c;
  GError *error = NULL;

  g_assert_true (clip_config_load (path, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.projection_dim, ==, 512);
  g_assert_cmpint (c.text.hidden_size, ==, 512);
  g_assert_cmpint (c.text.intermediate_size, ==, 2048);
  g_assert_cmpint (c.text.num_hidden_layers, ==, 12);
  g_assert_cmpint (c.text.num_attention_heads, ==, 8);
  g_assert_cmpint (c.text.max_position_embeddings, ==, 77);
  g_assert_cmpint (c.text.vocab_size, ==, 49408);
  g_assert_cmpint (c.text.eos_token_id, ==, 49407);
  g_assert_cmpint (c.text.hidden_act, ==, CLIP_ACT_QUICK_GELU);
  g_assert_cmpfloat (c.text.layer_norm_eps, ==, 1e-5f);
  g_assert_cmpint (c.vision.hidden_size, ==, 768);
  g_assert_cmpint (c.vision.intermediate_size, ==, 3072);
  g_assert_cmpint (c.vision.num_hidden_layers, ==, 12);
  g_assert_cmpint (c.vision.num_attention_heads, ==, 12);
  g_assert_cmpint (c.vision.image_size, ==, 224);
  g_assert_cmpint (c.vision.patch_size, ==, 32);
  g_assert_cmpint (c.vision.num_channels, ==, 3);
  g_assert_cmpint (c.vision.hidden_act, ==, CLIP_ACT_QUICK_GELU);
  g_assert_cmpfloat (c.vision.layer_norm_eps, ==, 1e-5f);
  g_free (path);

  /* Absent fields of a partial sub-config keep their defaults; null counts as absent. */
  path = config_file ("partial-config.json",
      "{\"projection_dim\": 16, \"text_config\": {\"hidden_size\": 96, \"eos_token_id\": 2,"
      " \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-6, \"vocab_size\": null},"
      " \"vision_config\": {\"patch_size\": 16, \"image_size\": 224.0}}");
  g_assert_true (clip_config_load (path, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.projection_dim, ==, 16);
  g_assert_cmpint (c.text.hidden_size, ==, 96);
  g_assert_cmpint (c.text.num_attention_heads, ==, 8);
  g_assert_cmpint (c.text.vocab_size, ==, 49408);
  g_assert_cmpint (c.text.eos_token_id, ==, 2);
  g_assert_cmpint (c.text.hidden_act, ==, CLIP_ACT_GELU);
  g_assert_cmpfloat (c.text.layer_norm_eps, ==, 1e-6f);
  g_assert_cmpint (c.vision.patch_size, ==, 16);
  g_assert_cmpint (c.vision.image_size, ==, 224);
  g_assert_cmpint (c.vision.hidden_size, ==, 768);
  g_free (path);
}

/* transformers < 4.27 wrote text_config_dict next to text_config; CLIPConfig rebuilds the
 * sub-config from the _dict (with defaults), and that wins. */
static void
test_config_legacy_dict (void)
{
  char *path = config_file ("legacy-config.json",
      "{\"text_config\": {\"hidden_size\": 64, \"num_attention_heads\": 4, \"eos_token_id\": 2},"
      " \"text_config_dict\": {\"hidden_size\": 768, \"num_attention_heads\": 12},"
      " \"vision_config\": {\"patch_size\": 14}, \"vision_config_dict\": null}");
  ClipConfig c;
  GError *error = NULL;

  g_assert_true (clip_config_load (path, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.text.hidden_size, ==, 768);
  g_assert_cmpint (c.text.num_attention_heads, ==, 12);
  g_assert_cmpint (c.text.eos_token_id, ==, 49407);
  g_assert_cmpint (c.vision.patch_size, ==, 14);
  g_free (path);
}

static void
test_config_errors (void)
{
  char *path = fixture_path ("no-config.json");
  GError *error = NULL;
  ClipConfig c;

  g_assert_false (clip_config_load (path, &c, &error));
  assert_error (error, CLIP_ERROR_NOT_FOUND, path, NULL);
  g_clear_error (&error);
  g_free (path);

  assert_config_fails ("{\"text_config\": ", CLIP_ERROR_CORRUPT, "JSON");
  assert_config_fails ("[]", CLIP_ERROR_CORRUPT, "object");
  assert_config_fails ("{\"text_config\": 3}", CLIP_ERROR_CORRUPT, "text_config");
  assert_config_fails ("{\"text_config\": {\"hidden_act\": \"gelu_new\"}}",
      CLIP_ERROR_UNSUPPORTED, "\"gelu_new\"");
  assert_config_fails ("{\"vision_config\": {\"hidden_act\": 1}}", CLIP_ERROR_CORRUPT,
      "vision_config.hidden_act");
  assert_config_fails ("{\"text_config\": {\"hidden_size\": \"512\"}}", CLIP_ERROR_CORRUPT,
      "text_config.hidden_size");
  assert_config_fails ("{\"text_config\": {\"hidden_size\": 512.5}}", CLIP_ERROR_CORRUPT,
      "text_config.hidden_size");
  assert_config_fails ("{\"text_config\": {\"num_hidden_layers\": 0}}", CLIP_ERROR_CORRUPT,
      "text_config.num_hidden_layers");
  assert_config_fails ("{\"vision_config\": {\"intermediate_size\": -3}}", CLIP_ERROR_CORRUPT,
      "vision_config.intermediate_size");
  assert_config_fails ("{\"text_config\": {\"hidden_size\": 100, \"num_attention_heads\": 8}}",
      CLIP_ERROR_CORRUPT, "num_attention_heads");
  assert_config_fails ("{\"vision_config\": {\"image_size\": 30, \"patch_size\": 31}}",
      CLIP_ERROR_CORRUPT, "patch_size");
  assert_config_fails ("{\"vision_config\": {\"num_channels\": 1}}", CLIP_ERROR_UNSUPPORTED,
      "num_channels");
  assert_config_fails ("{\"text_config\": {\"eos_token_id\": 49408}}", CLIP_ERROR_CORRUPT,
      "eos_token_id");
  assert_config_fails ("{\"text_config\": {\"layer_norm_eps\": 0}}", CLIP_ERROR_CORRUPT,
      "layer_norm_eps");
  assert_config_fails ("{\"projection_dim\": 0}", CLIP_ERROR_CORRUPT, "projection_dim");
}

static void
assert_config_loads (const char *json)
{
  char *path = config_file ("ok-config.json", json);
  GError *error = NULL;
  ClipConfig config;

  if (!clip_config_load (path, &config, &error))
    g_error ("%s should load: %s", json, error->message);
  g_free (path);
}

/* Every size implied by config.json is bounded, generously (far beyond ViT-L/14-336's 577 tokens,
 * 24 layers, hidden 1024, intermediate 4096), and refused at load naming the file and field:
 * at most 4096 tokens per image, 128 layers, hidden size 8192, intermediate size 65536,
 * 4096 text positions, 2^20 tokens in the vocabulary, projection_dim 8192. */
static void
test_config_limits (void)
{
  /* issue 9: 46,657 tokens per image once overflowed the encoder's workspace arithmetic */
  assert_config_fails ("{\"vision_config\": {\"hidden_size\": 1, \"num_attention_heads\": 1,"
      " \"intermediate_size\": 1, \"patch_size\": 1, \"image_size\": 216}}",
      CLIP_ERROR_UNSUPPORTED, "46657");
  /* 64 x 64 patches and the class token: 4097 */
  assert_config_fails ("{\"vision_config\": {\"patch_size\": 14, \"image_size\": 896}}",
      CLIP_ERROR_UNSUPPORTED, "vision_config.image_size");
  assert_config_loads ("{\"vision_config\": {\"patch_size\": 14, \"image_size\": 882}}");
  assert_config_fails ("{\"vision_config\": {\"patch_size\": 4097, \"image_size\": 4097}}",
      CLIP_ERROR_UNSUPPORTED, "vision_config.image_size");

  assert_config_fails ("{\"vision_config\": {\"num_hidden_layers\": 2147483647}}",
      CLIP_ERROR_UNSUPPORTED, "vision_config.num_hidden_layers");
  assert_config_fails ("{\"text_config\": {\"num_hidden_layers\": 1000000}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.num_hidden_layers");
  assert_config_fails ("{\"text_config\": {\"num_hidden_layers\": 129}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.num_hidden_layers");
  assert_config_loads ("{\"text_config\": {\"num_hidden_layers\": 128},"
      " \"vision_config\": {\"num_hidden_layers\": 128}}");

  assert_config_fails ("{\"text_config\": {\"hidden_size\": 8200, \"num_attention_heads\": 8}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.hidden_size");
  assert_config_fails ("{\"vision_config\": {\"hidden_size\": 2147483647,"
      " \"num_attention_heads\": 1}}", CLIP_ERROR_UNSUPPORTED, "vision_config.hidden_size");
  assert_config_loads ("{\"text_config\": {\"hidden_size\": 8192, \"num_attention_heads\": 64}}");
  assert_config_fails ("{\"text_config\": {\"num_attention_heads\": 2147483647}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.num_attention_heads");

  assert_config_fails ("{\"vision_config\": {\"intermediate_size\": 65537}}",
      CLIP_ERROR_UNSUPPORTED, "vision_config.intermediate_size");
  assert_config_loads ("{\"vision_config\": {\"intermediate_size\": 65536}}");

  assert_config_fails ("{\"text_config\": {\"max_position_embeddings\": 4097}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.max_position_embeddings");
  assert_config_loads ("{\"text_config\": {\"max_position_embeddings\": 4096}}");
  assert_config_fails ("{\"text_config\": {\"vocab_size\": 1048577}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.vocab_size");
  assert_config_loads ("{\"text_config\": {\"vocab_size\": 1048576}}");
  assert_config_fails ("{\"projection_dim\": 8193}", CLIP_ERROR_UNSUPPORTED, "projection_dim");
  assert_config_loads ("{\"projection_dim\": 8192}");

  /* the legacy _dict form is bounded the same way */
  assert_config_fails ("{\"text_config_dict\": {\"num_hidden_layers\": 1000000}}",
      CLIP_ERROR_UNSUPPORTED, "text_config_dict.num_hidden_layers");
}

/* {"text_config": {"x": [[[...]]]}}: json-glib's recursive parser used to overflow the stack. */
static char *
nested_config (const char *member, int depth)
{
  GString *h = g_string_new (NULL);

  g_string_append_printf (h, "{\"%s\": {\"x\": ", member);
  for (int i = 0; i < depth; i++)
    g_string_append_c (h, '[');
  for (int i = 0; i < depth; i++)
    g_string_append_c (h, ']');
  g_string_append (h, "}}");
  return g_string_free (h, FALSE);
}

static void
test_config_deep_nesting (void)
{
  char *json = nested_config ("text_config", 1000000);
  char *path;
  ClipConfig c;
  GError *error = NULL;

  assert_config_fails (json, CLIP_ERROR_CORRUPT, "nested deeper than 64");
  g_free (json);
  json = nested_config ("text_config", 63);          /* 65 levels */
  assert_config_fails (json, CLIP_ERROR_CORRUPT, "nested deeper than 64");
  g_free (json);

  /* 64 levels load, and brackets in strings do not count */
  json = nested_config ("text_config", 62);
  path = config_file ("nested-64-config.json", json);
  g_assert_true (clip_config_load (path, &c, &error));
  g_assert_no_error (error);
  g_free (path);
  g_free (json);
  path = config_file ("bracket-string-config.json",
      "{\"architectures\": [\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"],"
      " \"projection_dim\": 16}");
  g_assert_true (clip_config_load (path, &c, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.projection_dim, ==, 16);
  g_free (path);

  /* a config file far larger than any real one is refused without being parsed */
  {
    gsize size = 17 * 1024 * 1024;
    char *big = g_malloc (size + 1);
    memset (big, ' ', size);
    memcpy (big, "{}", 2);
    big[size] = '\0';
    assert_config_fails (big, CLIP_ERROR_CORRUPT, "bytes");
    g_free (big);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* preprocessor_config.json */

static void
assert_openai_preprocess (const ClipPreprocessConfig *p, int size)
{
  /* CLIPImageProcessor's OpenAI constants. */
  static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

  g_assert_true (p->do_resize);
  g_assert_cmpint (p->shortest_edge, ==, size);
  g_assert_true (p->do_center_crop);
  g_assert_cmpint (p->crop_height, ==, size);
  g_assert_cmpint (p->crop_width, ==, size);
  g_assert_true (p->do_rescale);
  g_assert_cmpfloat_with_epsilon (p->rescale_factor, 1.0 / 255.0, 1e-15);
  g_assert_true (p->do_normalize);
  for (int c = 0; c < 3; c++) {
    g_assert_cmpfloat (p->image_mean[c], ==, mean[c]);
    g_assert_cmpfloat (p->image_std[c], ==, std[c]);
  }
}

static void
test_preprocess_forms (void)
{
  const char *modern = checkpoint ("pre-modern", (const char *[]) { "--image-size", "224",
      "--patch-size", "32", NULL });
  const char *legacy = checkpoint ("pre-legacy", (const char *[]) { "--image-size", "224",
      "--patch-size", "32", "--legacy-preprocessor", NULL });
  ClipPreprocessConfig p;
  GError *error = NULL;
  char *path;

  /* {"shortest_edge"} / {"height", "width"} dicts */
  path = g_build_filename (modern, "preprocessor_config.json", NULL);
  g_assert_true (clip_preprocess_config_load (path, &p, &error));
  g_assert_no_error (error);
  assert_openai_preprocess (&p, 224);
  g_free (path);

  /* plain integers, no do_rescale/rescale_factor (CLIPFeatureExtractor) */
  path = g_build_filename (legacy, "preprocessor_config.json", NULL);
  g_assert_true (clip_preprocess_config_load (path, &p, &error));
  g_assert_no_error (error);
  assert_openai_preprocess (&p, 224);
  g_free (path);

  /* absent: CLIPImageProcessor() */
  path = fixture_path ("no-preprocessor_config.json");
  g_assert_true (clip_preprocess_config_load (path, &p, &error));
  g_assert_no_error (error);
  assert_openai_preprocess (&p, 224);
  g_free (path);

  path = config_file ("pre-custom.json",
      "{\"size\": {\"shortest_edge\": 40}, \"crop_size\": {\"height\": 30, \"width\": 20},"
      " \"do_resize\": false, \"do_normalize\": false, \"image_mean\": 0.5,"
      " \"image_std\": [1, 2, 3], \"rescale_factor\": 0.5, \"do_rescale\": false,"
      " \"do_center_crop\": false}");
  g_assert_true (clip_preprocess_config_load (path, &p, &error));
  g_assert_no_error (error);
  g_assert_false (p.do_resize);
  g_assert_cmpint (p.shortest_edge, ==, 40);
  g_assert_false (p.do_center_crop);
  g_assert_cmpint (p.crop_height, ==, 30);
  g_assert_cmpint (p.crop_width, ==, 20);
  g_assert_false (p.do_rescale);
  g_assert_cmpfloat (p.rescale_factor, ==, 0.5);
  g_assert_false (p.do_normalize);
  for (int c = 0; c < 3; c++) {
    g_assert_cmpfloat (p.image_mean[c], ==, 0.5f);
    g_assert_cmpfloat (p.image_std[c], ==, (float) (c + 1));
  }
  g_free (path);
}

static void
assert_preprocess_fails (const char *json, ClipError code, const char *field)
{
  char *path = config_file ("bad-preprocessor_config.json", json);
  ClipPreprocessConfig p;
  GError *error = NULL;

  g_assert_false (clip_preprocess_config_load (path, &p, &error));
  assert_error (error, code, path, field);
  g_test_message ("%s", error->message);
  g_error_free (error);
  g_free (path);
}

static void
test_preprocess_errors (void)
{
  assert_preprocess_fails ("{\"size\": ", CLIP_ERROR_CORRUPT, "JSON");
  assert_preprocess_fails ("{\"size\": {\"height\": 224, \"width\": 224}}",
      CLIP_ERROR_UNSUPPORTED, "size");
  assert_preprocess_fails ("{\"size\": {\"longest_edge\": 224}}", CLIP_ERROR_CORRUPT, "size");
  assert_preprocess_fails ("{\"size\": \"224\"}", CLIP_ERROR_CORRUPT, "size");
  assert_preprocess_fails ("{\"size\": 0}", CLIP_ERROR_CORRUPT, "size");
  assert_preprocess_fails ("{\"crop_size\": {\"height\": 224}}", CLIP_ERROR_CORRUPT,
      "crop_size.width");
  assert_preprocess_fails ("{\"image_mean\": [0.5, 0.5]}", CLIP_ERROR_CORRUPT, "image_mean");
  assert_preprocess_fails ("{\"image_std\": [0.5, 0, 0.5]}", CLIP_ERROR_CORRUPT, "image_std");
  assert_preprocess_fails ("{\"do_resize\": 1}", CLIP_ERROR_CORRUPT, "do_resize");
  assert_preprocess_fails ("{\"resample\": 2}", CLIP_ERROR_UNSUPPORTED, "resample");
  assert_preprocess_fails ("{\"rescale_factor\": -1}", CLIP_ERROR_CORRUPT, "rescale_factor");

  /* nesting is refused before json-glib's recursive parser sees it */
  {
    char *json = nested_config ("size", 1000000);
    assert_preprocess_fails (json, CLIP_ERROR_CORRUPT, "nested deeper than 64");
    g_free (json);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Model */

/* Every weight of a ClipModel with the HF name it must hold, written out here independently of
 * model.c's table: an f32 pointer, or rows of a packed linear (times scale: q's head_dim^-0.5). */
typedef struct {
  char *name;
  const float *ptr;
  const ClipLinear *linear;
  int row0;
  float scale;
  gboolean bias;
} Binding;

static void
add_binding (GArray *b, const float *ptr, const char *fmt, ...)
{
  Binding x = { 0 };
  va_list args;

  va_start (args, fmt);
  x.name = g_strdup_vprintf (fmt, args);
  va_end (args);
  x.ptr = ptr;
  g_array_append_val (b, x);
}

static void
add_packed (GArray *b, const ClipLinear *linear, int row0, float scale, gboolean bias,
            const char *fmt, ...)
{
  Binding x = { 0 };
  va_list args;

  va_start (args, fmt);
  x.name = g_strdup_vprintf (fmt, args);
  va_end (args);
  x.linear = linear;
  x.row0 = row0;
  x.scale = scale;
  x.bias = bias;
  g_array_append_val (b, x);
}

/* Element (n, k) of a packed weight, read by the layouts gemm.h documents. */
static float
packed_element (const ClipLinear *w, int n, int k)
{
  int nr = w->isa == CLIP_ISA_AVX512 ? 32 : 16;
  if (w->isa == CLIP_ISA_BLAS)
    return ((const float *) w->panels)[(size_t) n * w->n_in + k];
  if (w->precision == CLIP_PRECISION_BF16) {
    size_t panel = (size_t) (n / nr) * ((w->n_in + 1) / 2) * nr * 2;
    uint16_t h = ((const uint16_t *) w->panels)[panel + ((size_t) (k / 2) * nr + n % nr) * 2 + k % 2];
    uint32_t bits = (uint32_t) h << 16;
    float f;
    memcpy (&f, &bits, 4);
    return f;
  }
  size_t panel = (size_t) (n / nr) * w->n_in * nr;
  return ((const float *) w->panels)[panel + (size_t) k * nr + n % nr];
}

/* The binding's values as the model holds them, n floats into out. */
static void
bound_values (const Binding *x, float *out, size_t n)
{
  if (x->ptr) {
    memcpy (out, x->ptr, n * sizeof (float));
    return;
  }
  if (x->bias) {
    for (size_t i = 0; i < n; i++)
      out[i] = x->linear->bias[x->row0 + i];
    return;
  }
  int k = x->linear->n_in;
  for (size_t i = 0; i < n; i++)
    out[i] = packed_element (x->linear, x->row0 + (int) (i / k), (int) (i % k));
}

static void
add_linear (GArray *b, const ClipLinear *w, int row0, float scale, const char *prefix,
            const char *name)
{
  add_packed (b, w, row0, scale, FALSE, "%s.%s.weight", prefix, name);
  add_packed (b, w, row0, scale, TRUE, "%s.%s.bias", prefix, name);
}

static void
add_layers (GArray *b, const char *tower, const ClipLayerWeights *layers, int n,
            const ClipTowerConfig *c)
{
  int h = c->hidden_size;
  float q_scale = 1.0f / sqrtf ((float) (h / c->num_attention_heads));
  for (int i = 0; i < n; i++) {
    const ClipLayerWeights *l = &layers[i];
    char *p = g_strdup_printf ("%s_model.encoder.layers.%d", tower, i);
    add_binding (b, l->layer_norm1_w, "%s.layer_norm1.weight", p);
    add_binding (b, l->layer_norm1_b, "%s.layer_norm1.bias", p);
    add_linear (b, &l->qkv, 0, q_scale, p, "self_attn.q_proj");
    add_linear (b, &l->qkv, h, 1.0f, p, "self_attn.k_proj");
    add_linear (b, &l->qkv, 2 * h, 1.0f, p, "self_attn.v_proj");
    add_linear (b, &l->out_proj, 0, 1.0f, p, "self_attn.out_proj");
    add_binding (b, l->layer_norm2_w, "%s.layer_norm2.weight", p);
    add_binding (b, l->layer_norm2_b, "%s.layer_norm2.bias", p);
    add_linear (b, &l->fc1, 0, 1.0f, p, "mlp.fc1");
    add_linear (b, &l->fc2, 0, 1.0f, p, "mlp.fc2");
    g_free (p);
  }
}

/* Each binding equals the tensor of its name (times its scale), bit for bit. */
static void
assert_bindings_equal (GArray *b, ClipSafetensors *want_file)
{
  for (guint i = 0; i < b->len; i++) {
    Binding *x = &g_array_index (b, Binding, i);
    const ClipTensorInfo *want = clip_safetensors_find (want_file, x->name);
    g_assert_nonnull (want);
    g_assert_true (want->dtype == CLIP_DTYPE_F32);
    size_t n = (size_t) want->n_elements;
    float *got = g_new (float, n), *expected = g_new (float, n);
    bound_values (x, got, n);
    memcpy (expected, want->data, n * sizeof (float));
    if (x->linear)
      for (size_t j = 0; j < n; j++)
        expected[j] *= x->scale;
    if (memcmp (got, expected, n * sizeof (float)) != 0)
      g_error ("%s differs from the checkpoint's tensor", x->name);
    g_free (got);
    g_free (expected);
  }
}

static GArray *
model_bindings (const ClipModel *m)
{
  GArray *b = g_array_new (FALSE, FALSE, sizeof (Binding));
  const ClipTowerWeights *t = &m->text, *v = &m->vision;

  add_binding (b, t->token_embedding, "text_model.embeddings.token_embedding.weight");
  add_binding (b, t->position_embedding, "text_model.embeddings.position_embedding.weight");
  add_layers (b, "text", t->layers, m->config.text.num_hidden_layers, &m->config.text);
  add_binding (b, t->final_layernorm_w, "text_model.final_layer_norm.weight");
  add_binding (b, t->final_layernorm_b, "text_model.final_layer_norm.bias");
  add_packed (b, &t->projection, 0, 1.0f, FALSE, "text_projection.weight");
  add_binding (b, v->class_embedding, "vision_model.embeddings.class_embedding");
  add_packed (b, &v->patch_embedding, 0, 1.0f, FALSE,
              "vision_model.embeddings.patch_embedding.weight");
  add_binding (b, v->position_embedding, "vision_model.embeddings.position_embedding.weight");
  add_binding (b, v->pre_layernorm_w, "vision_model.pre_layrnorm.weight");
  add_binding (b, v->pre_layernorm_b, "vision_model.pre_layrnorm.bias");
  add_layers (b, "vision", v->layers, m->config.vision.num_hidden_layers, &m->config.vision);
  add_binding (b, v->final_layernorm_w, "vision_model.post_layernorm.weight");
  add_binding (b, v->final_layernorm_b, "vision_model.post_layernorm.bias");
  add_packed (b, &v->projection, 0, 1.0f, FALSE, "visual_projection.weight");
  return b;
}

static void
free_bindings (GArray *b)
{
  for (guint i = 0; i < b->len; i++)
    g_free (g_array_index (b, Binding, i).name);
  g_array_free (b, TRUE);
}

static void
test_model_f32_in_place (void)
{
  ClipModel *m = load_ok (tiny ());
  GArray *b = model_bindings (m);
  char *config_path = g_build_filename (tiny (), "config.json", NULL);
  const ClipTensorInfo *scale;
  ClipConfig c;

  /* Getters report config.json (as make_checkpoint.py's tiny preset writes it). */
  g_assert_true (clip_config_load (config_path, &c, NULL));
  g_assert_cmpint (c.vision.image_size, ==, 32);
  g_assert_cmpint (clip_model_get_image_size (m), ==, 32);
  g_assert_cmpint (clip_model_get_embedding_dim (m), ==, 32);
  g_assert_cmpint (clip_model_get_context_length (m), ==, 77);
  g_assert_cmpstr (clip_model_get_path (m), ==, tiny ());
  g_assert_nonnull (clip_model_get_tokenizer (m));
  g_assert_cmpint (clip_tokenizer_get_vocab_size (clip_model_get_tokenizer (m)), ==, 49408);
  assert_openai_preprocess (clip_model_get_preprocess_config (m), 32);
  g_assert_cmpuint (clip_model_get_converted_bytes (m), ==, 0);
  g_assert_null (m->converted);

  /* Every weight that is not packed is the tensor of that name, in place in the mapping; the
   * packed ones hold its values. */
  for (guint i = 0; i < b->len; i++) {
    Binding *x = &g_array_index (b, Binding, i);
    const ClipTensorInfo *info = clip_safetensors_find (m->safetensors, x->name);
    g_assert_nonnull (info);
    if (x->ptr != NULL && (const void *) x->ptr != info->data)
      g_error ("%s is not bound in place", x->name);
  }
  assert_bindings_equal (b, m->safetensors);
  scale = clip_safetensors_find (m->safetensors, "logit_scale");
  g_assert_cmpint (scale->n_dims, ==, 0);
  g_assert_cmpfloat (clip_model_get_logit_scale (m), ==, expf (*(const float *) scale->data));
  /* make_checkpoint.py draws log(100) + small noise. */
  g_assert_cmpfloat (clip_model_get_logit_scale (m), >, 80.0f);
  g_assert_cmpfloat (clip_model_get_logit_scale (m), <, 125.0f);

  /* Atomic refcount: the model outlives its first owner. */
  g_assert_true (clip_model_ref (m) == m);
  clip_model_unref (m);
  g_assert_cmpint (clip_model_get_image_size (m), ==, 32);
  free_bindings (b);
  clip_model_unref (m);
  g_free (config_path);
}

/* F16/BF16 checkpoints: every weight equals numpy's conversion to f32, bit for bit. */
static void
check_converted (const char *dtype)
{
  char *name = g_strdup_printf ("tiny-%s", dtype);
  const char *dir = checkpoint (name, (const char *[]) { "--seed", "2", "--dtype", dtype, NULL });
  char *expected_path = g_strdup_printf ("%s/expected-f32.safetensors", fixture_dir);
  char *script = reference_script ();
  GString *code = g_string_new (
      "import sys, os, numpy as np\n"
      "sys.path.insert(0, os.path.dirname(r'''SCRIPT'''))\n"
      "from make_checkpoint import read_safetensors, write_safetensors\n"
      "raw, _ = read_safetensors(r'''DIR/model.safetensors''', raw=True)\n"
      "out = []\n"
      "for name, a in raw.items():\n"
      "    if a.dtype == np.int64: continue\n"
      "    if a.dtype == np.float16: f = a.astype(np.float32)\n"
      "    else: f = (a.astype(np.uint32).reshape(-1) << 16).view(np.float32)\n"
      "    out.append((name, 'F32', a.shape, f.reshape(a.shape)))\n"
      "write_safetensors(r'''OUT''', out)\n");
  ClipModel *m;
  ClipSafetensors *expected;
  GArray *b;
  GError *error = NULL;
  size_t n_bound = 0;

  g_string_replace (code, "SCRIPT", script, 0);
  g_string_replace (code, "DIR", dir, 0);
  g_string_replace (code, "OUT", expected_path, 0);
  clip_test_run_python ((const char *[]) { "-c", code->str, NULL });

  m = load_ok (dir);
  expected = clip_safetensors_open (expected_path, &error);
  g_assert_no_error (error);
  b = model_bindings (m);
  for (guint i = 0; i < b->len; i++) {
    Binding *x = &g_array_index (b, Binding, i);
    const ClipTensorInfo *want = clip_safetensors_find (expected, x->name);
    g_assert_nonnull (want);
    if (x->ptr == NULL)
      continue;              /* packed straight from the checkpoint's dtype */
    /* into the one conversion buffer, not the mapping */
    g_assert_true (x->ptr >= m->converted
        && (const char *) (x->ptr + want->n_elements)
           <= (const char *) m->converted + m->converted_bytes);
    n_bound += want->n_bytes;
  }
  assert_bindings_equal (b, expected);
  /* the bound tensors plus logit_scale fill the buffer exactly */
  g_assert_cmpuint (clip_model_get_converted_bytes (m), ==, n_bound + 4);
  g_assert_cmpfloat (clip_model_get_logit_scale (m), ==,
      expf (*(const float *) clip_safetensors_find (expected, "logit_scale")->data));

  free_bindings (b);
  clip_safetensors_close (expected);
  clip_model_unref (m);
  g_string_free (code, TRUE);
  g_free (script);
  g_free (expected_path);
  g_free (name);
}

static void
test_model_f16 (void)
{
  check_converted ("f16");
}

static void
test_model_bf16 (void)
{
  check_converted ("bf16");
}

static void
test_model_variants (void)
{
  ClipModel *m;
  GArray *b;

  /* recent transformers save no position_ids; legacy eos 2; exact GELU; other eps */
  m = load_ok (checkpoint ("variant-a", (const char *[]) { "--no-position-ids", "--eos-token-id",
      "2", "--preset", "tiny-gelu", "--layer-norm-eps", "1e-6", NULL }));
  g_assert_null (clip_safetensors_find (m->safetensors, "text_model.embeddings.position_ids"));
  g_assert_cmpint (m->config.text.eos_token_id, ==, 2);
  g_assert_cmpint (m->config.text.hidden_act, ==, CLIP_ACT_GELU);
  g_assert_cmpint (m->config.vision.hidden_act, ==, CLIP_ACT_GELU);
  g_assert_cmpfloat (m->config.text.layer_norm_eps, ==, 1e-6f);
  clip_model_unref (m);

  /* 30-pixel images in 7-pixel patches: as HF's stride-7 convolution, 4 x 4 whole patches
   * (the last 2 pixel rows and columns unused) + the class position. */
  m = load_ok (checkpoint ("variant-odd", (const char *[]) { "--image-size", "30",
      "--patch-size", "7", "--legacy-preprocessor", "--set", "text.num_hidden_layers=3",
      "--set", "projection_dim=24", NULL }));
  g_assert_cmpint (clip_model_get_image_size (m), ==, 30);
  g_assert_cmpint (clip_model_get_embedding_dim (m), ==, 24);
  g_assert_cmpint (m->config.text.num_hidden_layers, ==, 3);
  g_assert_cmpint (clip_safetensors_find (m->safetensors,
      "vision_model.embeddings.position_embedding.weight")->shape[0], ==, 17);
  b = model_bindings (m);
  assert_bindings_equal (b, m->safetensors);
  free_bindings (b);
  assert_openai_preprocess (clip_model_get_preprocess_config (m), 30);
  clip_model_unref (m);
}

static TestTensor *
u8_tensor (const char *name, int n)
{
  TestTensor *t = g_new0 (TestTensor, 1);

  t->name = g_strdup (name);
  t->dtype = g_strdup ("U8");
  t->n_dims = 1;
  t->shape[0] = n;
  t->data = g_bytes_new ("xyz", n);
  return t;
}

static void
test_model_layout_variants (void)
{
  /* logit_scale as [1]; a misaligned F32 tensor (copied, not used in place); an extra tensor. */
  char *dir = copy_checkpoint (tiny (), "layout", NULL);
  char *path = g_build_filename (dir, "model.safetensors", NULL);
  GPtrArray *tensors = read_tensors (path);
  TestTensor *scale = find_tensor (tensors, "logit_scale");
  TestTensor *moved = NULL;
  const char *moved_name = "text_model.final_layer_norm.bias";
  ClipModel *m;

  scale->n_dims = 1;
  scale->shape[0] = 1;
  /* [1 unknown byte][moved_name at offset 1][3 unknown bytes][the rest, aligned again] */
  for (guint i = 0; i < tensors->len; i++)
    if (strcmp (((TestTensor *) g_ptr_array_index (tensors, i))->name, moved_name) == 0)
      moved = g_ptr_array_steal_index (tensors, i);
  g_assert_nonnull (moved);
  g_ptr_array_insert (tensors, 0, u8_tensor ("extra.pad3", 3));
  g_ptr_array_insert (tensors, 0, moved);
  g_ptr_array_insert (tensors, 0, u8_tensor ("extra.pad1", 1));
  write_tensors (path, tensors);

  m = load_ok (dir);
  g_assert_cmpuint (clip_model_get_converted_bytes (m), ==, g_bytes_get_size (moved->data));
  g_assert_true (m->text.final_layernorm_b == m->converted);
  g_assert_cmpmem (m->text.final_layernorm_b, g_bytes_get_size (moved->data),
      g_bytes_get_data (moved->data, NULL), g_bytes_get_size (moved->data));
  g_assert_cmpfloat (clip_model_get_logit_scale (m), ==,
      expf (*(const float *) g_bytes_get_data (scale->data, NULL)));
  clip_model_unref (m);

  g_ptr_array_unref (tensors);
  g_free (path);
  g_free (dir);
}

static void
test_model_missing_files (void)
{
  const char *files[] = { "config.json", "model.safetensors", "vocab.json", "merges.txt" };
  char *absent = fixture_path ("no-such-model");

  assert_load_fails (absent, CLIP_ERROR_NOT_FOUND, absent, "download-model.sh");
  g_free (absent);

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++) {
    char *name = g_strdup_printf ("missing-%s", files[i]);
    char *dir = copy_checkpoint (tiny (), name, (const char *[]) { files[i], NULL });
    char *path = g_build_filename (dir, files[i], NULL);
    assert_load_fails (dir, CLIP_ERROR_NOT_FOUND, path, "download-model.sh");
    g_free (path);
    g_free (dir);
    g_free (name);
  }

  /* A PyTorch-only checkpoint is told why it does not load. */
  {
    char *dir = copy_checkpoint (tiny (), "pytorch-only",
        (const char *[]) { "model.safetensors", NULL });
    write_text (dir, "pytorch_model.bin", "not really");
    assert_load_fails (dir, CLIP_ERROR_NOT_FOUND, "model.safetensors", "pytorch_model.bin");
    g_free (dir);
  }

  /* preprocessor_config.json is optional: CLIPImageProcessor's defaults at this image size. */
  {
    char *dir = copy_checkpoint (tiny (), "no-preprocessor",
        (const char *[]) { "preprocessor_config.json", NULL });
    ClipModel *m = load_ok (dir);
    assert_openai_preprocess (clip_model_get_preprocess_config (m), 32);
    clip_model_unref (m);
    g_free (dir);
  }
}

static void
test_model_bad_config (void)
{
  char *dir = copy_checkpoint (tiny (), "bad-act", NULL);
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *contents, *edited;
  GString *s;

  g_assert_true (g_file_get_contents (config_path, &contents, NULL, NULL));
  s = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (s, "\"quick_gelu\"", "\"relu\"", 1), ==, 1);
  g_assert_true (g_file_set_contents (config_path, s->str, -1, NULL));
  assert_load_fails (dir, CLIP_ERROR_UNSUPPORTED, config_path, "\"relu\"");
  g_string_free (s, TRUE);

  /* config.json disagrees with the weights: text intermediate_size 128 -> 256 */
  s = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (s, "\"intermediate_size\": 128", "\"intermediate_size\": 256",
      0), ==, 1);
  g_assert_true (g_file_set_contents (config_path, s->str, -1, NULL));
  assert_load_fails (dir, CLIP_ERROR_SHAPE, "text_model.encoder.layers.0.mlp.fc1.weight",
      "[256, 64]");
  g_string_free (s, TRUE);

  /* vocab_size below the tokenizer's: ids would index past the token embedding */
  s = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (s, "\"vocab_size\": 49408", "\"vocab_size\": 40000", 0),
      ==, 1);
  g_assert_cmpuint (g_string_replace (s, "\"eos_token_id\": 49407", "\"eos_token_id\": 2", 0),
      ==, 1);
  g_assert_true (g_file_set_contents (config_path, s->str, -1, NULL));
  assert_load_fails (dir, CLIP_ERROR_SHAPE, "vocab.json", "vocab_size");
  g_string_free (s, TRUE);

  /* crop size other than the vision tower's input */
  g_assert_true (g_file_set_contents (config_path, contents, -1, NULL));
  write_text (dir, "preprocessor_config.json", "{\"crop_size\": 28, \"size\": 28}");
  assert_load_fails (dir, CLIP_ERROR_SHAPE, "preprocessor_config.json", "image_size");

  edited = g_strdup ("not json");
  g_assert_true (g_file_set_contents (config_path, edited, -1, NULL));
  assert_load_fails (dir, CLIP_ERROR_CORRUPT, config_path, NULL);

  g_free (edited);
  g_free (contents);
  g_free (config_path);
  g_free (dir);
}

typedef void (*TensorEdit) (GPtrArray *tensors);

static void
assert_rewritten_fails (const char *name, TensorEdit edit, ClipError code, const char *s1,
                        const char *s2)
{
  char *dir = copy_checkpoint (tiny (), name, NULL);
  char *path = g_build_filename (dir, "model.safetensors", NULL);
  GPtrArray *tensors = read_tensors (path);

  edit (tensors);
  write_tensors (path, tensors);
  assert_load_fails (dir, code, path, s1);
  if (s2)
    assert_load_fails (dir, code, s2, NULL);
  g_ptr_array_unref (tensors);
  g_free (path);
  g_free (dir);
}

static void
edit_drop_tensor (GPtrArray *tensors)
{
  g_ptr_array_remove (tensors, find_tensor (tensors, "text_model.encoder.layers.1.mlp.fc2.bias"));
}

static void
edit_transpose (GPtrArray *tensors)
{
  TestTensor *t = find_tensor (tensors, "vision_model.encoder.layers.1.mlp.fc1.weight");
  int64_t rows = t->shape[0];

  t->shape[0] = t->shape[1];
  t->shape[1] = rows;
}

static void
edit_patch_rank (GPtrArray *tensors)
{
  TestTensor *t = find_tensor (tensors, "vision_model.embeddings.patch_embedding.weight");

  /* [48, 3, 8, 8] -> [48, 192] */
  t->n_dims = 2;
  t->shape[1] = 3 * 8 * 8;
}

static void
edit_f64 (GPtrArray *tensors)
{
  TestTensor *t = find_tensor (tensors, "vision_model.pre_layrnorm.bias");
  gsize n = g_bytes_get_size (t->data) / 4;
  double *d = g_new (double, n);

  for (gsize i = 0; i < n; i++)
    d[i] = ((const float *) g_bytes_get_data (t->data, NULL))[i];
  g_bytes_unref (t->data);
  t->data = g_bytes_new_take (d, n * sizeof (double));
  g_free (t->dtype);
  t->dtype = g_strdup ("F64");
}

static void
edit_scale_shape (GPtrArray *tensors)
{
  TestTensor *t = find_tensor (tensors, "logit_scale");
  float two[2] = { 4.6f, 4.6f };

  t->n_dims = 1;
  t->shape[0] = 2;
  g_bytes_unref (t->data);
  t->data = g_bytes_new (two, sizeof two);
}

static void
test_model_bad_tensors (void)
{
  assert_rewritten_fails ("drop-tensor", edit_drop_tensor, CLIP_ERROR_NOT_FOUND,
      "'text_model.encoder.layers.1.mlp.fc2.bias'", NULL);
  assert_rewritten_fails ("transposed", edit_transpose, CLIP_ERROR_SHAPE,
      "'vision_model.encoder.layers.1.mlp.fc1.weight' has shape [48, 96]", "[96, 48]");
  assert_rewritten_fails ("patch-rank", edit_patch_rank, CLIP_ERROR_SHAPE,
      "'vision_model.embeddings.patch_embedding.weight' has shape [48, 192]", "[48, 3, 8, 8]");
  assert_rewritten_fails ("f64", edit_f64, CLIP_ERROR_UNSUPPORTED,
      "'vision_model.pre_layrnorm.bias'", "F64");
  assert_rewritten_fails ("scale-shape", edit_scale_shape, CLIP_ERROR_SHAPE, "'logit_scale'",
      NULL);
}

/* A corrupt model.safetensors fails the load with the safetensors error. */
static void
test_model_corrupt_weights (void)
{
  char *dir = copy_checkpoint (tiny (), "corrupt-weights", NULL);
  char *path = g_build_filename (dir, "model.safetensors", NULL);
  char *contents;
  gsize len;

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (path, contents, len / 2, NULL));
  assert_load_fails (dir, CLIP_ERROR_CORRUPT, path, "truncated");
  g_free (contents);
  g_free (path);
  g_free (dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Prompts */

static void
assert_prompt (const char *template_, const char *label, const char *expected)
{
  GError *error = NULL;
  char *prompt = clip_format_prompt (template_, label, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (prompt, ==, expected);
  g_free (prompt);
}

/* ------------------------------------------------------------------------------------------ */
/* Forward passes: refused input and a workspace that cannot be allocated are GErrors */

#define UNWRITTEN 12345.0f

static float *
unwritten_floats (gsize n)
{
  float *v = g_new (float, n);

  for (gsize i = 0; i < n; i++)
    v[i] = UNWRITTEN;
  return v;
}

static void
assert_unwritten (const float *v, gsize n)
{
  for (gsize i = 0; i < n; i++)
    g_assert_cmpfloat (v[i], ==, UNWRITTEN);
}

/* Bad token ids are refused before anything is computed: FALSE, an INVALID_ARGUMENT error that
 * names the text, the id and the model, and no row written, not even the valid text's. The
 * context stays usable, and valid ids give clip_embed_text's embedding of the same text. */
static void
test_embed_tokens_errors (void)
{
  ClipModel *m = load_ok (tiny ());
  ClipContextParams params = { .n_threads = 1 };
  GError *error = NULL;
  ClipContext *ctx = clip_context_new (m, &params, &error);
  const ClipTokenizer *tokenizer = clip_model_get_tokenizer (m);
  int dim = clip_model_get_embedding_dim (m), context_length = clip_model_get_context_length (m);
  int32_t good[77], bad[78];
  const char *text = "a photo of a cat.";
  int n_good = clip_tokenizer_encode (tokenizer, text, good, 77, &error);
  const struct {
    int32_t id;               /* written at position 2 of the bad text */
    int n_ids;
    const char *message;      /* in the error */
  } cases[] = {
    { 49408, 5, "Token id 49408 (position 2 of text 1)" },   /* vocab_size: one past the end */
    { -1, 5, "Token id -1 (position 2 of text 1)" },
    { G_MAXINT32, 5, "Token id 2147483647" },
    { 320, 0, "Text 1 has 0 token ids" },
    { 320, 78, "Text 1 has 78 token ids" },                  /* context length + 1 */
    { 320, -3, "Text 1 has -3 token ids" },
  };
  float *embeddings = unwritten_floats ((gsize) 2 * dim), *expected = g_new (float, dim);

  g_assert_no_error (error);
  g_assert_cmpint (context_length, ==, 77);
  g_assert_cmpint (n_good, >, 2);
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    const int32_t *ids[2] = { good, bad };
    int n_ids[2] = { n_good, cases[c].n_ids };

    for (int t = 0; t < 78; t++)
      bad[t] = good[MIN (t, n_good - 1)];
    bad[2] = cases[c].id;
    g_assert_false (clip_embed_tokens (ctx, ids, n_ids, 2, embeddings, &error));
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, cases[c].message));
    g_assert_nonnull (strstr (error->message, tiny ()));
    g_clear_error (&error);
    assert_unwritten (embeddings, (gsize) 2 * dim);
  }

  /* the same context, valid ids: the text's own embedding */
  {
    const int32_t *ids[1] = { good };
    int n_ids[1] = { n_good };

    g_assert_true (clip_embed_tokens (ctx, ids, n_ids, 1, embeddings, &error));
    g_assert_no_error (error);
    g_assert_true (clip_embed_text (ctx, &text, 1, expected, &error));
    g_assert_no_error (error);
    for (int d = 0; d < dim; d++)
      g_assert_cmpfloat (embeddings[d], ==, expected[d]);
  }

  g_free (embeddings);
  g_free (expected);
  clip_context_free (ctx);
  clip_model_unref (m);
}

/* A sanitizer's allocator aborts on a request it cannot satisfy unless told to return NULL. */
static gboolean
allocator_returns_null (void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const char *options = g_getenv (
#if defined(__SANITIZE_ADDRESS__)
      "ASAN_OPTIONS"
#else
      "TSAN_OPTIONS"
#endif
      );
  return options && strstr (options, "allocator_may_return_null=1");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
  return FALSE;
#else
  return TRUE;
#endif
#else
  return TRUE;
#endif
}

/* The workspace follows the model and the thread count, both the user's choice: when it cannot
 * be allocated the forward pass fails with NO_MEMORY naming the model, and writes nothing. A
 * model with ~4,000 tokens per image and per text (within config.c's limits) on G_MAXINT
 * threads needs ~2^31 x 64 MB of attention scratch, more than any address space holds, so the
 * allocation fails on every machine, overcommit or not. */
static void
test_embed_no_memory (void)
{
  const char *dir;
  ClipModel *m;
  ClipContextParams params = { .n_threads = G_MAXINT };
  GError *error = NULL;
  ClipContext *ctx;
  int size, dim, n_ids[1] = { 4000 };
  float *pixels, *embedding;
  int32_t *ids;

  if (!allocator_returns_null ()) {
    g_test_skip ("the sanitizer's allocator aborts instead of failing "
                 "(allocator_may_return_null=1 is not set)");
    return;
  }
  dir = checkpoint ("long-sequences", (const char *[]) { "--seed", "1", "--image-size", "1008",
                    "--patch-size", "16", "--set", "text.max_position_embeddings=4096", NULL });
  m = load_ok (dir);
  ctx = clip_context_new (m, &params, &error);
  g_assert_no_error (error);
  size = clip_model_get_image_size (m);
  dim = clip_model_get_embedding_dim (m);
  g_assert_cmpint (size, ==, 1008);
  pixels = g_new0 (float, (gsize) 3 * size * size);
  embedding = unwritten_floats (dim);

  g_assert_false (clip_embed_image (ctx, pixels, embedding, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_NO_MEMORY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "3970 tokens"));
  g_assert_nonnull (strstr (error->message, dir));
  g_clear_error (&error);
  assert_unwritten (embedding, dim);

  /* <bos>, 3998 tokens, <eos>: every position up to the pooled one is computed */
  ids = g_new (int32_t, n_ids[0]);
  ids[0] = clip_tokenizer_get_bos_id (clip_model_get_tokenizer (m));
  for (int t = 1; t < n_ids[0] - 1; t++)
    ids[t] = 320;
  ids[n_ids[0] - 1] = clip_tokenizer_get_eos_id (clip_model_get_tokenizer (m));
  g_assert_false (clip_embed_tokens (ctx, (const int32_t *[]) { ids }, n_ids, 1, embedding,
                                     &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_NO_MEMORY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, dir));
  g_clear_error (&error);
  assert_unwritten (embedding, dim);

  g_free (ids);
  g_free (pixels);
  g_free (embedding);
  clip_context_free (ctx);
  clip_model_unref (m);
}

static void
test_prompt (void)
{
  GError *error = NULL;

  assert_prompt (CLIP_DEFAULT_TEMPLATE, "cat", "a photo of a cat.");
  assert_prompt ("{}", "a red  car ", "a red  car ");
  assert_prompt ("{} and {}!", "dog", "dog and dog!");
  assert_prompt ("{{}}", "x", "{x}");
  assert_prompt ("a {} b", "{}", "a {} b");
  assert_prompt ("une photo d'un {}", "chien \xc3\xa9", "une photo d'un chien \xc3\xa9");
  assert_prompt ("{}", "", "");

  g_assert_null (clip_format_prompt ("a photo of a cat", "cat", &error));
  assert_error (error, CLIP_ERROR_INVALID_ARGUMENT, "a photo of a cat", "{}");
  g_clear_error (&error);
  g_assert_null (clip_format_prompt ("{", "cat", &error));
  assert_error (error, CLIP_ERROR_INVALID_ARGUMENT, NULL, NULL);
  g_clear_error (&error);
  g_assert_null (clip_format_prompt ("{}", "bad \xff", &error));
  assert_error (error, CLIP_ERROR_INVALID_ARGUMENT, "UTF-8", NULL);
  g_clear_error (&error);
  g_assert_null (clip_format_prompt ("\xc3{}", "x", &error));
  assert_error (error, CLIP_ERROR_INVALID_ARGUMENT, "UTF-8", NULL);
  g_clear_error (&error);
}

/* ------------------------------------------------------------------------------------------ */

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL) {
    while ((name = g_dir_read_name (dir)) != NULL) {
      char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
      g_free (child);
    }
    g_dir_close (dir);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  const char *build_dir = g_getenv ("CLIP_TEST_BUILD_DIR");
  char *template_;
  int ret;

  g_test_init (&argc, &argv, NULL);

  template_ = g_build_filename (build_dir ? build_dir : g_get_tmp_dir (), "test-model-XXXXXX",
      NULL);
  fixture_dir = g_mkdtemp (template_);
  g_assert_nonnull (fixture_dir);

  g_test_add_func ("/safetensors/valid", test_safetensors_valid);
  g_test_add_func ("/safetensors/open-errors", test_safetensors_open_errors);
  g_test_add_func ("/safetensors/header-past-end", test_safetensors_header_past_end);
  g_test_add_func ("/safetensors/bad-json", test_safetensors_bad_json);
  g_test_add_func ("/safetensors/deep-nesting", test_safetensors_deep_nesting);
  g_test_add_func ("/safetensors/header-cap", test_safetensors_header_cap);
  g_test_add_func ("/safetensors/bad-entries", test_safetensors_bad_entries);
  g_test_add_func ("/safetensors/offsets", test_safetensors_offsets);
  g_test_add_func ("/safetensors/overlap", test_safetensors_overlap);
  g_test_add_func ("/safetensors/duplicates", test_safetensors_duplicates);
  g_test_add_func ("/safetensors/truncated", test_safetensors_truncated);
  g_test_add_func ("/safetensors/conversion", test_safetensors_conversion);
  g_test_add_func ("/config/defaults", test_config_defaults);
  g_test_add_func ("/config/legacy-dict", test_config_legacy_dict);
  g_test_add_func ("/config/errors", test_config_errors);
  g_test_add_func ("/config/deep-nesting", test_config_deep_nesting);
  g_test_add_func ("/config/limits", test_config_limits);
  g_test_add_func ("/preprocess-config/forms", test_preprocess_forms);
  g_test_add_func ("/preprocess-config/errors", test_preprocess_errors);
  g_test_add_func ("/model/f32-in-place", test_model_f32_in_place);
  g_test_add_func ("/model/f16", test_model_f16);
  g_test_add_func ("/model/bf16", test_model_bf16);
  g_test_add_func ("/model/variants", test_model_variants);
  g_test_add_func ("/model/layout-variants", test_model_layout_variants);
  g_test_add_func ("/model/missing-files", test_model_missing_files);
  g_test_add_func ("/model/bad-config", test_model_bad_config);
  g_test_add_func ("/model/bad-tensors", test_model_bad_tensors);
  g_test_add_func ("/model/corrupt-weights", test_model_corrupt_weights);
  g_test_add_func ("/embed/tokens-errors", test_embed_tokens_errors);
  g_test_add_func ("/embed/no-memory", test_embed_no_memory);
  g_test_add_func ("/prompt/format", test_prompt);

  ret = g_test_run ();
  if (ret == 0)
    remove_tree (fixture_dir);
  g_free (fixture_dir);
  return ret;
}
