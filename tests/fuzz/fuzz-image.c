/* fuzz-image.c — the image loader of the tools (tools/image-io.c): PNG, JPEG, PPM/PGM.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is an image file (corpus/image: every PNG colour type and depth, interlaced or
 * not; baseline, progressive, grey and CMYK JPEGs; P6 and P5). What loads is preprocessed as
 * CLIPImageProcessor's defaults do it (224 x 224 crop), when it is not too large to do at every
 * input.
 */
#include "fuzz-util.h"

#include "clip.h"
#include "image-io.h"

static FuzzFile image_file;
static ClipPreprocessConfig config;
static float *pixels;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  GError *error = NULL;

  fuzz_init_glib ();
  fuzz_file_init (&image_file, "image");
  /* No preprocessor_config.json: CLIPImageProcessor's defaults. */
  if (!clip_preprocess_config_load_dir ("/proc/self/fd/-1", &config, &error))
    abort ();
  pixels = g_new (float, 3 * 224 * 224);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ClipImage image;
  GError *error = NULL;

  fuzz_file_set (&image_file, data, size);
  if (!clip_image_load (image_file.path, &image, &error)) {
    g_assert (error != NULL && strstr (error->message, image_file.path) != NULL);
    g_assert (image.rgb == NULL && image.width == 0 && image.height == 0);
    g_error_free (error);
    return 0;
  }
  g_assert (image.width > 0 && image.height > 0 && image.rgb != NULL);
  /* Every pixel is there (ASan checks the last row's end). */
  volatile uint8_t last = image.rgb[(gsize) image.width * image.height * 3 - 1];
  (void) last;
  if ((gint64) image.width * image.height <= 1 << 20) {
    g_assert (clip_preprocess_rgb8 (&config, image.rgb, image.width, image.height,
                                    image.width * 3, pixels, &error));
    g_assert_no_error (error);
  }
  clip_image_clear (&image);
  return 0;
}
