/* safetensors.c — mmap a .safetensors file and validate its header.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON (an object mapping tensor
 * names to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional "__metadata__"
 * object), then the data section; offsets are relative to its start. Nothing in the header is
 * trusted: every tensor must lie inside the data section, have exactly dtype size x elements
 * bytes, and overlap no other tensor, so that later code can read any tensor without checks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "safetensors.h"
#include "clip.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>


struct _ClipSafetensors {
  char *path;
  const guint8 *map;
  size_t file_size;
  const guint8 *data;                /* start of the data section */
  size_t data_size;
  ClipTensorInfo *tensors;
  int n_tensors;
  GStringChunk *names;
  GHashTable *by_name;               /* name -> ClipTensorInfo* */
};

/* ------------------------------------------------------------------------------------------ */
/* dtypes */

typedef struct {
  const char *name;
  ClipDtype dtype;
  int bits;                          /* per element: sub-byte types exist (F4, F6_*) */
} DtypeDesc;

/* Every dtype of the safetensors format. Ours get their own enum value; the rest are
 * CLIP_DTYPE_OTHER but still sized so that their byte ranges are validated like any other. */
static const DtypeDesc dtype_table[] = {
  { "F32", CLIP_DTYPE_F32, 32 },
  { "F16", CLIP_DTYPE_F16, 16 },
  { "BF16", CLIP_DTYPE_BF16, 16 },
  { "I64", CLIP_DTYPE_I64, 64 },
  { "F64", CLIP_DTYPE_OTHER, 64 },
  { "I32", CLIP_DTYPE_OTHER, 32 },
  { "I16", CLIP_DTYPE_OTHER, 16 },
  { "I8", CLIP_DTYPE_OTHER, 8 },
  { "U64", CLIP_DTYPE_OTHER, 64 },
  { "U32", CLIP_DTYPE_OTHER, 32 },
  { "U16", CLIP_DTYPE_OTHER, 16 },
  { "U8", CLIP_DTYPE_OTHER, 8 },
  { "BOOL", CLIP_DTYPE_OTHER, 8 },
  { "F8_E4M3", CLIP_DTYPE_OTHER, 8 },
  { "F8_E5M2", CLIP_DTYPE_OTHER, 8 },
  { "F8_E8M0", CLIP_DTYPE_OTHER, 8 },
  { "F6_E2M3", CLIP_DTYPE_OTHER, 6 },
  { "F6_E3M2", CLIP_DTYPE_OTHER, 6 },
  { "F4", CLIP_DTYPE_OTHER, 4 },
  { "C64", CLIP_DTYPE_OTHER, 64 },
};

static const DtypeDesc *
dtype_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (dtype_table); i++)
    if (strcmp (dtype_table[i].name, name) == 0)
      return &dtype_table[i];
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Duplicate detection. JsonParser keeps only the last of two members with the same name, so a
 * header naming a tensor twice would silently lose one entry (and hide a second tensor in the
 * data). "object-member" fires for every member as parsed, duplicates included, with the name
 * already unescaped: record (object, name) pairs and remember the first repeat. */

typedef struct {
  GHashTable *seen;                  /* "%p/%s" of (object, member name) */
  JsonObject *dup_object;
  char *dup_name;
} DupCheck;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, gpointer user_data)
{
  DupCheck *check = user_data;
  char *key;

  if (check->dup_name != NULL)
    return;
  key = g_strdup_printf ("%p/%s", (void *) object, name);
  if (!g_hash_table_add (check->seen, key)) {
    check->dup_object = object;
    check->dup_name = g_strdup (name);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* JSON nesting, checked before json-glib parses anything (its parser recurses once per level) */

gssize
clip_json_find_excess_nesting (const char *text, gsize len, int max_depth)
{
  gboolean in_string = FALSE;
  int depth = 0;

  for (gsize i = 0; i < len; i++) {
    char c = text[i];

    if (in_string) {
      if (c == '\\')
        i++;                         /* the escaped character cannot end the string */
      else if (c == '"')
        in_string = FALSE;
      continue;
    }
    switch (c) {
      case '"':
        in_string = TRUE;
        break;
      case '{':
      case '[':
        if (++depth > max_depth)
          return (gssize) i;
        break;
      case '}':
      case ']':
        depth--;                     /* unbalanced: the parser will say so */
        break;
      default:
        break;
    }
  }
  return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Header parsing */

static gboolean
get_uint (JsonNode *node, guint64 *out)
{
  gint64 v;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

static gboolean
parse_entry (ClipSafetensors *st, const char *name, JsonNode *node, ClipTensorInfo *info,
             guint64 *begin_out, guint64 *end_out, GError **error)
{
  JsonObject *obj;
  JsonNode *dtype_node, *shape_node, *offsets_node;
  JsonArray *shape, *offsets;
  const DtypeDesc *desc;
  const char *dtype_name;
  guint64 n_elements = 1, n_bits, begin, end;
  guint n_dims;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto not_object;
  obj = json_node_get_object (node);

  dtype_node = json_object_get_member (obj, "dtype");
  if (dtype_node == NULL || !JSON_NODE_HOLDS_VALUE (dtype_node)
      || json_node_get_value_type (dtype_node) != G_TYPE_STRING)
    goto bad_field_dtype;
  dtype_name = json_node_get_string (dtype_node);
  desc = dtype_lookup (dtype_name);
  if (desc == NULL)
    goto unknown_dtype;

  shape_node = json_object_get_member (obj, "shape");
  if (shape_node == NULL || !JSON_NODE_HOLDS_ARRAY (shape_node))
    goto bad_field_shape;
  shape = json_node_get_array (shape_node);
  n_dims = json_array_get_length (shape);
  if (n_dims > CLIP_SAFETENSORS_MAX_DIMS)
    goto too_many_dims;
  for (guint i = 0; i < n_dims; i++) {
    guint64 dim;
    if (!get_uint (json_array_get_element (shape, i), &dim) || dim > G_MAXINT64)
      goto bad_field_shape;
    info->shape[i] = (int64_t) dim;
    if (!g_uint64_checked_mul (&n_elements, n_elements, dim) || n_elements > G_MAXINT64)
      goto too_large;
  }

  offsets_node = json_object_get_member (obj, "data_offsets");
  if (offsets_node == NULL || !JSON_NODE_HOLDS_ARRAY (offsets_node))
    goto bad_field_offsets;
  offsets = json_node_get_array (offsets_node);
  if (json_array_get_length (offsets) != 2
      || !get_uint (json_array_get_element (offsets, 0), &begin)
      || !get_uint (json_array_get_element (offsets, 1), &end))
    goto bad_field_offsets;
  if (begin > end)
    goto reversed;
  if (end > st->data_size)
    goto out_of_range;
  if (!g_uint64_checked_mul (&n_bits, n_elements, (guint64) desc->bits))
    goto too_large;
  if (end - begin != (n_bits + 7) / 8)
    goto size_mismatch;

  info->name = g_string_chunk_insert_const (st->names, name);
  info->dtype = desc->dtype;
  info->dtype_name = desc->name;
  info->n_dims = (int) n_dims;
  info->n_elements = (int64_t) n_elements;
  info->data = st->data + begin;
  info->n_bytes = (size_t) (end - begin);
  *begin_out = begin;
  *end_out = end;
  return TRUE;

  /* ERRORS */
not_object:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: entry of tensor '%s' is not a JSON object", st->path, name);
  return FALSE;
bad_field_dtype:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' has no \"dtype\" string", st->path, name);
  return FALSE;
unknown_dtype:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' has unknown dtype '%s'", st->path, name, dtype_name);
  return FALSE;
bad_field_shape:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' has no \"shape\" array of non-negative integers",
      st->path, name);
  return FALSE;
too_many_dims:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
      "%s: tensor '%s' has %u dimensions; at most %d are supported", st->path, name, n_dims,
      CLIP_SAFETENSORS_MAX_DIMS);
  return FALSE;
too_large:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: the shape of tensor '%s' overflows 64 bits", st->path, name);
  return FALSE;
bad_field_offsets:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' has no \"data_offsets\" pair of non-negative integers",
      st->path, name);
  return FALSE;
reversed:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' has data_offsets [%" G_GUINT64_FORMAT ", %"
      G_GUINT64_FORMAT "] that end before they begin", st->path, name, begin, end);
  return FALSE;
out_of_range:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: tensor '%s' has data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
      "] past the end of the data section (%" G_GSIZE_FORMAT " bytes): the file is truncated "
      "or its header is corrupt", st->path, name, begin, end, st->data_size);
  return FALSE;
size_mismatch:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: tensor '%s' holds %" G_GUINT64_FORMAT " bytes, but %s x %"
      G_GUINT64_FORMAT " elements needs %" G_GUINT64_FORMAT, st->path, name, end - begin,
      desc->name, n_elements, (n_bits + 7) / 8);
  return FALSE;
}

typedef struct {
  guint64 begin, end;
  int index;
} Range;

static int
compare_ranges (gconstpointer a, gconstpointer b)
{
  const Range *ra = a, *rb = b;

  if (ra->begin != rb->begin)
    return ra->begin < rb->begin ? -1 : 1;
  if (ra->end != rb->end)
    return ra->end < rb->end ? -1 : 1;
  return ra->index - rb->index;
}

static const char *
find_entry_of (JsonObject *root, JsonObject *object)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init (&iter, root);
  while (json_object_iter_next (&iter, &name, &node))
    if (JSON_NODE_HOLDS_OBJECT (node) && json_node_get_object (node) == object)
      return name;
  return NULL;
}

static gboolean
parse_header (ClipSafetensors *st, const char *header, gsize header_len, GError **error)
{
  JsonParser *parser = json_parser_new ();
  DupCheck dup = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), NULL, NULL };
  GError *json_error = NULL;
  JsonNode *root;
  JsonObject *root_obj;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  Range *ranges = NULL;
  guint n_members;
  int n = 0;
  gboolean ok = FALSE;
  gssize too_deep;

  too_deep = clip_json_find_excess_nesting (header, header_len, CLIP_JSON_MAX_DEPTH);
  if (too_deep >= 0)
    goto nested_too_deep;
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &dup);
  if (!json_parser_load_from_data (parser, header, (gssize) header_len, &json_error))
    goto not_json;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    goto not_object;
  root_obj = json_node_get_object (root);
  if (dup.dup_name != NULL)
    goto duplicate;

  n_members = json_object_get_size (root_obj);
  st->tensors = g_new0 (ClipTensorInfo, n_members);
  ranges = g_new0 (Range, n_members);
  json_object_iter_init (&iter, root_obj);
  while (json_object_iter_next (&iter, &name, &node)) {
    if (strcmp (name, "__metadata__") == 0) {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        goto bad_metadata;
      continue;
    }
    if (!parse_entry (st, name, node, &st->tensors[n], &ranges[n].begin, &ranges[n].end, error))
      goto out;
    ranges[n].index = n;
    g_hash_table_insert (st->by_name, (gpointer) st->tensors[n].name, &st->tensors[n]);
    n++;
  }
  st->n_tensors = n;

  /* Empty tensors occupy no bytes and cannot overlap anything. */
  if (n > 1)
    qsort (ranges, n, sizeof (Range), compare_ranges);
  for (int i = 0, last = -1; i < n; i++) {
    const Range *r = &ranges[i];
    if (r->begin == r->end)
      continue;
    if (last >= 0 && r->begin < ranges[last].end) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
          "%s: corrupt header: tensors '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
          ") and '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") overlap", st->path,
          st->tensors[ranges[last].index].name, ranges[last].begin, ranges[last].end,
          st->tensors[r->index].name, r->begin, r->end);
      goto out;
    }
    last = i;
  }
  ok = TRUE;
  goto out;

  /* ERRORS */
nested_too_deep:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: JSON nested deeper than %d levels (at header byte %"
      G_GSSIZE_FORMAT "); a safetensors header needs 3", st->path, CLIP_JSON_MAX_DEPTH,
      too_deep);
  goto out;
not_json:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: not valid JSON (%s)", st->path, json_error->message);
  g_error_free (json_error);
  goto out;
not_object:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: not a JSON object", st->path);
  goto out;
duplicate:
  if (dup.dup_object == root_obj) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: corrupt header: tensor '%s' is listed twice", st->path, dup.dup_name);
  } else {
    const char *owner = find_entry_of (root_obj, dup.dup_object);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
        "%s: corrupt header: field \"%s\" appears twice in the entry of tensor '%s'", st->path,
        dup.dup_name, owner ? owner : "(nested object)");
  }
  goto out;
bad_metadata:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: corrupt header: \"__metadata__\" is not a JSON object", st->path);
  goto out;
out:
  g_free (ranges);
  g_free (dup.dup_name);
  g_hash_table_unref (dup.seen);
  g_object_unref (parser);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Public API */

ClipSafetensors *
clip_safetensors_open (const char *path, GError **error)
{
  ClipSafetensors *st;
  struct stat sb;
  guint64 header_len;
  void *map;
  int fd, saved_errno;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  st = g_new0 (ClipSafetensors, 1);
  st->path = g_strdup (path);
  st->names = g_string_chunk_new (4096);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    goto open_failed;
  if (fstat (fd, &sb) != 0) {
    saved_errno = errno;
    close (fd);
    errno = saved_errno;
    goto open_failed;
  }
  if (!S_ISREG (sb.st_mode)) {
    close (fd);
    goto not_regular;
  }
  st->file_size = (size_t) sb.st_size;
  if (st->file_size < 8) {
    close (fd);
    goto too_short;
  }
  map = mmap (NULL, st->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  saved_errno = errno;
  close (fd);             /* the mapping keeps the file */
  if (map == MAP_FAILED) {
    errno = saved_errno;
    goto map_failed;
  }
  st->map = map;

  header_len = GUINT64_FROM_LE (*(const guint64 *) st->map);
  if (header_len > st->file_size - 8)
    goto header_past_end;
  if (header_len > CLIP_SAFETENSORS_MAX_HEADER_BYTES)
    goto header_too_large;
  st->data = st->map + 8 + header_len;
  st->data_size = st->file_size - 8 - header_len;

  if (!parse_header (st, (const char *) st->map + 8, header_len, error))
    goto failed;
  return st;

  /* ERRORS */
open_failed:
  g_set_error (error, CLIP_ERROR, errno == ENOENT ? CLIP_ERROR_NOT_FOUND : CLIP_ERROR_IO,
      "Cannot open %s: %s", path, g_strerror (errno));
  goto failed;
not_regular:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "Cannot read %s: not a regular file", path);
  goto failed;
too_short:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: %" G_GSIZE_FORMAT " bytes is too short for a safetensors file (8-byte header "
      "length, then the header)", path, st->file_size);
  goto failed;
map_failed:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "Cannot map %s: %s", path, g_strerror (errno));
  goto failed;
header_past_end:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: header length %" G_GUINT64_FORMAT " runs past the end of the file (%" G_GSIZE_FORMAT
      " bytes): not a safetensors file, or truncated", path, header_len, st->file_size);
  goto failed;
header_too_large:
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
      "%s: header length %" G_GUINT64_FORMAT " exceeds our limit of %d bytes (real checkpoints "
      "need well under 1 MB): not a CLIP checkpoint, or corrupt", path, header_len,
      CLIP_SAFETENSORS_MAX_HEADER_BYTES);
  goto failed;
failed:
  clip_safetensors_close (st);
  return NULL;
}

void
clip_safetensors_close (ClipSafetensors *st)
{
  if (st == NULL)
    return;
  if (st->map != NULL)
    munmap ((void *) st->map, st->file_size);
  g_hash_table_unref (st->by_name);
  g_string_chunk_free (st->names);
  g_free (st->tensors);
  g_free (st->path);
  g_free (st);
}

const char *
clip_safetensors_get_path (const ClipSafetensors *st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->path;
}

const ClipTensorInfo *
clip_safetensors_find (const ClipSafetensors *st, const char *name)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (st->by_name, name);
}

int
clip_safetensors_get_n_tensors (const ClipSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->n_tensors;
}

const ClipTensorInfo *
clip_safetensors_get_tensor (const ClipSafetensors *st, int index)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (index >= 0 && index < st->n_tensors, NULL);
  return &st->tensors[index];
}

size_t
clip_safetensors_get_file_size (const ClipSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->file_size;
}

/* ------------------------------------------------------------------------------------------ */
/* Conversion */

/* IEEE binary16 -> binary32, exact for every input (subnormals, infinities, NaN payloads). */
static inline float
f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exponent = (h >> 10) & 0x1f;
  guint32 mantissa = h & 0x3ff;
  guint32 bits;
  float f;

  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    /* Subnormal: shift the mantissa up until its leading 1 is the implicit bit. */
    exponent = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      exponent--;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  memcpy (&f, &bits, sizeof f);
  return f;
}

gboolean
clip_tensor_to_f32 (const ClipTensorInfo *tensor, float *out)
{
  const guint8 *src;

  g_return_val_if_fail (tensor != NULL, FALSE);
  g_return_val_if_fail (out != NULL || tensor->n_elements == 0, FALSE);

  src = tensor->data;
  switch (tensor->dtype) {
    case CLIP_DTYPE_F32:
      memcpy (out, src, tensor->n_bytes);
      return TRUE;
    case CLIP_DTYPE_F16:
      for (int64_t i = 0; i < tensor->n_elements; i++) {
        guint16 h;
        memcpy (&h, src + 2 * i, 2);
        out[i] = f16_to_f32 (GUINT16_FROM_LE (h));
      }
      return TRUE;
    case CLIP_DTYPE_BF16:
      /* bfloat16 is the top half of a binary32. */
      for (int64_t i = 0; i < tensor->n_elements; i++) {
        guint16 h;
        guint32 bits;
        memcpy (&h, src + 2 * i, 2);
        bits = (guint32) GUINT16_FROM_LE (h) << 16;
        memcpy (&out[i], &bits, 4);
      }
      return TRUE;
    case CLIP_DTYPE_I64:
    case CLIP_DTYPE_OTHER:
    default:
      return FALSE;
  }
}

void
clip_safetensors_release (const ClipSafetensors *st, const ClipTensorInfo *tensor)
{
  g_return_if_fail (st != NULL && tensor != NULL);
  /* only the pages the tensor alone occupies: its neighbours may still be in use */
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  uintptr_t begin = ((uintptr_t) tensor->data + page - 1) / page * page;
  uintptr_t end = ((uintptr_t) tensor->data + tensor->n_bytes) / page * page;
  if (end > begin)
    madvise ((void *) begin, end - begin, MADV_DONTNEED);
}
