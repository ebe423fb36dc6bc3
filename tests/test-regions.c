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
#include "clip-gst-test-util.h"
#include "clip-test-util.h"

#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "clip.h"
#include "cliplabels.h"

#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

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
  g_auto (GStrv) parsed = clip_labels_split (labels);
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
  g_assert_true (clip_embed_image (ref_ctx, pixels, image, &error));
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
/* Reading results (also clip-gst-test-util.h) */

/* The scores field of s equals the engine's for that rectangle and crop. */
static gboolean
scores_match (const GstStructure *s, const Frame *frame, int x, int y, int width, int height,
              ClipCrop crop)
{
  guint n_got, n_want;
  g_autofree double *got = clip_test_double_array (s, "scores", &n_got);
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
      s_result = clip_test_buffer_result (out);
      g_assert_nonnull (s_result);
      g_assert_true (scores_match (s_result, frame, 0, 0, width, height, crop));
      if (crop == CLIP_CROP_CENTER) {
        center = clip_test_double_array (s_result, "scores", &n);
      } else {
        /* the policy changed what the model saw */
        g_autofree double *other = clip_test_double_array (s_result, "scores", &n);
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

/* ------------------------------------------------------------------------------------------ */
/* Regions */

static GstVideoRegionOfInterestMeta *
add_roi (GstBuffer *buffer, const char *type, guint x, guint y, guint w, guint h, gint id)
{
  GstVideoRegionOfInterestMeta *meta =
      gst_buffer_add_video_region_of_interest_meta (buffer, type, x, y, w, h);

  meta->id = id;
  return meta;
}

static const GValue *
regions_field (const GstStructure *s)
{
  return clip_test_field (s, "regions", GST_TYPE_ARRAY);
}

static guint
n_regions (const GstStructure *s)
{
  return gst_value_array_get_size (regions_field (s));
}

static const GstStructure *
region_at (const GstStructure *s, guint i)
{
  const GValue *value = gst_value_array_get_value (regions_field (s), i);

  g_assert_true (GST_VALUE_HOLDS_STRUCTURE (value));
  return gst_value_get_structure (value);
}

static guint
uint_field (const GstStructure *s, const char *name)
{
  return g_value_get_uint (clip_test_field (s, name, G_TYPE_UINT));
}

/* The label fields a frame result has, consistent with each other: scores a distribution over
 * LABELS, top-label its argmax, top lists best first. */
static void
check_label_fields (const GstStructure *s)
{
  const GValue *labels = clip_test_field (s, "labels", GST_TYPE_ARRAY);
  guint n, n_top;
  g_autofree double *scores = clip_test_double_array (s, "scores", &n);
  g_autofree double *top = clip_test_double_array (s, "top-scores", &n_top);
  double sum = 0.0, best = -1.0;
  guint best_i = 0;

  g_assert_cmpuint (gst_value_array_get_size (labels), ==, n);
  g_assert_cmpuint (gst_value_array_get_size (clip_test_field (s, "top-labels", GST_TYPE_ARRAY)), ==,
                    n_top);
  for (guint i = 0; i < n; i++) {
    sum += scores[i];
    if (scores[i] > best) {
      best = scores[i];
      best_i = i;
    }
  }
  g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-4);
  g_assert_cmpstr (g_value_get_string (clip_test_field (s, "top-label", G_TYPE_STRING)), ==,
                   g_value_get_string (gst_value_array_get_value (labels, best_i)));
  g_assert_cmpfloat (g_value_get_double (clip_test_field (s, "top-score", G_TYPE_DOUBLE)), ==, best);
  g_assert_cmpuint (n_top, >, 0);
  g_assert_cmpfloat (top[0], ==, best);
}

static const char *const frame_label_fields[] = {
  "labels", "scores", "top-labels", "top-scores", "top-label", "top-score",
};

static void
assert_no_frame_labels (const GstStructure *s)
{
  for (gsize i = 0; i < G_N_ELEMENTS (frame_label_fields); i++)
    g_assert_false (gst_structure_has_field (s, frame_label_fields[i]));
}

/* Region i of s is this rectangle (already clamped), with the engine's scores for it. */
static void
check_region (const GstStructure *s, guint i, gint id, const char *type, guint x, guint y,
              guint w, guint h, const Frame *frame, ClipCrop crop)
{
  const GstStructure *r = region_at (s, i);

  g_assert_cmpstr (gst_structure_get_name (r), ==, "clipclassify-region");
  g_assert_cmpint (g_value_get_int (clip_test_field (r, "id", G_TYPE_INT)), ==, id);
  g_assert_cmpstr (g_value_get_string (clip_test_field (r, "roi-type", G_TYPE_STRING)), ==, type);
  g_assert_cmpuint (uint_field (r, "x"), ==, x);
  g_assert_cmpuint (uint_field (r, "y"), ==, y);
  g_assert_cmpuint (uint_field (r, "width"), ==, w);
  g_assert_cmpuint (uint_field (r, "height"), ==, h);
  check_label_fields (r);
  g_assert_true (scores_match (r, frame, (int) x, (int) y, (int) w, (int) h, crop));
  /* a region carries no analysis or carrier fields: those are the result's */
  g_assert_false (gst_structure_has_field (r, "analysed-pts"));
  g_assert_false (gst_structure_has_field (r, "timestamp"));
}

/* The one clipclassify message on the bus, or NULL; others are dropped. */
static GstMessage *
pop_result_message (Fixture *f)
{
  GstMessage *found = NULL, *message;

  while ((message = gst_bus_pop_filtered (f->bus, GST_MESSAGE_ELEMENT))) {
    if (gst_structure_has_name (gst_message_get_structure (message), "clipclassify")) {
      g_assert_null (found);
      found = message;
    } else {
      gst_message_unref (message);
    }
  }
  return found;
}

static void
test_region_properties (void)
{
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  GObjectClass *klass = G_OBJECT_GET_CLASS (element);
  GParamSpec *region = g_object_class_find_property (klass, "region");
  GParamSpec *types = g_object_class_find_property (klass, "roi-types");
  GParamSpec *max = g_object_class_find_property (klass, "max-regions");
  GEnumClass *enum_class;
  char *text;
  guint n;

  g_assert_nonnull (region);
  g_assert_nonnull (types);
  g_assert_nonnull (max);
  for (GParamSpec **p = (GParamSpec *[]) { region, types, max, NULL }; *p; p++) {
    g_assert_true ((*p)->flags & GST_PARAM_MUTABLE_PLAYING);
    g_assert_true ((*p)->flags & GST_PARAM_DOC_SHOW_DEFAULT);
    g_assert_nonnull (g_param_spec_get_blurb (*p));
  }
  enum_class = g_type_class_ref (region->value_type);
  g_assert_cmpstr (g_enum_get_value (enum_class, 0)->value_nick, ==, "frame");
  g_assert_cmpstr (g_enum_get_value (enum_class, 1)->value_nick, ==, "roi");
  g_assert_cmpstr (g_enum_get_value (enum_class, 2)->value_nick, ==, "both");
  g_type_class_unref (enum_class);
  g_assert_cmpint (G_PARAM_SPEC_ENUM (region)->default_value, ==, 0);
  g_assert_cmpstr (G_PARAM_SPEC_STRING (types)->default_value, ==, "");
  g_assert_cmpuint (G_PARAM_SPEC_UINT (max)->default_value, ==, 16);
  g_assert_cmpuint (G_PARAM_SPEC_UINT (max)->minimum, ==, 1);

  g_object_get (element, "roi-types", &text, "max-regions", &n, NULL);
  g_assert_cmpstr (text, ==, "");
  g_assert_cmpuint (n, ==, 16);
  g_free (text);
  g_object_set (element, "roi-types", " person , car", "max-regions", 3, NULL);
  g_object_get (element, "roi-types", &text, "max-regions", &n, NULL);
  g_assert_cmpstr (text, ==, " person , car");   /* as set; parsed when used */
  g_assert_cmpuint (n, ==, 3);
  g_free (text);
  g_object_set (element, "roi-types", NULL, NULL);
  g_object_get (element, "roi-types", &text, NULL);
  g_assert_cmpstr (text, ==, "");
  g_free (text);
  gst_object_unref (element);
}

/* The regions of one test frame: inside, partly outside to the right and below, empty after
 * clamping (outside, zero-sized): pushed as ROI metas in this order. */
typedef struct {
  const char *type;
  guint x, y, w, h;
  gint id;
  /* after clamping; w == 0: skipped */
  guint cx, cy, cw, ch;
} Rect;

static const Rect test_rects[] = {
  { "person", 10, 8, 30, 40, 11, 10, 8, 30, 40 },       /* inside: 1200 */
  { "car", 80, 50, 40, 30, 12, 80, 50, 16, 14 },        /* right and bottom cut: 224 */
  { "dog", 0, 0, 96, 64, 13, 0, 0, 96, 64 },            /* the whole frame: 6144 */
  { "car", 100, 10, 10, 10, 14, 0, 0, 0, 0 },           /* starts right of the frame */
  { "person", 5, 5, 0, 20, 15, 0, 0, 0, 0 },            /* zero width */
  { "", 60, 2, 20, 61, 16, 60, 2, 20, 61 },             /* no type, tall: 1220 */
  { "dog", 4000000000u, 4000000000u, 400000000u, 400000000u, 17, 0, 0, 0, 0 }, /* overflow */
};

/* test_rects's non-empty regions, largest first: indices into test_rects */
static const guint test_order[] = { 2, 5, 0, 1 };

static GstBuffer *
buffer_with_rects (const Frame *frame, GstClockTime pts)
{
  GstBuffer *buffer = frame_to_buffer (frame, pts);

  for (gsize i = 0; i < G_N_ELEMENTS (test_rects); i++) {
    const Rect *r = &test_rects[i];

    add_roi (buffer, r->type, r->x, r->y, r->w, r->h, r->id);
  }
  return buffer;
}

/* region=roi and both in sync mode: every field of the message and meta, every region's
 * rectangle and scores (the engine's on the clamped cut-out, with each crop policy), and the
 * param each ROI meta gets. */
static void
test_sync_regions (void)
{
  Frame *frame = frame_new (96, 64, 21);

  for (int region = 1; region <= 2; region++) {
    for (int crop = CLIP_CROP_CENTER; crop <= CLIP_CROP_PAD; crop++) {
      Fixture f;
      GstBuffer *out;
      const GstStructure *meta, *message;
      GstMessage *msg;

      fixture_setup (&f, "mode", 1, "region", region, "crop", crop, NULL);
      gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
      out = push_pull (&f, buffer_with_rects (frame, 5 * GST_SECOND));
      meta = clip_test_buffer_result (out);
      g_assert_nonnull (meta);

      if (region == 1) {
        assert_no_frame_labels (meta);
        /* the fields that remain, in the documented order */
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 0), ==, "analysed-pts");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 1), ==, "latency");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 2), ==, "rescored");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 3), ==, "timestamp");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 4), ==, "stream-time");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 5), ==, "running-time");
        g_assert_cmpstr (gst_structure_nth_field_name (meta, 6), ==, "regions");
        g_assert_cmpint (gst_structure_n_fields (meta), ==, 7);
      } else {
        check_label_fields (meta);
        g_assert_true (scores_match (meta, frame, 0, 0, 96, 64, crop));
        g_assert_cmpstr (gst_structure_nth_field_name (meta,
                             gst_structure_n_fields (meta) - 1), ==, "regions");
      }
      g_assert_cmpuint (g_value_get_uint64 (clip_test_field (meta, "analysed-pts", G_TYPE_UINT64)), ==,
                        5 * GST_SECOND);
      g_assert_cmpuint (g_value_get_uint64 (clip_test_field (meta, "timestamp", G_TYPE_UINT64)), ==,
                        5 * GST_SECOND);
      g_assert_cmpuint (g_value_get_uint64 (clip_test_field (meta, "latency", G_TYPE_UINT64)), >, 0);
      g_assert_false (g_value_get_boolean (clip_test_field (meta, "rescored", G_TYPE_BOOLEAN)));

      g_assert_cmpuint (n_regions (meta), ==, G_N_ELEMENTS (test_order));
      for (guint i = 0; i < G_N_ELEMENTS (test_order); i++) {
        const Rect *r = &test_rects[test_order[i]];

        check_region (meta, i, r->id, r->type, r->cx, r->cy, r->cw, r->ch, frame, crop);
      }

      /* the message: the same fields */
      msg = pop_result_message (&f);
      g_assert_nonnull (msg);
      message = gst_message_get_structure (msg);
      clip_test_assert_same_fields (message, meta);
      gst_message_unref (msg);

      /* each analysed ROI meta has its region's label fields as a param; the empty ones none */
      {
        gpointer state = NULL;
        GstMeta *m;
        guint k = 0;

        while ((m = gst_buffer_iterate_meta_filtered (out, &state,
                    GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
          GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
          GstStructure *param = gst_video_region_of_interest_meta_get_param (roi,
                                                                            "clipclassify");
          const Rect *r = &test_rects[k++];

          g_assert_cmpint (roi->id, ==, r->id);
          if (r->cw == 0) {
            g_assert_null (param);
            continue;
          }
          g_assert_nonnull (param);
          g_assert_cmpint (g_list_length (roi->params), ==, 1);
          for (guint i = 0; i < G_N_ELEMENTS (test_order); i++) {
            if (test_rects[test_order[i]].id == r->id) {
              const GstStructure *reg = region_at (meta, i);

              /* exactly the region's label fields: all of its fields but the six of
               * its rectangle (whatever a frame result has besides, negative labels...) */
              g_assert_cmpint (gst_structure_n_fields (param), ==,
                               gst_structure_n_fields (reg) - 6);
              for (gsize j = 0; j < G_N_ELEMENTS (frame_label_fields); j++)
                g_assert_true (gst_structure_has_field (param, frame_label_fields[j]));
              for (int j = 0; j < gst_structure_n_fields (param); j++) {
                const char *name = gst_structure_nth_field_name (param, j);

                g_assert_cmpint (gst_value_compare (gst_structure_get_value (param, name),
                        gst_structure_get_value (reg, name)), ==, GST_VALUE_EQUAL);
              }
            }
          }
        }
        g_assert_cmpuint (k, ==, G_N_ELEMENTS (test_rects));
      }

      /* the same buffer again (say, a second pass): the param is replaced, not stacked */
      {
        GstBuffer *again = gst_buffer_copy (out);
        GstBuffer *out2 = push_pull (&f, again);
        GstVideoRegionOfInterestMeta *roi = gst_buffer_get_video_region_of_interest_meta_id (out2,
                                                                                           11);

        g_assert_cmpint (g_list_length (roi->params), ==, 1);
        gst_buffer_unref (out2);
      }
      gst_buffer_unref (out);
      drop_messages (&f);
      fixture_teardown (&f);
    }
  }
  frame_free (frame);
}

/* roi-types filters by type (trimmed, "" = all); max-regions keeps the largest, ties in meta
 * order. */
static void
test_region_filters (void)
{
  Frame *frame = frame_new (96, 64, 22);
  Fixture f;
  GstBuffer *out, *in;
  const GstStructure *meta;

  fixture_setup (&f, "mode", 1, "region", 1, "roi-types", " car,person ,", NULL);
  gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
  out = push_pull (&f, buffer_with_rects (frame, 0));
  meta = clip_test_buffer_result (out);
  g_assert_cmpuint (n_regions (meta), ==, 2);
  check_region (meta, 0, 11, "person", 10, 8, 30, 40, frame, CLIP_CROP_CENTER);
  check_region (meta, 1, 12, "car", 80, 50, 16, 14, frame, CLIP_CROP_CENTER);
  gst_buffer_unref (out);

  /* the largest two */
  g_object_set (f.element, "roi-types", "", "max-regions", 2, NULL);
  out = push_pull (&f, buffer_with_rects (frame, 1));
  meta = clip_test_buffer_result (out);
  g_assert_cmpuint (n_regions (meta), ==, 2);
  check_region (meta, 0, 13, "dog", 0, 0, 96, 64, frame, CLIP_CROP_CENTER);
  check_region (meta, 1, 16, "", 60, 2, 20, 61, frame, CLIP_CROP_CENTER);
  /* ... and only those got a param */
  g_assert_nonnull (gst_video_region_of_interest_meta_get_param (
          gst_buffer_get_video_region_of_interest_meta_id (out, 13), "clipclassify"));
  g_assert_null (gst_video_region_of_interest_meta_get_param (
          gst_buffer_get_video_region_of_interest_meta_id (out, 11), "clipclassify"));
  gst_buffer_unref (out);

  /* top-k and threshold apply to regions as to the frame (their lists are made on the worker
   * with the values set then) */
  g_object_set (f.element, "top-k", 1, NULL);
  out = push_pull (&f, buffer_with_rects (frame, 1));
  meta = clip_test_buffer_result (out);
  for (guint i = 0; i < n_regions (meta); i++)
    g_assert_cmpuint (gst_value_array_get_size (clip_test_field (region_at (meta, i), "top-labels",
                                                       GST_TYPE_ARRAY)), ==, 1);
  gst_buffer_unref (out);
  g_object_set (f.element, "top-k", 4, "threshold", 0.999, NULL);
  out = push_pull (&f, buffer_with_rects (frame, 1));
  meta = clip_test_buffer_result (out);
  for (guint i = 0; i < n_regions (meta); i++) {
    guint n, n_top, above = 0;
    g_autofree double *scores = clip_test_double_array (region_at (meta, i), "scores", &n);
    g_autofree double *top = clip_test_double_array (region_at (meta, i), "top-scores", &n_top);

    for (guint j = 0; j < n; j++)
      above += scores[j] >= 0.999;
    g_assert_cmpuint (n_top, ==, above);
  }
  gst_buffer_unref (out);
  g_object_set (f.element, "threshold", 0.0, NULL);

  /* equal areas: the first meta wins */
  g_object_set (f.element, "max-regions", 1, NULL);
  in = frame_to_buffer (frame, 2);
  add_roi (in, "a", 0, 0, 10, 10, 1);
  add_roi (in, "b", 20, 20, 10, 10, 2);
  add_roi (in, "c", 40, 40, 5, 20, 3);
  out = push_pull (&f, in);
  meta = clip_test_buffer_result (out);
  g_assert_cmpuint (n_regions (meta), ==, 1);
  check_region (meta, 0, 1, "a", 0, 0, 10, 10, frame, CLIP_CROP_CENTER);
  gst_buffer_unref (out);

  drop_messages (&f);
  fixture_teardown (&f);
  frame_free (frame);
}

/* region=roi: a sampled frame without a region (none, filtered out, or all empty) is not
 * analysed: no inference, no message, no meta; frames with regions go on as usual. region=frame
 * ignores ROI metas altogether. */
static void
test_roi_without_regions (void)
{
  Frame *frame = frame_new (96, 64, 23);

  for (int mode = 0; mode < 2; mode++) {
    Fixture f;
    GstBuffer *in, *out;
    guint64 analysed;
    gboolean seen = FALSE;

    fixture_setup (&f, "mode", mode, "region", 1, "roi-types", "car", NULL);
    gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
    for (int i = 0; i < 3; i++) {
      in = frame_to_buffer (frame, i * GST_MSECOND);
      if (i == 1)
        add_roi (in, "person", 0, 0, 20, 20, 1);      /* filtered out */
      if (i == 2)
        add_roi (in, "car", 200, 0, 20, 20, 2);       /* empty once clamped */
      out = push_pull (&f, in);
      g_assert_null (clip_test_buffer_result (out));
      gst_buffer_unref (out);
      g_usleep (20000);
    }
    g_object_get (f.element, "frames-analysed", &analysed, NULL);
    g_assert_cmpuint (analysed, ==, 0);
    g_assert_null (pop_result_message (&f));

    /* a frame with a region is analysed (async: its result rides on a later buffer) */
    for (int i = 3; i < 400 && !seen; i++) {
      in = frame_to_buffer (frame, i * GST_MSECOND);
      if (i == 3)
        add_roi (in, "car", 10, 10, 30, 30, 3);
      out = push_pull (&f, in);
      if (clip_test_buffer_result (out)) {
        g_assert_cmpuint (g_value_get_uint64 (clip_test_field (clip_test_buffer_result (out), "analysed-pts",
                                                     G_TYPE_UINT64)), ==, 3 * GST_MSECOND);
        check_region (clip_test_buffer_result (out), 0, 3, "car", 10, 10, 30, 30, frame,
                      CLIP_CROP_CENTER);
        seen = TRUE;
      }
      gst_buffer_unref (out);
      if (!seen)
        g_usleep (10000);
    }
    g_assert_true (seen);
    g_object_get (f.element, "frames-analysed", &analysed, NULL);
    g_assert_cmpuint (analysed, ==, 1);
    drop_messages (&f);
    fixture_teardown (&f);
  }

  /* region=frame: ROI metas change nothing */
  {
    Fixture f;
    GstBuffer *out;
    const GstStructure *meta;

    fixture_setup (&f, "mode", 1, NULL);
    gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
    out = push_pull (&f, buffer_with_rects (frame, 0));
    meta = clip_test_buffer_result (out);
    g_assert_nonnull (meta);
    g_assert_false (gst_structure_has_field (meta, "regions"));
    g_assert_true (scores_match (meta, frame, 0, 0, 96, 64, CLIP_CROP_CENTER));
    g_assert_null (gst_video_region_of_interest_meta_get_param (
            gst_buffer_get_video_region_of_interest_meta_id (out, 11), "clipclassify"));
    gst_buffer_unref (out);
    drop_messages (&f);
    fixture_teardown (&f);
  }
  frame_free (frame);
}

/* Async: results ride on later buffers; their regions are the analysed frame's, and the ROI
 * metas of the carrying buffer get no param. A relabel re-scores the kept region embeddings
 * (no new frame): the same regions against the new labels. */
static void
test_async_regions (void)
{
  Frame *frame = frame_new (96, 64, 24);
  Fixture f;
  const GstStructure *meta = NULL;
  GstBuffer *out = NULL;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  int i = 0;

  fixture_setup (&f, "region", 2, NULL);
  gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
  /* a result, on some later buffer */
  while (!meta) {
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    g_clear_pointer (&out, gst_buffer_unref);
    out = push_pull (&f, buffer_with_rects (frame, i++ * GST_MSECOND));
    meta = clip_test_buffer_result (out);
    if (!meta)
      g_usleep (5000);
  }
  check_label_fields (meta);
  g_assert_true (scores_match (meta, frame, 0, 0, 96, 64, CLIP_CROP_CENTER));
  g_assert_cmpuint (n_regions (meta), ==, G_N_ELEMENTS (test_order));
  for (guint k = 0; k < G_N_ELEMENTS (test_order); k++) {
    const Rect *r = &test_rects[test_order[k]];

    check_region (meta, k, r->id, r->type, r->cx, r->cy, r->cw, r->ch, frame,
                  CLIP_CROP_CENTER);
  }
  g_assert_null (gst_video_region_of_interest_meta_get_param (
          gst_buffer_get_video_region_of_interest_meta_id (out, 11), "clipclassify"));
  gst_buffer_unref (out);
  out = NULL;

  /* new labels: a re-score of the last analysed frame, regions included, shows up without
   * another frame being analysed (not-sampled buffers carry it) */
  g_object_set (f.element, "interval", 1000000, NULL);
  drop_messages (&f);
  g_object_set (f.element, "labels", "person, car", NULL);
  meta = NULL;
  while (!meta) {
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    g_clear_pointer (&out, gst_buffer_unref);
    out = push_pull (&f, frame_to_buffer (frame, i++ * GST_MSECOND));
    meta = clip_test_buffer_result (out);
    if (meta && !g_value_get_boolean (clip_test_field (meta, "rescored", G_TYPE_BOOLEAN)))
      meta = NULL;      /* a frame's own result still under the old labels */
    if (!meta)
      g_usleep (5000);
  }
  g_assert_cmpuint (n_regions (meta), ==, G_N_ELEMENTS (test_order));
  for (guint k = 0; k < G_N_ELEMENTS (test_order); k++) {
    const Rect *r = &test_rects[test_order[k]];
    const GstStructure *reg = region_at (meta, k);
    guint n_got, n_want;
    g_autofree double *got = clip_test_double_array (reg, "scores", &n_got);
    g_autofree double *want = expected_scores (frame, (int) r->cx, (int) r->cy, (int) r->cw,
                                               (int) r->ch, CLIP_CROP_CENTER, "person, car",
                                               &n_want);

    g_assert_cmpuint (n_got, ==, 2);
    g_assert_cmpuint (n_want, ==, 2);
    for (guint j = 0; j < 2; j++)
      g_assert_cmpfloat (fabs (got[j] - want[j]), <, SCORE_TOLERANCE);
  }
  gst_buffer_unref (out);
  drop_messages (&f);
  fixture_teardown (&f);
  frame_free (frame);
}

static gboolean
has_rectangle (GstVideoOverlayComposition *composition, int x, int y, guint w, guint h)
{
  for (guint i = 0; i < gst_video_overlay_composition_n_rectangles (composition); i++) {
    gint rx, ry;
    guint rw, rh;

    gst_video_overlay_rectangle_get_render_rectangle (
        gst_video_overlay_composition_get_rectangle (composition, i), &rx, &ry, &rw, &rh);
    if (rx == x && ry == y && rw == w && rh == h)
      return TRUE;
  }
  return FALSE;
}

/* overlay: each region's box (its four edges, at the clamped rectangle) and its label tag; with
 * region=roi no label box of the frame. Blended: the pixels of a box edge change, those in the
 * middle of a big box do not. */
static void
test_region_overlay (void)
{
  Frame *frame = frame_new (160, 120, 25);

  for (int attach = 0; attach < 2; attach++) {
    Fixture f;
    GstBuffer *in, *out;
    GstVideoOverlayCompositionMeta *comp;
    int line = MAX (2, 120 / 240);

    fixture_setup (&f, "mode", 1, "region", 1, "overlay", TRUE, NULL);
    if (attach) {
      gst_harness_add_propose_allocation_meta (f.h,
          GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
      gst_harness_set_sink_caps_str (f.h,
          "video/x-raw(memory:SystemMemory, meta:GstVideoOverlayComposition),format=RGB,"
          "width=160,height=120,framerate=30/1");
    } else {
      gst_harness_set_sink_caps_str (f.h, caps_string (160, 120));
    }
    gst_harness_set_src_caps_str (f.h, caps_string (160, 120));

    in = frame_to_buffer (frame, 0);
    add_roi (in, "person", 20, 30, 100, 80, 1);
    add_roi (in, "car", 140, 100, 50, 50, 2);      /* clamped to 20x20 */
    out = push_pull (&f, in);
    g_assert_nonnull (clip_test_buffer_result (out));
    comp = gst_buffer_get_video_overlay_composition_meta (out);
    if (attach) {
      g_assert_nonnull (comp);
      /* top, bottom, left, right edges of each box */
      g_assert_true (has_rectangle (comp->overlay, 20, 30, 100, line));
      g_assert_true (has_rectangle (comp->overlay, 20, 30 + 80 - line, 100, line));
      g_assert_true (has_rectangle (comp->overlay, 20, 30 + line, line, 80 - 2 * line));
      g_assert_true (has_rectangle (comp->overlay, 20 + 100 - line, 30 + line, line,
                                    80 - 2 * line));
      g_assert_true (has_rectangle (comp->overlay, 140, 100, 20, line));
      g_assert_true (has_rectangle (comp->overlay, 140, 120 - line, 20, line));
      /* 8 edges and 2 tags, nothing else (no label box for the frame in roi mode) */
      g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (comp->overlay), ==, 10);
      for (guint i = 0; i < 10; i++) {
        gint rx, ry;
        guint rw, rh;

        gst_video_overlay_rectangle_get_render_rectangle (
            gst_video_overlay_composition_get_rectangle (comp->overlay, i), &rx, &ry, &rw, &rh);
        g_assert_cmpint (rx, >=, 0);
        g_assert_cmpint (ry, >=, 0);
        g_assert_cmpint (rx + (int) rw, <=, 160);
        g_assert_cmpint (ry + (int) rh, <=, 120);
      }
    } else {
      GstMapInfo map;
      const guint8 *px;

      g_assert_null (comp);
      g_assert_true (gst_buffer_map (out, &map, GST_MAP_READ));
      /* a pixel of the left edge: the boxes' green (0x4d, 0xd9, 0x73) */
      px = map.data + (gsize) (60 * 160 + 20) * 3;
      g_assert_cmpuint (px[0], ==, 0x4d);
      g_assert_cmpuint (px[1], ==, 0xd9);
      g_assert_cmpuint (px[2], ==, 0x73);
      /* the middle of the box: untouched */
      px = map.data + (gsize) (70 * 160 + 70) * 3;
      g_assert_cmpmem (px, 3, frame->rgb + (gsize) (70 * 160 + 70) * 3, 3);
      gst_buffer_unmap (out, &map);
    }
    gst_buffer_unref (out);

    /* a frame without regions (roi): nothing drawn any more */
    out = push_pull (&f, frame_to_buffer (frame, GST_MSECOND));
    g_assert_null (clip_test_buffer_result (out));
    g_assert_null (gst_buffer_get_video_overlay_composition_meta (out));
    gst_buffer_unref (out);
    drop_messages (&f);
    fixture_teardown (&f);
  }
  frame_free (frame);
}

/* Regions with the scoring properties: negative labels share each region's softmax, an image
 * embedding per region with `embeddings`, and with region=roi every result is posted whatever
 * changes-only says (there is no frame-level top label to compare). */
static void
test_region_scoring (void)
{
  Frame *frame = frame_new (96, 64, 26);
  int size = clip_model_get_image_size (ref_model), dim = clip_model_get_embedding_dim (ref_model);
  Fixture f;
  GstBuffer *out;
  const GstStructure *meta;
  GstMessage *msg;

  fixture_setup (&f, "mode", 1, "region", 2, "negative-labels", "a plain background",
                 "embeddings", TRUE, NULL);
  gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
  out = push_pull (&f, buffer_with_rects (frame, 0));
  meta = clip_test_buffer_result (out);
  g_assert_true (gst_structure_has_field (meta, "image-embedding"));
  for (guint i = 0; i < n_regions (meta); i++) {
    const GstStructure *r = region_at (meta, i);
    const Rect *rect = &test_rects[test_order[i]];
    const GValue *negative = clip_test_field (r, "negative-labels", GST_TYPE_ARRAY);
    const GValue *embedding = clip_test_field (r, "image-embedding", GST_TYPE_ARRAY);
    guint n, n_negative;
    g_autofree double *scores = clip_test_double_array (r, "scores", &n);
    g_autofree double *negative_scores = clip_test_double_array (r, "negative-scores", &n_negative);
    float *pixels = g_new (float, 3 * size * size), *want = g_new (float, dim);
    double sum = 0.0, worst = 0.0;
    GError *error = NULL;

    g_assert_cmpuint (gst_value_array_get_size (negative), ==, 1);
    g_assert_cmpstr (g_value_get_string (gst_value_array_get_value (negative, 0)), ==,
                     "a plain background");
    g_assert_cmpuint (n_negative, ==, 1);
    for (guint j = 0; j < n; j++)
      sum += scores[j];
    g_assert_cmpfloat_with_epsilon (sum + negative_scores[0], 1.0, 1e-4);

    /* the region's own embedding: the engine's for the clamped cut-out */
    g_assert_true (clip_preprocess_rgb8_with_crop (clip_model_get_preprocess_config (ref_model),
        CLIP_CROP_CENTER, frame->rgb + ((gsize) rect->cy * frame->width + rect->cx) * 3,
        (int) rect->cw, (int) rect->ch, frame->width * 3, pixels, &error));
    g_assert_true (clip_embed_image (ref_ctx, pixels, want, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (gst_value_array_get_size (embedding), ==, (guint) dim);
    for (int d = 0; d < dim; d++)
      worst = MAX (worst, fabs (g_value_get_float (gst_value_array_get_value (embedding, d))
                                - want[d]));
    g_assert_cmpfloat (worst, <, 1e-5);
    g_free (pixels);
    g_free (want);
  }
  gst_buffer_unref (out);
  drop_messages (&f);
  fixture_teardown (&f);

  /* json-location: the regions as JSON objects */
  {
    char *path = g_build_filename (g_get_tmp_dir (), "clipclassify-regions-test.jsonl", NULL);
    char *contents = NULL;
    JsonParser *parser = json_parser_new ();
    JsonArray *regions;
    GError *error = NULL;

    g_remove (path);
    fixture_setup (&f, "mode", 1, "region", 1, "json-location", path, NULL);
    gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
    gst_buffer_unref (push_pull (&f, buffer_with_rects (frame, 0)));
    drop_messages (&f);
    fixture_teardown (&f);
    g_assert_true (g_file_get_contents (path, &contents, NULL, &error));
    g_assert_true (json_parser_load_from_data (parser, contents, -1, &error));
    g_assert_no_error (error);
    regions = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                            "regions");
    g_assert_cmpuint (json_array_get_length (regions), ==, G_N_ELEMENTS (test_order));
    for (guint i = 0; i < G_N_ELEMENTS (test_order); i++) {
      JsonObject *r = json_array_get_object_element (regions, i);

      g_assert_cmpint (json_object_get_int_member (r, "id"), ==, test_rects[test_order[i]].id);
      g_assert_cmpint (json_object_get_int_member (r, "width"), ==,
                       test_rects[test_order[i]].cw);
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (r, "scores")), ==,
                        4);
    }
    g_object_unref (parser);
    g_free (contents);
    g_remove (path);
    g_free (path);
  }

  /* region=roi with changes-only and smoothing: every result goes out */
  fixture_setup (&f, "mode", 1, "region", 1, "changes-only", TRUE, "smoothing", 1.0, NULL);
  gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
  for (int i = 0; i < 3; i++) {
    out = push_pull (&f, buffer_with_rects (frame, i * GST_MSECOND));
    g_assert_nonnull (clip_test_buffer_result (out));
    gst_buffer_unref (out);
    msg = pop_result_message (&f);
    g_assert_nonnull (msg);
    g_assert_true (gst_structure_has_field (gst_message_get_structure (msg), "regions"));
    gst_message_unref (msg);
  }
  fixture_teardown (&f);
  frame_free (frame);
}

#ifdef HAVE_GST_ANALYTICS
/* ------------------------------------------------------------------------------------------ */
/* GstAnalytics (GStreamer >= 1.24 builds) */

static guint
add_od (GstBuffer *buffer, const char *type, gint x, gint y, gint w, gint h)
{
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buffer);
  GstAnalyticsODMtd od;

  if (!rmeta)
    rmeta = gst_buffer_add_analytics_relation_meta (buffer);
  g_assert_true (gst_analytics_relation_meta_add_od_mtd (rmeta, g_quark_from_string (type), x, y,
                                                         w, h, 0.75f, &od));
  return gst_analytics_mtd_get_id (&od);
}

/* The ClsMtd holds the label fields of s: every label, best first, its probability as level;
 * class 0 is top-label. */
static void
check_cls (GstAnalyticsClsMtd *cls, const GstStructure *s)
{
  const GValue *labels = clip_test_field (s, "labels", GST_TYPE_ARRAY);
  guint n;
  g_autofree double *scores = clip_test_double_array (s, "scores", &n);

  g_assert_cmpuint (gst_analytics_cls_mtd_get_length (cls), ==, n);
  g_assert_cmpstr (g_quark_to_string (gst_analytics_cls_mtd_get_quark (cls, 0)), ==,
                   g_value_get_string (clip_test_field (s, "top-label", G_TYPE_STRING)));
  for (guint k = 0; k < n; k++) {
    const char *name = g_quark_to_string (gst_analytics_cls_mtd_get_quark (cls, k));
    gfloat level = gst_analytics_cls_mtd_get_level (cls, k);
    guint i = 0;

    while (i < n && g_strcmp0 (g_value_get_string (gst_value_array_get_value (labels, i)),
                               name) != 0)
      i++;
    g_assert_cmpuint (i, <, n);
    g_assert_cmpfloat (level, ==, (gfloat) scores[i]);
    if (k > 0)
      g_assert_cmpfloat (level, <=, gst_analytics_cls_mtd_get_level (cls, k - 1));
  }
}

static guint
count_cls (GstAnalyticsRelationMeta *rmeta)
{
  GstAnalyticsMtd mtd;
  gpointer state = NULL;
  guint n = 0;

  while (gst_analytics_relation_meta_iterate (rmeta, &state, gst_analytics_cls_mtd_get_mtd_type (),
                                              &mtd))
    n++;
  return n;
}

/* The ClsMtd no ODMtd relates to (the frame's), if any. */
static gboolean
frame_cls (GstAnalyticsRelationMeta *rmeta, GstAnalyticsClsMtd *out)
{
  GstAnalyticsMtd mtd, od;
  gpointer state = NULL;
  gboolean found = FALSE;

  while (gst_analytics_relation_meta_iterate (rmeta, &state, gst_analytics_cls_mtd_get_mtd_type (),
                                              &mtd)) {
    gpointer od_state = NULL;
    gboolean related = FALSE;

    while (gst_analytics_relation_meta_iterate (rmeta, &od_state,
                                                gst_analytics_od_mtd_get_mtd_type (), &od))
      related = related || gst_analytics_relation_meta_get_relation (rmeta,
          gst_analytics_mtd_get_id (&od), gst_analytics_mtd_get_id (&mtd))
          != GST_ANALYTICS_REL_TYPE_NONE;
    if (!related) {
      g_assert_false (found);
      *out = mtd;
      found = TRUE;
    }
  }
  return found;
}

/* Sync, region=both: ODMtds are regions beside ROI metas (clamped, negative coordinates too,
 * sorted together); the frame's ClsMtd and each ODMtd region's, related RELATE_TO | CONTAIN;
 * a skipped ODMtd and the ROI meta get none. */
static void
test_analytics_sync (void)
{
  Frame *frame = frame_new (96, 64, 31);
  Fixture f;
  GstBuffer *in, *out;
  GstAnalyticsRelationMeta *rmeta;
  GstAnalyticsClsMtd cls;
  const GstStructure *meta;
  guint car, person, gone;

  fixture_setup (&f, "mode", 1, "region", 2, NULL);
  gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
  in = frame_to_buffer (frame, 0);
  car = add_od (in, "car", 50, 20, 30, 30);              /* 900 */
  person = add_od (in, "person", -10, -5, 40, 30);       /* 30 x 25 = 750 */
  gone = add_od (in, "car", 200, 10, 30, 30);            /* outside: skipped */
  add_roi (in, "dog", 5, 40, 20, 20, 7);                 /* 400 */
  out = push_pull (&f, in);
  meta = clip_test_buffer_result (out);
  g_assert_nonnull (meta);
  g_assert_cmpuint (n_regions (meta), ==, 3);
  check_region (meta, 0, (gint) car, "car", 50, 20, 30, 30, frame, CLIP_CROP_CENTER);
  check_region (meta, 1, (gint) person, "person", 0, 0, 30, 25, frame, CLIP_CROP_CENTER);
  check_region (meta, 2, 7, "dog", 5, 40, 20, 20, frame, CLIP_CROP_CENTER);

  rmeta = gst_buffer_get_analytics_relation_meta (out);
  g_assert_nonnull (rmeta);
  g_assert_cmpuint (count_cls (rmeta), ==, 3);
  g_assert_true (frame_cls (rmeta, &cls));
  check_cls (&cls, meta);
  for (guint i = 0; i < 2; i++) {
    guint od = i == 0 ? car : person;

    g_assert_true (gst_analytics_relation_meta_get_direct_related (rmeta, od,
            GST_ANALYTICS_REL_TYPE_RELATE_TO, gst_analytics_cls_mtd_get_mtd_type (), NULL,
            (GstAnalyticsMtd *) &cls));
    /* one relation carrying both: objectdetectionoverlay's and DL Streamer's */
    g_assert_cmpint (gst_analytics_relation_meta_get_relation (rmeta, od,
            gst_analytics_mtd_get_id (&cls)), ==,
        GST_ANALYTICS_REL_TYPE_RELATE_TO | GST_ANALYTICS_REL_TYPE_CONTAIN);
    check_cls (&cls, region_at (meta, i));
  }
  g_assert_false (gst_analytics_relation_meta_get_direct_related (rmeta, gone,
          GST_ANALYTICS_REL_TYPE_ANY, gst_analytics_cls_mtd_get_mtd_type (), NULL,
          (GstAnalyticsMtd *) &cls));
  /* the ROI meta's result is its param */
  g_assert_nonnull (gst_video_region_of_interest_meta_get_param (
          gst_buffer_get_video_region_of_interest_meta_id (out, 7), "clipclassify"));
  gst_buffer_unref (out);

  /* a detection attached both ways (DL Streamer: the ROI meta's id is the ODMtd's, same box)
   * is one region: classified once, its ROI meta gets the param and its ODMtd the ClsMtd; a ROI
   * meta of the same id elsewhere is another region */
  in = frame_to_buffer (frame, 1);
  car = add_od (in, "car", 50, 20, 30, 30);
  add_roi (in, "car", 50, 20, 30, 30, (gint) car);
  add_roi (in, "car", 0, 0, 10, 10, (gint) car);
  out = push_pull (&f, in);
  meta = clip_test_buffer_result (out);
  g_assert_cmpuint (n_regions (meta), ==, 2);
  check_region (meta, 0, (gint) car, "car", 50, 20, 30, 30, frame, CLIP_CROP_CENTER);
  check_region (meta, 1, (gint) car, "car", 0, 0, 10, 10, frame, CLIP_CROP_CENTER);
  rmeta = gst_buffer_get_analytics_relation_meta (out);
  g_assert_cmpuint (count_cls (rmeta), ==, 2);     /* the frame's and the detection's */
  g_assert_true (gst_analytics_relation_meta_get_direct_related (rmeta, car,
          GST_ANALYTICS_REL_TYPE_RELATE_TO, gst_analytics_cls_mtd_get_mtd_type (), NULL,
          (GstAnalyticsMtd *) &cls));
  check_cls (&cls, region_at (meta, 0));
  {
    gpointer state = NULL;
    GstMeta *m;
    guint with_param = 0;

    while ((m = gst_buffer_iterate_meta_filtered (out, &state,
                GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
      with_param += gst_video_region_of_interest_meta_get_param (
          (GstVideoRegionOfInterestMeta *) m, "clipclassify") != NULL;
    g_assert_cmpuint (with_param, ==, 2);
  }
  gst_buffer_unref (out);

  /* roi-types applies to object types; region=frame leaves ODMtds alone */
  g_object_set (f.element, "roi-types", "person", NULL);
  in = frame_to_buffer (frame, 1);
  add_od (in, "car", 50, 20, 30, 30);
  person = add_od (in, "person", 0, 0, 20, 20);
  out = push_pull (&f, in);
  meta = clip_test_buffer_result (out);
  g_assert_cmpuint (n_regions (meta), ==, 1);
  check_region (meta, 0, (gint) person, "person", 0, 0, 20, 20, frame, CLIP_CROP_CENTER);
  g_assert_cmpuint (count_cls (gst_buffer_get_analytics_relation_meta (out)), ==, 2);
  gst_buffer_unref (out);

  g_object_set (f.element, "region", 0, NULL);
  in = frame_to_buffer (frame, 2);
  car = add_od (in, "car", 50, 20, 30, 30);
  out = push_pull (&f, in);
  meta = clip_test_buffer_result (out);
  g_assert_false (gst_structure_has_field (meta, "regions"));
  rmeta = gst_buffer_get_analytics_relation_meta (out);
  g_assert_cmpuint (count_cls (rmeta), ==, 1);
  g_assert_true (frame_cls (rmeta, &cls));
  check_cls (&cls, meta);
  gst_buffer_unref (out);

  /* no detector at all: the frame's ClsMtd on a relation meta of its own */
  in = frame_to_buffer (frame, 3);
  out = push_pull (&f, in);
  rmeta = gst_buffer_get_analytics_relation_meta (out);
  g_assert_nonnull (rmeta);
  g_assert_cmpuint (count_cls (rmeta), ==, 1);
  gst_buffer_unref (out);

  drop_messages (&f);
  fixture_teardown (&f);
  frame_free (frame);
}

/* Async: a result rides on a later buffer, whose ODMtds are other detections: they get no
 * ClsMtd; the frame's ClsMtd (region=both) is added to the carrying buffer, as the meta is. With
 * region=roi nothing is added there, not even an empty relation meta. */
static void
test_analytics_async (void)
{
  Frame *frame = frame_new (96, 64, 32);

  for (int region = 1; region <= 2; region++) {
    Fixture f;
    GstBuffer *in, *out = NULL;
    const GstStructure *meta = NULL;
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
    guint od = 0;
    int i = 0;

    fixture_setup (&f, "region", region, NULL);
    gst_harness_set_src_caps_str (f.h, caps_string (96, 64));
    while (!meta) {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_clear_pointer (&out, gst_buffer_unref);
      in = frame_to_buffer (frame, i++ * GST_MSECOND);
      od = add_od (in, "car", 10, 10, 40, 40);
      out = push_pull (&f, in);
      meta = clip_test_buffer_result (out);
      if (!meta)
        g_usleep (5000);
    }
    g_assert_cmpuint (n_regions (meta), ==, 1);
    {
      GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (out);
      GstAnalyticsClsMtd cls;

      g_assert_nonnull (rmeta);      /* the buffer's own, with its ODMtd */
      g_assert_false (gst_analytics_relation_meta_get_direct_related (rmeta, od,
              GST_ANALYTICS_REL_TYPE_ANY, gst_analytics_cls_mtd_get_mtd_type (), NULL,
              (GstAnalyticsMtd *) &cls));
      g_assert_cmpuint (count_cls (rmeta), ==, region == 2 ? 1 : 0);
      if (region == 2) {
        g_assert_true (frame_cls (rmeta, &cls));
        check_cls (&cls, meta);
      }
    }
    gst_buffer_unref (out);

    /* without any ODMtd on the carrier, roi mode adds no relation meta */
    if (region == 1) {
      meta = NULL;
      out = NULL;
      while (!meta) {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_clear_pointer (&out, gst_buffer_unref);
        in = frame_to_buffer (frame, i++ * GST_MSECOND);
        add_roi (in, "dog", 10, 10, 40, 40, 3);
        out = push_pull (&f, in);
        meta = clip_test_buffer_result (out);
        if (meta && g_value_get_int (clip_test_field (region_at (meta, 0), "id", G_TYPE_INT)) != 3)
          meta = NULL;      /* still an earlier frame's ODMtd region */
        if (!meta)
          g_usleep (5000);
      }
      g_assert_null (gst_buffer_get_analytics_relation_meta (out));
      gst_buffer_unref (out);
    }
    drop_messages (&f);
    fixture_teardown (&f);
  }
  frame_free (frame);
}
#endif

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
  g_test_add_func ("/regions/properties", test_region_properties);
  g_test_add_func ("/regions/sync", test_sync_regions);
  g_test_add_func ("/regions/filters", test_region_filters);
  g_test_add_func ("/regions/roi-without-regions", test_roi_without_regions);
  g_test_add_func ("/regions/async", test_async_regions);
  g_test_add_func ("/regions/overlay", test_region_overlay);
  g_test_add_func ("/regions/scoring", test_region_scoring);
#ifdef HAVE_GST_ANALYTICS
  g_test_add_func ("/regions/analytics/sync", test_analytics_sync);
  g_test_add_func ("/regions/analytics/async", test_analytics_async);
#endif

  status = g_test_run ();

  clip_context_free (ref_ctx);
  clip_model_unref (ref_model);
  g_free (tiny_model);
  g_free (fixture_dir);
  gst_deinit ();
  return status;
}
