/* image-io.h — image files to interleaved RGB8 for the tools, as Pillow's
 * Image.open (path).convert ("RGB") reads them (the input of HF's CLIPImageProcessor).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_IMAGE_IO_H
#define CLIP_IMAGE_IO_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  int width;
  int height;
  uint8_t *rgb;              /* height rows of width RGB triplets, 3 * width bytes apart */
} ClipImage;

/* Reads a PNG (any colour type and bit depth), a baseline or progressive JPEG (grey, YCbCr,
 * RGB, CMYK/YCCK) or a binary PPM/PGM (P6/P5, maxval 255), recognised by content. Alpha is
 * dropped, grey replicated, 16-bit samples reduced as Pillow does; an image larger than
 * Pillow's decompression-bomb limit (2 * 89,478,485 pixels) is refused, as Pillow refuses it.
 * Errors (CLIP_ERROR domain) name the file and the problem. */
gboolean clip_image_load (const char *path, ClipImage *image, GError **error);

/* Frees the pixels; the struct may be reused. */
void clip_image_clear (ClipImage *image);

G_END_DECLS

#endif /* CLIP_IMAGE_IO_H */
