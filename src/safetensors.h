/* safetensors.h — read-only view of a .safetensors file (mmap'ed). Knows nothing of CLIP.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_SAFETENSORS_H
#define CLIP_SAFETENSORS_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum {
  CLIP_DTYPE_F32,
  CLIP_DTYPE_F16,
  CLIP_DTYPE_BF16,
  CLIP_DTYPE_I64,
  CLIP_DTYPE_OTHER,          /* any other dtype the format allows (F64, I32, U8, BOOL...) */
} ClipDtype;

#define CLIP_SAFETENSORS_MAX_DIMS 8

typedef struct {
  const char *name;
  ClipDtype dtype;
  const char *dtype_name;    /* as written in the header, e.g. "F32" */
  int n_dims;                /* 0 for a scalar */
  int64_t shape[CLIP_SAFETENSORS_MAX_DIMS];
  int64_t n_elements;
  const void *data;          /* into the mapping */
  size_t n_bytes;
} ClipTensorInfo;

typedef struct _ClipSafetensors ClipSafetensors;

/* The largest header clip_safetensors_open() accepts, in bytes. An entry takes about 120 bytes
 * per tensor: a CLIP ViT-L/14 checkpoint (about 600 tensors) has a header of about 70 kB, and
 * even 10,000 tensors would stay near 1 MB. The format's own limit (100 MB) would let a crafted
 * file make json-glib build a tree of gigabytes. */
#define CLIP_SAFETENSORS_MAX_HEADER_BYTES (8 * 1024 * 1024)

/* The deepest JSON nesting (objects and arrays) any file of a model may have. json-glib's parser
 * recurses once per level, so a deep enough file ("[[[[...") overflows the stack; the files we
 * read need 3 or 4 levels. */
#define CLIP_JSON_MAX_DEPTH 64

/* Scans text[0..len) for JSON nesting deeper than max_depth, skipping strings (with their
 * escapes). Returns the offset of the first '{' or '[' past the limit, or -1 when there is none.
 * Malformed JSON is left for the parser to report. */
gssize clip_json_find_excess_nesting (const char *text, gsize len, int max_depth);

/* Maps the file and validates its header: JSON, offsets inside the data section, no overlaps,
 * byte size = dtype size x elements, no duplicate names. Errors name the file and tensor. */
ClipSafetensors *clip_safetensors_open (const char *path, GError **error);
void clip_safetensors_close (ClipSafetensors *st);

const char *clip_safetensors_get_path (const ClipSafetensors *st);
/* NULL when absent. */
const ClipTensorInfo *clip_safetensors_find (const ClipSafetensors *st, const char *name);
int clip_safetensors_get_n_tensors (const ClipSafetensors *st);
const ClipTensorInfo *clip_safetensors_get_tensor (const ClipSafetensors *st, int index);
size_t clip_safetensors_get_file_size (const ClipSafetensors *st);

/* Writes the n_elements values of an F32, F16 or BF16 tensor to out as f32 (exact: every f16
 * and bf16 value is representable). FALSE for any other dtype. */
gboolean clip_tensor_to_f32 (const ClipTensorInfo *tensor, float *out);

/* Drops the tensor's pages from the process's memory once it has been copied elsewhere (packed
 * weights): they are file pages of a private read-only mapping, so reading the tensor again
 * would only fault them back in from the file. */
void clip_safetensors_release (const ClipSafetensors *st, const ClipTensorInfo *tensor);

G_END_DECLS

#endif /* CLIP_SAFETENSORS_H */
