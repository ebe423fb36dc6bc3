/* test-image-io.c — tools/image-io.c's PNG reader on images whose decoded pixel block is not a
 * multiple of 8 bytes, built with -fsanitize=alignment (where the compiler has it, see
 * tests/meson.build): the row pointers it keeps after the pixels were once stored misaligned
 * (UBSan: "store to misaligned address" in image-io.c), which aborts this test.
 *
 * The PNGs are written here with libpng's simplified API from known samples; each must read
 * back as Pillow's convert ("RGB") would give it: RGB as is, alpha dropped, grey replicated.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "image-io.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <png.h>
#include <string.h>

static char *scratch_dir;

static void
check_png (guint32 format, int width, int height)
{
  int channels = PNG_IMAGE_SAMPLE_CHANNELS (format);
  guint8 *samples = g_malloc ((gsize) width * height * channels);
  char *name = g_strdup_printf ("%dx%d-%dch.png", width, height, channels);
  char *path = g_build_filename (scratch_dir, name, NULL);
  png_image png;
  ClipImage image = { 0 };
  GError *error = NULL;

  for (int i = 0; i < width * height * channels; i++)
    samples[i] = (guint8) (i * 37 + 11);
  memset (&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = width;
  png.height = height;
  png.format = format;
  g_assert_true (png_image_write_to_file (&png, path, 0, samples, 0, NULL));

  g_assert_true (clip_image_load (path, &image, &error));
  g_assert_no_error (error);
  g_assert_cmpint (image.width, ==, width);
  g_assert_cmpint (image.height, ==, height);
  for (int p = 0; p < width * height; p++) {
    for (int c = 0; c < 3; c++) {
      /* grey (+ alpha): the grey sample thrice; RGB (+ alpha): the colour sample */
      guint8 want = samples[p * channels + (channels <= 2 ? 0 : c)];
      if (image.rgb[3 * p + c] != want)
        g_error ("%s: pixel %d channel %d is %u, written %u", name, p, c, image.rgb[3 * p + c],
            want);
    }
  }
  clip_image_clear (&image);
  g_unlink (path);
  g_free (path);
  g_free (name);
  g_free (samples);
}

/* Decoded blocks of 9, 45, 7, 6, 15 and 36 bytes: none a multiple of 8. */
static void
test_png_odd_blocks (void)
{
  check_png (PNG_FORMAT_RGB, 3, 1);
  check_png (PNG_FORMAT_RGB, 5, 3);
  check_png (PNG_FORMAT_GRAY, 7, 1);
  check_png (PNG_FORMAT_GA, 3, 1);
  check_png (PNG_FORMAT_GRAY, 5, 3);
  check_png (PNG_FORMAT_RGBA, 3, 3);
  check_png (PNG_FORMAT_RGB, 1, 1);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  scratch_dir = g_dir_make_tmp ("clip-test-image-io-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/image-io/png/odd-blocks", test_png_odd_blocks);
  ret = g_test_run ();

  g_rmdir (scratch_dir);
  g_free (scratch_dir);
  return ret;
}
