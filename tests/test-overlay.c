/* test-overlay.c — the overlay renderer (gst/clipoverlay.c) on its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Expectations are the documented geometry (clipoverlay.h: margin MAX (2, H / 48), box inside
 * the frame) and facts about pixels anyone can check: text is white, the box is a dark
 * translucent veil, a bar is filled in proportion to its score, blending changes the frame
 * only under the rectangle.
 */
#include <math.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "clipoverlay.h"

static const char *const three_labels[] = { "a dog", "a cat", "an empty room" };
static const double three_scores[] = { 0.873, 0.100, 0.027 };

static void
init_info (GstVideoInfo *info, GstVideoFormat format, int width, int height)
{
  gst_video_info_init (info);
  g_assert_true (gst_video_info_set_format (info, format, width, height));
}

/* The only rectangle of a composition. */
static GstVideoOverlayRectangle *
only_rectangle (GstVideoOverlayComposition *composition)
{
  g_assert_nonnull (composition);
  g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (composition), ==, 1);
  return gst_video_overlay_composition_get_rectangle (composition, 0);
}

typedef struct {
  GstBuffer *buffer;
  GstMapInfo map;
  guint width, height, stride;
} Pixels;

/* Premultiplied native-endian ARGB32: what clipoverlay renders, unconverted. */
static void
pixels_get (Pixels *px, GstVideoOverlayRectangle *rect)
{
  GstVideoMeta *meta;

  px->buffer = gst_video_overlay_rectangle_get_pixels_unscaled_argb (
      rect, GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  g_assert_nonnull (px->buffer);
  meta = gst_buffer_get_video_meta (px->buffer);
  g_assert_nonnull (meta);
  px->width = meta->width;
  px->height = meta->height;
  px->stride = meta->stride[0];
  g_assert_true (gst_buffer_map (px->buffer, &px->map, GST_MAP_READ));
}

static void
pixels_release (Pixels *px)
{
  gst_buffer_unmap (px->buffer, &px->map);
}

static void
pixel_at (const Pixels *px, guint x, guint y, guint *a, guint *r, guint *g, guint *b)
{
  guint32 p;

  memcpy (&p, px->map.data + (gsize) y * px->stride + 4 * x, 4);
  *a = p >> 24;
  *r = (p >> 16) & 0xff;
  *g = (p >> 8) & 0xff;
  *b = p & 0xff;
}

static void
test_empty (void)
{
  ClipOverlay *overlay = clip_overlay_new ();
  GstVideoInfo info;

  init_info (&info, GST_VIDEO_FORMAT_I420, 640, 480);
  g_assert_null (clip_overlay_get_composition (overlay, &info, NULL, NULL, 0));
  g_assert_null (clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 0));
  clip_overlay_free (overlay);
  clip_overlay_free (NULL);
}

static void
test_geometry (void)
{
  static const int sizes[][2] = {
    { 320, 240 }, { 640, 480 }, { 1280, 720 }, { 1920, 1080 }, { 3840, 2160 }, { 480, 640 },
  };
  int height_one_row[G_N_ELEMENTS (sizes)];

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    const int W = sizes[s][0], H = sizes[s][1];
    const int margin = MAX (2, H / 48);
    ClipOverlay *overlay = clip_overlay_new ();
    GstVideoOverlayComposition *one, *three;
    GstVideoOverlayRectangle *rect;
    GstVideoInfo info;
    gint x, y;
    guint w, h, w3, h3;
    Pixels px;

    g_test_message ("video %dx%d", W, H);
    init_info (&info, GST_VIDEO_FORMAT_RGB, W, H);

    one = clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 1);
    rect = only_rectangle (one);
    g_assert_true (gst_video_overlay_rectangle_get_render_rectangle (rect, &x, &y, &w, &h));
    g_assert_cmpint (x, ==, margin);
    g_assert_cmpint (y, ==, margin);
    g_assert_cmpuint (w, >, 0);
    g_assert_cmpuint (h, >, 0);
    g_assert_cmpint (x + (int) w, <=, W - margin);
    g_assert_cmpint (y + (int) h, <=, H - margin);
    /* Drawn at the size it is shown: no scaling on the way to the frame. */
    pixels_get (&px, rect);
    g_assert_cmpuint (px.width, ==, w);
    g_assert_cmpuint (px.height, ==, h);
    pixels_release (&px);
    height_one_row[s] = (int) h;

    three = clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 3);
    rect = only_rectangle (three);
    g_assert_true (gst_video_overlay_rectangle_get_render_rectangle (rect, &x, &y, &w3, &h3));
    g_assert_cmpint (x, ==, margin);
    g_assert_cmpint (y, ==, margin);
    g_assert_cmpint (x + (int) w3, <=, W - margin);
    g_assert_cmpint (y + (int) h3, <=, H - margin);
    /* Three rows: more than twice and less than four times one row's box. */
    g_assert_cmpuint (h3, >, 2 * h);
    g_assert_cmpuint (h3, <, 4 * h);
    /* The widest of the three labels is "an empty room". */
    g_assert_cmpuint (w3, >=, w);

    gst_video_overlay_composition_unref (one);
    gst_video_overlay_composition_unref (three);
    clip_overlay_free (overlay);
  }

  /* The font follows the video height: 1080 rows give about 4.5x the box of 240 rows (the
   * padding and bar have small floors, so allow some slack). */
  {
    double ratio = (double) height_one_row[3] / height_one_row[0];
    g_assert_cmpfloat (ratio, >, 3.5);
    g_assert_cmpfloat (ratio, <, 5.5);
  }
}

static void
test_cache (void)
{
  ClipOverlay *overlay = clip_overlay_new ();
  GstVideoOverlayComposition *a, *b, *c, *d, *e, *f;
  const char *labels2[] = { "a dog", "a horse", "an empty room" };
  double scores[3];
  GstVideoInfo info, info2;

  init_info (&info, GST_VIDEO_FORMAT_I420, 640, 480);
  init_info (&info2, GST_VIDEO_FORMAT_I420, 1280, 720);

  a = clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 3);
  b = clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 3);
  g_assert_nonnull (a);
  g_assert_true (a == b);
  g_assert_cmpuint (gst_video_overlay_composition_get_seqnum (a), ==,
                    gst_video_overlay_composition_get_seqnum (b));

  /* A change below the 0.1 % shown changes no pixel: same composition. */
  memcpy (scores, three_scores, sizeof scores);
  scores[0] += 0.0002;
  c = clip_overlay_get_composition (overlay, &info, three_labels, scores, 3);
  g_assert_true (c == a);

  /* A visible score change renders again. */
  scores[0] = 0.5;
  d = clip_overlay_get_composition (overlay, &info, three_labels, scores, 3);
  g_assert_nonnull (d);
  g_assert_true (d != a);
  g_assert_cmpuint (gst_video_overlay_composition_get_seqnum (d), !=,
                    gst_video_overlay_composition_get_seqnum (a));

  /* So does a label change, and a video size change. */
  e = clip_overlay_get_composition (overlay, &info, labels2, scores, 3);
  g_assert_true (e != d);
  f = clip_overlay_get_composition (overlay, &info2, labels2, scores, 3);
  g_assert_true (f != e);

  /* The caller's references stay valid after the overlay moved on and after it is freed. */
  clip_overlay_free (overlay);
  g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (a), ==, 1);
  g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (f), ==, 1);
  gst_video_overlay_composition_unref (a);
  gst_video_overlay_composition_unref (b);
  gst_video_overlay_composition_unref (c);
  gst_video_overlay_composition_unref (d);
  gst_video_overlay_composition_unref (e);
  gst_video_overlay_composition_unref (f);
}

static gboolean
is_white (guint a, guint r, guint g, guint b)
{
  return a >= 250 && r >= 230 && g >= 230 && b >= 230;
}

static gboolean
is_green (guint a, guint r, guint g, guint b)
{
  return a >= 250 && g >= 180 && r <= 110 && b <= 150;
}

static void
test_pixels (void)
{
  ClipOverlay *overlay = clip_overlay_new ();
  const char *labels[] = { "WWWW", "WWWW" };
  const double scores[] = { 1.0, 0.25 };
  GstVideoOverlayComposition *comp;
  GstVideoInfo info;
  Pixels px;
  guint white_top = 0, white_bottom = 0, transparent = 0;
  guint bar_row[2] = { 0, 0 }, bar_green[2] = { 0, 0 }, bar_x0[2] = { G_MAXUINT, G_MAXUINT };

  init_info (&info, GST_VIDEO_FORMAT_RGB, 1280, 720);
  comp = clip_overlay_get_composition (overlay, &info, labels, scores, 2);
  pixels_get (&px, only_rectangle (comp));

  for (guint y = 0; y < px.height; y++) {
    guint green = 0, x0 = G_MAXUINT;

    for (guint x = 0; x < px.width; x++) {
      guint a, r, g, b;

      pixel_at (&px, x, y, &a, &r, &g, &b);
      if (a == 0)
        transparent++;
      /* premultiplied: no channel may exceed alpha */
      g_assert_cmpuint (r, <=, a);
      g_assert_cmpuint (g, <=, a);
      g_assert_cmpuint (b, <=, a);
      if (is_white (a, r, g, b)) {
        if (y < px.height / 2)
          white_top++;
        else
          white_bottom++;
      }
      if (is_green (a, r, g, b)) {
        green++;
        x0 = MIN (x0, x);
      }
    }
    /* The row with the most green pixels in each half is that row's bar. */
    if (green > bar_green[y >= px.height / 2]) {
      bar_green[y >= px.height / 2] = green;
      bar_row[y >= px.height / 2] = y;
      bar_x0[y >= px.height / 2] = x0;
    }
  }

  /* The box is a translucent veil everywhere: the text reads on any background. */
  g_assert_cmpuint (transparent, ==, 0);
  /* Both rows carry opaque white text. */
  g_assert_cmpuint (white_top, >, 50);
  g_assert_cmpuint (white_bottom, >, 50);
  /* A score of 1.0 fills the bar, 0.25 a quarter of it; both start at the same x. */
  g_assert_cmpuint (bar_green[0], >, 0);
  g_assert_cmpuint (bar_x0[0], ==, bar_x0[1]);
  g_assert_cmpfloat_with_epsilon ((double) bar_green[1] / bar_green[0], 0.25, 0.02);
  g_assert_cmpuint (bar_row[0], <, bar_row[1]);

  pixels_release (&px);
  gst_video_overlay_composition_unref (comp);
  clip_overlay_free (overlay);
}

/* A black frame of `format`, blended; counts changed pixels inside and outside the rectangle
 * using the luma (or R+G+B) of each pixel. */
static void
check_blend (GstVideoFormat format)
{
  ClipOverlay *overlay = clip_overlay_new ();
  GstVideoOverlayComposition *comp;
  GstVideoOverlayRectangle *rect;
  GstVideoInfo info;
  GstVideoFrame frame;
  GstBuffer *buffer;
  gint rx, ry;
  guint rw, rh, changed_in = 0, changed_out = 0, bright_in = 0;
  const gboolean yuv = format == GST_VIDEO_FORMAT_I420;

  init_info (&info, format, 320, 240);
  buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&info), NULL);
  g_assert_true (gst_video_frame_map (&frame, &info, buffer, GST_MAP_READWRITE));
  if (yuv) {
    for (guint p = 0; p < 3; p++)
      for (int y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&frame, p); y++)
        memset ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, p) +
                    y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p),
                p == 0 ? 16 : 128, GST_VIDEO_FRAME_COMP_WIDTH (&frame, p));
  } else {
    for (int y = 0; y < GST_VIDEO_FRAME_HEIGHT (&frame); y++)
      memset ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) +
                  y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0),
              0, (gsize) GST_VIDEO_FRAME_WIDTH (&frame) * 3);
  }

  comp = clip_overlay_get_composition (overlay, &info, three_labels, three_scores, 3);
  rect = only_rectangle (comp);
  gst_video_overlay_rectangle_get_render_rectangle (rect, &rx, &ry, &rw, &rh);
  g_assert_true (gst_video_overlay_composition_blend (comp, &frame));

  for (int y = 0; y < 240; y++) {
    const guint8 *row = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) +
        y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);

    for (int x = 0; x < 320; x++) {
      const guint v = yuv ? row[x] : (guint) row[3 * x] + row[3 * x + 1] + row[3 * x + 2];
      const gboolean changed = yuv ? v != 16 : v != 0;
      const gboolean inside = x >= rx && x < rx + (int) rw && y >= ry && y < ry + (int) rh;

      if (inside) {
        changed_in += changed;
        bright_in += yuv ? v > 200 : v > 600;
      } else {
        changed_out += changed;
      }
    }
  }
  gst_video_frame_unmap (&frame);

  g_assert_cmpuint (changed_out, ==, 0);
  /* White text over black ends up bright. */
  g_assert_cmpuint (bright_in, >, 50);
  g_assert_cmpuint (changed_in, >=, bright_in);

  gst_buffer_unref (buffer);
  gst_video_overlay_composition_unref (comp);
  clip_overlay_free (overlay);
}

static void
test_blend_i420 (void)
{
  check_blend (GST_VIDEO_FORMAT_I420);
}

static void
test_blend_rgb (void)
{
  check_blend (GST_VIDEO_FORMAT_RGB);
}

static void
test_awkward_input (void)
{
  ClipOverlay *overlay = clip_overlay_new ();
  const char *labels[] = {
    "a very long label that cannot possibly fit in a small frame, so it must be cut short",
    "\xff\xfe not UTF-8", NULL,
  };
  const double scores[] = { 0.5, -3.0, NAN };
  GstVideoOverlayComposition *comp;
  GstVideoOverlayRectangle *rect;
  GstVideoInfo info;
  gint x, y;
  guint w, h;

  /* Narrow frame: the long label is ellipsized, the box stays inside the frame. */
  init_info (&info, GST_VIDEO_FORMAT_I420, 160, 120);
  comp = clip_overlay_get_composition (overlay, &info, labels, scores, 3);
  rect = only_rectangle (comp);
  gst_video_overlay_rectangle_get_render_rectangle (rect, &x, &y, &w, &h);
  g_assert_cmpint (x + (int) w, <=, 160 - MAX (2, 120 / 48));
  g_assert_cmpint (y + (int) h, <=, 120 - MAX (2, 120 / 48));
  gst_video_overlay_composition_unref (comp);

  /* Wide and very flat: rows that do not fit are dropped, not drawn outside the frame. */
  init_info (&info, GST_VIDEO_FORMAT_I420, 1920, 40);
  comp = clip_overlay_get_composition (overlay, &info, labels, scores, 3);
  if (comp) {
    rect = only_rectangle (comp);
    gst_video_overlay_rectangle_get_render_rectangle (rect, &x, &y, &w, &h);
    g_assert_cmpint (y + (int) h, <=, 40 - 2);
    gst_video_overlay_composition_unref (comp);
  }

  /* Too small for any text. */
  init_info (&info, GST_VIDEO_FORMAT_I420, 16, 16);
  g_assert_null (clip_overlay_get_composition (overlay, &info, labels, scores, 3));

  clip_overlay_free (overlay);
}

/* Regions (issue 7): four edges per box at the region's rectangle, then one tag per labelled
 * region, above the box (inside at its top where there is no room; moved left to stay in the
 * frame); the label box first when there is one; cached while nothing changes. */
static gboolean
find_rect (GstVideoOverlayComposition *c, int x, int y, int w, int h)
{
  for (guint i = 0; i < gst_video_overlay_composition_n_rectangles (c); i++) {
    gint rx, ry;
    guint rw, rh;

    gst_video_overlay_rectangle_get_render_rectangle (
        gst_video_overlay_composition_get_rectangle (c, i), &rx, &ry, &rw, &rh);
    if (rx == x && ry == y && (int) rw == w && (int) rh == h)
      return TRUE;
  }
  return FALSE;
}

static void
test_regions (void)
{
  ClipOverlay *overlay = clip_overlay_new ();
  GstVideoInfo info;
  const int line = CLIP_OVERLAY_REGION_LINE_PX (480);
  ClipOverlayRegion regions[] = {
    { 100, 200, 120, 90, "a dog", 0.873 },      /* room above: tag above */
    { 600, 0, 40, 30, "a very long label indeed", 0.5 },   /* at the top, at the right edge */
    { 10, 10, 3, 3, NULL, 0.0 },                /* tiny, no label: filled, no tag */
  };
  GstVideoOverlayComposition *c, *again, *with_box;
  guint n;

  init_info (&info, GST_VIDEO_FORMAT_RGB, 640, 480);
  g_assert_cmpint (line, ==, 2);
  g_assert_null (clip_overlay_get_composition_full (overlay, &info, NULL, NULL, 0, NULL, 0));

  c = clip_overlay_get_composition_full (overlay, &info, NULL, NULL, 0, regions, 3);
  g_assert_nonnull (c);
  n = gst_video_overlay_composition_n_rectangles (c);
  /* 4 + 4 edges, the tiny box as 2 (top and bottom halves), 2 tags */
  g_assert_cmpuint (n, ==, 12);
  g_assert_true (find_rect (c, 100, 200, 120, line));
  g_assert_true (find_rect (c, 100, 200 + 90 - line, 120, line));
  g_assert_true (find_rect (c, 100, 200 + line, line, 90 - 2 * line));
  g_assert_true (find_rect (c, 100 + 120 - line, 200 + line, line, 90 - 2 * line));
  g_assert_true (find_rect (c, 10, 10, 3, 2));
  g_assert_true (find_rect (c, 10, 11, 3, 2));
  for (guint i = 0; i < n; i++) {
    GstVideoOverlayRectangle *r = gst_video_overlay_composition_get_rectangle (c, i);
    gint rx, ry;
    guint rw, rh;

    gst_video_overlay_rectangle_get_render_rectangle (r, &rx, &ry, &rw, &rh);
    g_assert_cmpint (rx, >=, 0);
    g_assert_cmpint (ry, >=, 0);
    g_assert_cmpint (rx + (int) rw, <=, 640);
    g_assert_cmpint (ry + (int) rh, <=, 480);
    if (i == 10) {
      /* the dog's tag: just above its box, at its left edge, a line of text high */
      g_assert_cmpint (rx, ==, 100);
      g_assert_cmpint (ry + (int) rh, ==, 200);
      g_assert_cmpuint (rh, >=, (guint) CLIP_OVERLAY_REGION_FONT_PX (480));
    } else if (i == 11) {
      /* no room above: inside the box's top; moved left to end at the frame's edge */
      g_assert_cmpint (ry, ==, 0);
      g_assert_cmpint (rx + (int) rw, ==, 640);
      g_assert_cmpint (rx, <, 600);
    }
  }

  /* the same regions (scores equal at 0.1 %): the same composition */
  regions[0].score = 0.87301;
  again = clip_overlay_get_composition_full (overlay, &info, NULL, NULL, 0, regions, 3);
  g_assert_true (again == c);
  gst_video_overlay_composition_unref (again);

  /* with the label box: it comes first, then the same region rectangles */
  with_box = clip_overlay_get_composition_full (overlay, &info, three_labels, three_scores, 3,
                                                regions, 3);
  g_assert_cmpuint (gst_video_overlay_composition_n_rectangles (with_box), ==, 13);
  again = clip_overlay_get_composition_full (overlay, &info, three_labels, three_scores, 3,
                                             regions, 3);
  g_assert_true (again == with_box);
  gst_video_overlay_composition_unref (again);

  /* a box moved: rendered again */
  regions[2].x = 20;
  again = clip_overlay_get_composition_full (overlay, &info, three_labels, three_scores, 3,
                                             regions, 3);
  g_assert_true (again != with_box);
  g_assert_true (find_rect (again, 20, 10, 3, 2));
  gst_video_overlay_composition_unref (again);

  gst_video_overlay_composition_unref (with_box);
  gst_video_overlay_composition_unref (c);
  clip_overlay_free (overlay);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/overlay/empty", test_empty);
  g_test_add_func ("/overlay/geometry", test_geometry);
  g_test_add_func ("/overlay/cache", test_cache);
  g_test_add_func ("/overlay/pixels", test_pixels);
  g_test_add_func ("/overlay/blend-i420", test_blend_i420);
  g_test_add_func ("/overlay/blend-rgb", test_blend_rgb);
  g_test_add_func ("/overlay/awkward-input", test_awkward_input);
  g_test_add_func ("/overlay/regions", test_regions);

  return g_test_run ();
}
