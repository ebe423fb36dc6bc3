/* image-io.c — PNG (libpng), JPEG (libjpeg-turbo) and binary PPM/PGM to RGB8.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The target is Pillow's Image.open (path).convert ("RGB"), the input of HF's
 * CLIPImageProcessor, so each format's corner cases follow Pillow 9.x rather than the libraries'
 * own conveniences:
 * - PNG: grey is replicated, alpha dropped (not composited), a palette looked up with its
 *   transparency ignored, 1/2/4-bit grey scaled to 8 bits; 16-bit RGB/RGBA/grey+alpha keep the
 *   high byte, but 16-bit grey becomes Pillow mode "I" whose RGB conversion CLAMPS to 255.
 *   Gamma and colour chunks are ignored, as Pillow ignores them.
 * - JPEG: libjpeg's default decoder (islow DCT, fancy upsampling), as Pillow uses it; CMYK and
 *   YCCK are read as Adobe-inverted CMYK and converted with Pillow's cmyk2rgb rounding.
 */
#include "image-io.h"

#include "clip.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Resources of one load, owned by clip_image_load so that the functions that setjmp never
 * modify their own locals between setjmp and longjmp. */
typedef struct {
  const char *path;
  FILE *file;
  uint8_t *raw;              /* decoded rows before conversion to RGB */
  uint8_t *rgb;
  char *message;             /* from the library's error handler */
  jmp_buf jmp;
} ClipImageLoad;

/* Pillow's decompression-bomb limit: Image.open refuses an image of more than
 * 2 * Image.MAX_IMAGE_PIXELS pixels, so HF's pipeline never sees one. A file of a few hundred
 * bytes can claim one (a JPEG's corrupt data is padded out to its header's size), and decoding
 * it costs seconds and hundreds of MiB. */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CLIP_IMAGE_MAX_PIXELS ((int64_t) 2 * 89478485)
#else
/* under libFuzzer (tests/fuzz/meson.build): the same check with a smaller limit, so that no
 * input is a timeout only for its size (its decoding time grows with its pixels) */
#define CLIP_IMAGE_MAX_PIXELS ((int64_t) 1 << 22)
#endif

static gboolean
check_size (ClipImageLoad *load, int64_t width, int64_t height, GError **error)
{
  if (width <= 0 || height <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: empty image (%" G_GINT64_FORMAT
                 "x%" G_GINT64_FORMAT ")", load->path, width, height);
    return FALSE;
  }
  /* Rows must stay addressable with an int stride (clip_preprocess_rgb8 takes one). */
  if (width > G_MAXINT / 4 || height > G_MAXINT / 4 || width * height > CLIP_IMAGE_MAX_PIXELS) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED, "%s: image too large (%"
                 G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", more than %" G_GINT64_FORMAT
                 " pixels)", load->path, width, height,
                 (gint64) CLIP_IMAGE_MAX_PIXELS);
    return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG */

static void
png_on_error (png_structp png, png_const_charp message)
{
  ClipImageLoad *load = png_get_error_ptr (png);

  g_free (load->message);
  load->message = g_strdup (message);
  png_longjmp (png, 1);
}

static void
png_on_warning (png_structp png, png_const_charp message)
{
  /* Pillow ignores what libpng only warns about (bad CRCs in ancillary chunks, sRGB profile
   * mismatches...). */
}

static gboolean
load_png (ClipImageLoad *load, ClipImage *image, GError **error)
{
  png_structp png;
  png_infop info;
  png_uint_32 width, height;
  int bit_depth, color_type, channels;
  gsize rowbytes, pixels_size;
  png_bytep *rows;

  png = png_create_read_struct (PNG_LIBPNG_VER_STRING, load, png_on_error, png_on_warning);
  info = png ? png_create_info_struct (png) : NULL;
  if (!info) {
    png_destroy_read_struct (&png, NULL, NULL);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: out of memory starting libpng",
                 load->path);
    return FALSE;
  }
  if (setjmp (png_jmpbuf (png))) {
    png_destroy_read_struct (&png, &info, NULL);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: bad PNG file: %s", load->path,
                 load->message ? load->message : "unknown libpng error");
    return FALSE;
  }

  png_init_io (png, load->file);
  png_read_info (png, info);
  png_get_IHDR (png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);

  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (png);      /* may add an alpha channel from tRNS: dropped below */
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8 (png);
  if (bit_depth == 16 && color_type != PNG_COLOR_TYPE_GRAY)
    png_set_strip_16 (png);            /* keeps the high byte, as Pillow's ";16B" unpackers */
  png_set_interlace_handling (png);
  png_read_update_info (png, info);

  channels = png_get_channels (png, info);
  rowbytes = png_get_rowbytes (png, info);
  bit_depth = png_get_bit_depth (png, info);

  if (!check_size (load, width, height, error)) {
    png_destroy_read_struct (&png, &info, NULL);
    return FALSE;
  }
  if (channels < 1 || channels > 4 || rowbytes < (gsize) width * channels * (bit_depth / 8)) {
    png_destroy_read_struct (&png, &info, NULL);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "%s: unexpected PNG layout (%d channels of %d bits)", load->path, channels,
                 bit_depth);
    return FALSE;
  }

  /* Rows and their pointers in one block, freed by the caller (also after a longjmp). The
   * pointers start at the next multiple of their alignment after the pixels (rowbytes x height
   * need not be one). */
  pixels_size = (rowbytes * height + G_ALIGNOF (png_bytep) - 1) / G_ALIGNOF (png_bytep)
      * G_ALIGNOF (png_bytep);
  load->raw = g_malloc (pixels_size + (gsize) height * sizeof (png_bytep));
  rows = (png_bytep *) (load->raw + pixels_size);
  for (png_uint_32 y = 0; y < height; y++)
    rows[y] = load->raw + rowbytes * y;
  png_read_image (png, rows);
  png_read_end (png, NULL);
  png_destroy_read_struct (&png, &info, NULL);

  load->rgb = g_malloc ((gsize) width * height * 3);
  for (png_uint_32 y = 0; y < height; y++) {
    const uint8_t *s = load->raw + rowbytes * y;
    uint8_t *d = load->rgb + (gsize) width * 3 * y;

    for (png_uint_32 x = 0; x < width; x++, d += 3) {
      if (bit_depth == 16) {             /* grey only: Pillow's I -> RGB clamps */
        unsigned v = (unsigned) s[2 * x] << 8 | s[2 * x + 1];

        d[0] = d[1] = d[2] = v > 255 ? 255 : (uint8_t) v;
      } else if (channels <= 2) {        /* grey, grey + alpha */
        d[0] = d[1] = d[2] = s[channels * x];
      } else {                           /* RGB, RGBA */
        d[0] = s[channels * x + 0];
        d[1] = s[channels * x + 1];
        d[2] = s[channels * x + 2];
      }
    }
  }
  image->width = width;
  image->height = height;
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* JPEG */

typedef struct {
  struct jpeg_error_mgr pub;
  ClipImageLoad *load;
} ClipJpegError;

static void
jpeg_on_error (j_common_ptr cinfo)
{
  ClipJpegError *err = (ClipJpegError *) cinfo->err;
  char buffer[JMSG_LENGTH_MAX];

  cinfo->err->format_message (cinfo, buffer);
  g_free (err->load->message);
  err->load->message = g_strdup (buffer);
  longjmp (err->load->jmp, 1);
}

static void
jpeg_on_message (j_common_ptr cinfo, int msg_level)
{
  /* A truncated file is only a warning to libjpeg, which pads it with grey; Pillow refuses it
   * ("image file is truncated"), and so do we. Other warnings are ignored, as Pillow does. */
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    cinfo->err->error_exit (cinfo);
}

/* Pillow's cmyk2rgb: x * (255 - k) / 255 with its rounding. */
static inline uint8_t
cmyk_channel (int c, int nk)
{
  int t = c * nk + 128;
  int v = nk - (((t >> 8) + t) >> 8);

  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t) v;
}

static gboolean
load_jpeg (ClipImageLoad *load, ClipImage *image, GError **error)
{
  struct jpeg_decompress_struct cinfo;
  ClipJpegError err;
  int width, height, components;
  gsize row_bytes;

  cinfo.err = jpeg_std_error (&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  err.load = load;
  if (setjmp (load->jmp)) {
    jpeg_destroy_decompress (&cinfo);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT, "%s: bad JPEG file: %s", load->path,
                 load->message ? load->message : "unknown libjpeg error");
    return FALSE;
  }
  jpeg_create_decompress (&cinfo);
  jpeg_stdio_src (&cinfo, load->file);
  jpeg_read_header (&cinfo, TRUE);

  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo.out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      jpeg_destroy_decompress (&cinfo);
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                   "%s: unsupported JPEG colour space (%d components)", load->path,
                   cinfo.num_components);
      return FALSE;
  }
  jpeg_start_decompress (&cinfo);
  width = cinfo.output_width;
  height = cinfo.output_height;
  components = cinfo.output_components;
  if (!check_size (load, width, height, error)) {
    jpeg_destroy_decompress (&cinfo);
    return FALSE;
  }

  row_bytes = (gsize) width * components;
  load->raw = g_malloc (row_bytes * height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = load->raw + row_bytes * cinfo.output_scanline;

    jpeg_read_scanlines (&cinfo, &row, 1);
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);

  load->rgb = g_malloc ((gsize) width * height * 3);
  for (gsize i = 0; i < (gsize) width * height; i++) {
    const uint8_t *s = load->raw + i * components;
    uint8_t *d = load->rgb + i * 3;

    if (components == 1) {
      d[0] = d[1] = d[2] = s[0];
    } else if (components == 3) {
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    } else {
      /* Pillow assumes Adobe's inverted CMYK for every 4-component JPEG. */
      int nk = s[3];                  /* 255 - (255 - s[3]) */

      d[0] = cmyk_channel (255 - s[0], nk);
      d[1] = cmyk_channel (255 - s[1], nk);
      d[2] = cmyk_channel (255 - s[2], nk);
    }
  }
  image->width = width;
  image->height = height;
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Binary PPM (P6) / PGM (P5) */

/* Next header integer, skipping whitespace and '#' comments. -1 if there is none. */
static int64_t
pnm_read_int (const uint8_t *data, gsize size, gsize *pos)
{
  int64_t v = -1;

  for (;;) {
    while (*pos < size && g_ascii_isspace (data[*pos]))
      (*pos)++;
    if (*pos < size && data[*pos] == '#') {
      while (*pos < size && data[*pos] != '\n' && data[*pos] != '\r')
        (*pos)++;
      continue;
    }
    break;
  }
  while (*pos < size && g_ascii_isdigit (data[*pos])) {
    v = (v < 0 ? 0 : v) * 10 + (data[*pos] - '0');
    (*pos)++;
    if (v > G_MAXINT)
      return -1;
  }
  return v;
}

static gboolean
load_pnm (ClipImageLoad *load, ClipImage *image, GError **error)
{
  char *contents = NULL;
  gsize size, pos = 2, channels, n_pixels;
  const uint8_t *data;
  int64_t width, height, maxval;
  GError *local = NULL;

  if (!g_file_get_contents (load->path, &contents, &size, &local)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", load->path, local->message);
    g_error_free (local);
    return FALSE;
  }
  data = (const uint8_t *) contents;
  channels = data[1] == '6' ? 3 : 1;

  width = pnm_read_int (data, size, &pos);
  height = pnm_read_int (data, size, &pos);
  maxval = pnm_read_int (data, size, &pos);
  if (width < 0 || height < 0 || maxval < 0 || pos >= size || !g_ascii_isspace (data[pos])) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
                 "%s: bad P%c header (expected width, height and maxval)", load->path, data[1]);
    goto fail;
  }
  pos++;                               /* the single whitespace before the samples */
  if (maxval != 255) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "%s: maxval %" G_GINT64_FORMAT " is not supported (only 255)", load->path,
                 maxval);
    goto fail;
  }
  if (!check_size (load, width, height, error))
    goto fail;
  n_pixels = (gsize) width * height;
  if (size - pos < n_pixels * channels) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CORRUPT,
                 "%s: truncated P%c data (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes)",
                 load->path, data[1], size - pos, n_pixels * channels);
    goto fail;
  }

  load->rgb = g_malloc (n_pixels * 3);
  if (channels == 3) {
    memcpy (load->rgb, data + pos, n_pixels * 3);
  } else {
    for (gsize i = 0; i < n_pixels; i++)
      load->rgb[3 * i] = load->rgb[3 * i + 1] = load->rgb[3 * i + 2] = data[pos + i];
  }
  image->width = width;
  image->height = height;
  g_free (contents);
  return TRUE;

fail:
  g_free (contents);
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */

gboolean
clip_image_load (const char *path, ClipImage *image, GError **error)
{
  ClipImageLoad load = { .path = path };
  uint8_t magic[8] = { 0 };
  gsize n_magic;
  gboolean ok = FALSE;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (image != NULL, FALSE);

  image->width = image->height = 0;
  image->rgb = NULL;

  load.file = fopen (path, "rb");
  if (!load.file) {
    int saved = errno;

    g_set_error (error, CLIP_ERROR, saved == ENOENT ? CLIP_ERROR_NOT_FOUND : CLIP_ERROR_IO,
                 "cannot open image %s: %s", path, g_strerror (saved));
    return FALSE;
  }
  n_magic = fread (magic, 1, sizeof magic, load.file);
  rewind (load.file);

  if (n_magic == 8 && png_sig_cmp (magic, 0, 8) == 0) {
    ok = load_png (&load, image, error);
  } else if (n_magic >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) {
    ok = load_jpeg (&load, image, error);
  } else if (n_magic >= 3 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6')
             && g_ascii_isspace (magic[2])) {
    ok = load_pnm (&load, image, error);
  } else if (n_magic >= 2 && magic[0] == 'P' && magic[1] >= '1' && magic[1] <= '7') {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "%s: netpbm format P%c is not supported (only binary P5/P6)", path, magic[1]);
  } else {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "%s: not a PNG, JPEG or binary PPM/PGM image", path);
  }

  fclose (load.file);
  g_free (load.raw);
  g_free (load.message);
  if (ok) {
    image->rgb = load.rgb;
  } else {
    g_free (load.rgb);
    image->width = image->height = 0;
  }
  return ok;
}

void
clip_image_clear (ClipImage *image)
{
  g_return_if_fail (image != NULL);

  g_clear_pointer (&image->rgb, g_free);
  image->width = image->height = 0;
}
