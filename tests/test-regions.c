/* test-regions.c — what the model sees: the crop policy, and regions of interest (issue 7).
 *
 * The element is driven by GstHarness on a random-weight "tiny" checkpoint made at test start
 * (tests/reference/make_checkpoint.py). Expected scores are the engine's, run here directly on
 * the same pixels: the frame (or the region's rectangle, clamped to the frame, cut out of it)
 * through clip_preprocess_rgb8_with_crop with the same policy, clip_embed_image, clip_embed_text
 * and clip_score. The engine itself is checked against Pillow/numpy by test_preprocess.py and
 * test_parity.py; tests/test_regions.py checks the same against `clip-infer --crop` on cut-out
 * images.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-test-util.h"

#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

#include "clip.h"
#include "cliplabels.h"

#define META_NAME "GstClipClassifyMeta"
#define LABELS "cat, dog, a red car, person"
#define SCORE_TOLERANCE 1e-5

static char *tiny_model;
static ClipModel *ref_model;
static ClipContext *ref_ctx;

/* ------------------------------------------------------------------------------------------ */
/* Frames */

typedef struct {
  guint8 *rgb;                /* tight rows: stride = 3 * width */
  int width, height;
} Frame;

static Frame *
frame_new (int width, int height, guint32 seed)
{
  Frame *frame = g_new0 (Frame, 1);
  GRand *rand = g_rand_new_with_seed (seed);

  frame->width = width;
  frame->height = height;
  frame->rgb = g_malloc ((gsize) width * height * 3);
  /* structure that differs from place to place (so regions differ), plus noise */
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      for (int c = 0; c < 3; c++)
        frame->rgb[(y * width + x) * 3 + c] =
            (guint8) CLAMP ((x * 255 / width) * (c == 0) + (y * 255 / height) * (c == 1)
                            + (((x / 8) ^ (y / 8)) & 1) * 90 * (c == 2)
                            + g_rand_int_range (rand, -40, 40), 0, 255);
  g_rand_free (rand);
  return frame;
}

static void
frame_free (Frame *frame)
{
  g_free (frame->rgb);
  g_free (frame);
}

static GstBuffer *
frame_to_buffer (const Frame *frame, GstClockTime pts)
{
  GstVideoInfo info;
  GstVideoFrame out;
  GstBuffer *buffer;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, frame->width, frame->height);
  buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_memset (buffer, 0, 0, info.size);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 30;
  g_assert_true (gst_video_frame_map (&out, &info, buffer, GST_MAP_WRITE));
  for (int y = 0; y < frame->height; y++)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&out, 0)
            + y * GST_VIDEO_FRAME_PLANE_STRIDE (&out, 0),
            frame->rgb + (gsize) y * frame->width * 3, (gsize) frame->width * 3);
  gst_video_frame_unmap (&out);
  return buffer;
}

static const char *
caps_string (int width, int height)
{
  static char caps[256];

  g_snprintf (caps, sizeof caps, "video/x-raw,format=RGB,width=%d,height=%d,framerate=30/1",
              width, height);
  return caps;
}

/* ------------------------------------------------------------------------------------------ */
/* Expected values: the engine, run directly */

/* Text embeddings of LABELS-like sets with the default template, by label text. */
static float *
text_embeddings (const char *labels, guint *n_out)
{
  int dim = clip_model_get_embedding_dim (ref_model);
  g_auto (GStrv) parsed = clip_labels_parse (labels);
  guint n = g_strv_length (parsed);
  char **prompts = g_new0 (char *, n + 1);
  float *texts = g_new (float, (gsize) MAX (n, 1) * dim);
  GError *error = NULL;

  for (guint i = 0; i < n; i++) {
    prompts[i] = clip_format_prompt (CLIP_DEFAULT_TEMPLATE, parsed[i], &error);
    g_assert_no_error (error);
  }
  g_assert_true (clip_embed_text (ref_ctx, (const char *const *) prompts, (int) n, texts,
                                  &error));
  g_assert_no_error (error);
  g_strfreev (prompts);
  *n_out = n;
  return texts;
}

/* Scores of the rectangle (x, y, width, height) of frame (already clamped) with crop. */
static double *
expected_scores (const Frame *frame, int x, int y, int width, int height, ClipCrop crop,
                 const char *labels, guint *n_out)
{
  int size = clip_model_get_image_size (ref_model), dim = clip_model_get_embedding_dim (ref_model);
  float *pixels = g_new (float, 3 * size * size), *image = g_new (float, dim);
  guint n;
  float *texts = text_embeddings (labels, &n), *probs = g_new (float, MAX (n, 1));
  double *scores = g_new (double, MAX (n, 1));
  GError *error = NULL;

  g_assert_true (clip_preprocess_rgb8_with_crop (clip_model_get_preprocess_config (ref_model),
                                                 crop, frame->rgb + ((gsize) y * frame->width + x) * 3,
                                                 width, height, frame->width * 3, pixels,
                                                 &error));
  g_assert_no_error (error);
  clip_embed_image (ref_ctx, pixels, image);
  clip_score (ref_model, image, texts, (int) n, NULL, probs);
  for (guint i = 0; i < n; i++)
    scores[i] = probs[i];
  g_free (pixels);
  g_free (image);
  g_free (texts);
  g_free (probs);
  *n_out = n;
  return scores;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading results */

static const GValue *
field (const GstStructure *s, const char *name, GType type)
{
  const GValue *value = gst_structure_get_value (s, name);

  if (!value)
    g_error ("field %s missing from %" GST_PTR_FORMAT, name, s);
  g_assert_cmpstr (G_VALUE_TYPE_NAME (value), ==, g_type_name (type));
  return value;
}

static double *
double_array (const GstStructure *s, const char *name, guint *n_out)
{
  const GValue *array = field (s, name, GST_TYPE_ARRAY);
  guint n = gst_value_array_get_size (array);
  double *numbers = g_new0 (double, MAX (n, 1));

  for (guint i = 0; i < n; i++)
    numbers[i] = g_value_get_double (gst_value_array_get_value (array, i));
  *n_out = n;
  return numbers;
}

/* The scores field of s equals the engine's for that rectangle and crop. */
static gboolean
scores_match (const GstStructure *s, const Frame *frame, int x, int y, int width, int height,
              ClipCrop crop)
{
  guint n_got, n_want;
  g_autofree double *got = double_array (s, "scores", &n_got);
  g_autofree double *want = expected_scores (frame, x, y, width, height, crop, LABELS, &n_want);

  g_assert_cmpuint (n_got, ==, n_want);
  for (guint i = 0; i < n_got; i++) {
    if (fabs (got[i] - want[i]) > SCORE_TOLERANCE) {
      g_test_message ("score %u: %.9f, engine says %.9f", i, got[i], want[i]);
      return FALSE;
    }
  }
  return TRUE;
}

static const GstStructure *
buffer_result (GstBuffer *buffer)
{
  GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer, META_NAME);

  return meta ? gst_custom_meta_get_structure (meta) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Harness */

typedef struct {
  GstHarness *h;
  GstElement *element;
  GstBus *bus;
} Fixture;

static void
fixture_setup (Fixture *f, const char *first_property, ...)
{
  va_list args;

  f->element = gst_object_ref_sink (gst_element_factory_make ("clipclassify", NULL));
  g_assert_nonnull (f->element);
  g_object_set (f->element, "model", tiny_model, "threads", 1, "labels", LABELS, NULL);
  va_start (args, first_property);
  if (first_property)
    g_object_set_valist (G_OBJECT (f->element), first_property, args);
  va_end (args);
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);
  f->h = gst_harness_new_with_element (f->element, "sink", "src");
}

static void
fixture_teardown (Fixture *f)
{
  gst_harness_teardown (f->h);
  gst_element_set_bus (f->element, NULL);
  gst_object_unref (f->bus);
  gst_object_unref (f->element);
}

/* Pushes buffer and pulls it back (sync mode: with its result). */
static GstBuffer *
push_pull (Fixture *f, GstBuffer *buffer)
{
  g_assert_cmpint (gst_harness_push (f->h, buffer), ==, GST_FLOW_OK);
  return gst_harness_pull (f->h);
}

static void
drop_messages (Fixture *f)
{
  GstMessage *message;

  while ((message = gst_bus_pop (f->bus)))
    gst_message_unref (message);
}

/* ------------------------------------------------------------------------------------------ */
/* Crop policy */

static void
test_crop_property (void)
{
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (element), "crop");
  GEnumClass *klass;
  int crop;

  g_assert_nonnull (pspec);
  g_assert_true (pspec->flags & GST_PARAM_MUTABLE_PLAYING);
  g_assert_true (pspec->flags & G_PARAM_READWRITE);
  g_assert_cmpstr (g_param_spec_get_blurb (pspec), !=, NULL);
  klass = g_type_class_ref (pspec->value_type);
  g_assert_cmpstr (g_enum_get_value (klass, 0)->value_nick, ==, "center");
  g_assert_cmpstr (g_enum_get_value (klass, 1)->value_nick, ==, "squash");
  g_assert_cmpstr (g_enum_get_value (klass, 2)->value_nick, ==, "pad");
  g_assert_cmpint (G_PARAM_SPEC_ENUM (pspec)->default_value, ==, 0);
  g_object_get (element, "crop", &crop, NULL);
  g_assert_cmpint (crop, ==, 0);
  gst_util_set_object_arg (G_OBJECT (element), "crop", "pad");
  g_object_get (element, "crop", &crop, NULL);
  g_assert_cmpint (crop, ==, 2);
  g_type_class_unref (klass);
  gst_object_unref (element);
}

/* The frame's scores are the engine's with the policy set, on a landscape and a portrait frame;
 * a change while playing applies from the next frame. */
static void
test_crop_frame (void)
{
  const int sizes[][2] = { { 96, 40 }, { 30, 70 } };

  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++) {
    int width = sizes[s][0], height = sizes[s][1];
    Frame *frame = frame_new (width, height, 7 + s);
    Fixture f;
    double *center = NULL;

    fixture_setup (&f, "mode", 1, NULL);
    gst_harness_set_src_caps_str (f.h, caps_string (width, height));
    for (int crop = CLIP_CROP_CENTER; crop <= CLIP_CROP_PAD; crop++) {
      GstBuffer *out;
      const GstStructure *s_result;
      guint n;

      g_object_set (f.element, "crop", crop, NULL);
      out = push_pull (&f, frame_to_buffer (frame, crop * GST_SECOND));
      s_result = buffer_result (out);
      g_assert_nonnull (s_result);
      g_assert_true (scores_match (s_result, frame, 0, 0, width, height, crop));
      if (crop == CLIP_CROP_CENTER) {
        center = double_array (s_result, "scores", &n);
      } else {
        /* the policy changed what the model saw */
        g_autofree double *other = double_array (s_result, "scores", &n);
        gboolean same = TRUE;

        for (guint i = 0; i < n; i++)
          same = same && other[i] == center[i];
        g_assert_false (same);
      }
      gst_buffer_unref (out);
    }
    drop_messages (&f);
    g_free (center);
    fixture_teardown (&f);
    frame_free (frame);
  }
}

int
main (int argc, char **argv)
{
  const char *build_dir = g_getenv ("CLIP_TEST_BUILD_DIR");
  const char *tiny_options[] = { "--preset", "tiny", NULL };
  ClipContextParams params = clip_context_params_default ();
  char *fixture_dir;
  GError *error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  fixture_dir = g_build_filename (build_dir ? build_dir : g_get_tmp_dir (), "regions-fixtures",
                                  NULL);
  tiny_model = g_build_filename (fixture_dir, "tiny", NULL);
  clip_test_make_checkpoint (tiny_model, tiny_options);
  ref_model = clip_model_load (tiny_model, &error);
  g_assert_no_error (error);
  params.n_threads = 1;
  ref_ctx = clip_context_new (ref_model, &params, &error);
  g_assert_no_error (error);

  g_test_add_func ("/regions/crop/property", test_crop_property);
  g_test_add_func ("/regions/crop/frame", test_crop_frame);

  status = g_test_run ();

  clip_context_free (ref_ctx);
  clip_model_unref (ref_model);
  g_free (tiny_model);
  g_free (fixture_dir);
  gst_deinit ();
  return status;
}
