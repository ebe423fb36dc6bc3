/* clipoverlay.c — classification results drawn with pango/cairo into a cached overlay composition.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipoverlay.h"

#include <math.h>
#include <string.h>

#include <pango/pangocairo.h>

struct _ClipOverlay {
  PangoFontMap *font_map;      /* our own, so no thread-default font map is shared */
  PangoContext *context;
  GstVideoOverlayComposition *composition;  /* last rendering, or NULL */
  int width, height;           /* video size it was rendered for */
  char *key;                   /* the rows it was rendered from (see make_key) */
};

/* One row as drawn: the label, the score rounded to the 0.1 % that is shown. */
typedef struct {
  char *label;                 /* valid UTF-8 */
  int permille;                /* 0..1000 */
} ClipOverlayRow;

ClipOverlay *
clip_overlay_new (void)
{
  return g_new0 (ClipOverlay, 1);
}

void
clip_overlay_free (ClipOverlay *overlay)
{
  if (!overlay)
    return;
  if (overlay->composition)
    gst_video_overlay_composition_unref (overlay->composition);
  g_clear_object (&overlay->context);
  g_clear_object (&overlay->font_map);
  g_free (overlay->key);
  g_free (overlay);
}

static int
score_to_permille (double score)
{
  /* NaN would otherwise survive CLAMP and print as "nan%" */
  if (!(score >= 0.0))
    return 0;
  if (score > 1.0)
    return 1000;
  return (int) lround (score * 1000.0);
}

/* What the pixels depend on besides the video size: the rendered text and the bar lengths, both
 * of which are functions of (label, permille). Scores that differ below 0.1 % therefore reuse
 * the cached composition. */
static char *
make_key (const ClipOverlayRow *rows, guint n)
{
  GString *key = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (key, "%s\x1f%d\x1e", rows[i].label, rows[i].permille);
  return g_string_free (key, FALSE);
}

static PangoLayout *
make_layout (PangoContext *context, const PangoFontDescription *font, const char *text,
             int max_width_px)
{
  PangoLayout *layout = pango_layout_new (context);

  pango_layout_set_font_description (layout, font);
  pango_layout_set_single_paragraph_mode (layout, TRUE);
  if (max_width_px > 0) {
    pango_layout_set_width (layout, max_width_px * PANGO_SCALE);
    pango_layout_set_ellipsize (layout, PANGO_ELLIPSIZE_END);
  }
  pango_layout_set_text (layout, text, -1);
  return layout;
}

/* White text with a dark outline: readable even where the translucent box lets a bright
 * background through. */
static void
draw_layout (cairo_t *cr, PangoLayout *layout, double x, double y, double outline)
{
  cairo_move_to (cr, x, y);
  pango_cairo_layout_path (cr, layout);
  cairo_set_source_rgba (cr, 0.0, 0.0, 0.0, 0.85);
  cairo_set_line_width (cr, 2.0 * outline);
  cairo_set_line_join (cr, CAIRO_LINE_JOIN_ROUND);
  cairo_stroke (cr);

  cairo_move_to (cr, x, y);
  cairo_set_source_rgba (cr, 1.0, 1.0, 1.0, 1.0);
  pango_cairo_show_layout (cr, layout);
}

static GstVideoOverlayComposition *
render (ClipOverlay *overlay, int video_width, int video_height, const ClipOverlayRow *rows,
        guint n)
{
  const int font_px = CLIP_OVERLAY_FONT_PX (video_height);
  const int margin = CLIP_OVERLAY_MARGIN_PX (video_height);
  const int pad = MAX (2, font_px / 3);
  const int gap = MAX (2, font_px / 2);          /* between label and score */
  const int row_gap = MAX (1, font_px / 4);
  const int bar_gap = MAX (1, font_px / 8);
  const int bar_h = MAX (2, font_px / 5);
  const double outline = MAX (1.0, font_px / 14.0);
  /* Leave most of the picture visible: long labels are ellipsized rather than covering it. */
  const int max_box_w = MIN (video_width - 2 * margin, MAX (video_width * 3 / 5, 12 * font_px));
  const int max_box_h = video_height - 2 * margin;
  const int max_text_w = max_box_w - 2 * pad;
  PangoLayout **labels = NULL, **scores = NULL;
  PangoFontDescription *font = NULL;
  GstVideoOverlayComposition *composition = NULL;
  GstVideoOverlayRectangle *rectangle;
  GstBuffer *buffer = NULL;
  GstMapInfo map;
  cairo_surface_t *surface;
  cairo_t *cr;
  int line_h = 0, content_w = 0, row_h, box_w, box_h, stride;
  guint n_fit;

  if (max_text_w < 2 * font_px || max_box_h < 2 * pad + font_px)
    return NULL;

  if (!overlay->font_map) {
    overlay->font_map = pango_cairo_font_map_new ();
    overlay->context = pango_font_map_create_context (overlay->font_map);
  }

  font = pango_font_description_from_string ("Sans Bold");
  pango_font_description_set_absolute_size (font, (double) font_px * PANGO_SCALE);

  labels = g_new0 (PangoLayout *, n);
  scores = g_new0 (PangoLayout *, n);
  for (guint i = 0; i < n; i++) {
    char percent[16];
    int score_w, label_w, h;

    g_snprintf (percent, sizeof percent, "%d.%d%%", rows[i].permille / 10, rows[i].permille % 10);
    scores[i] = make_layout (overlay->context, font, percent, 0);
    pango_layout_get_pixel_size (scores[i], &score_w, &h);
    line_h = MAX (line_h, h);
    /* The score must stay visible: the label gives way (ellipsized) when the frame is narrow. */
    labels[i] = make_layout (overlay->context, font, rows[i].label,
                             MAX (font_px, max_text_w - gap - score_w));
    pango_layout_get_pixel_size (labels[i], &label_w, &h);
    line_h = MAX (line_h, h);
    content_w = MAX (content_w, label_w + gap + score_w);
  }
  /* Bars need some length to be comparable even when every label is short. */
  content_w = MIN (MAX (content_w, 8 * font_px), max_text_w);

  row_h = line_h + bar_gap + bar_h;
  n_fit = 0;
  while (n_fit < n && 2 * pad + (int) (n_fit + 1) * row_h + (int) n_fit * row_gap <= max_box_h)
    n_fit++;
  if (n_fit == 0)
    goto done;

  box_w = content_w + 2 * pad;
  box_h = 2 * pad + (int) n_fit * row_h + (int) (n_fit - 1) * row_gap;
  stride = cairo_format_stride_for_width (CAIRO_FORMAT_ARGB32, box_w);

  buffer = gst_buffer_new_allocate (NULL, (gsize) stride * box_h, NULL);
  gst_buffer_map (buffer, &map, GST_MAP_READWRITE);
  memset (map.data, 0, map.size);
  surface = cairo_image_surface_create_for_data (map.data, CAIRO_FORMAT_ARGB32, box_w, box_h,
                                                 stride);
  cr = cairo_create (surface);

  cairo_set_source_rgba (cr, 0.0, 0.0, 0.0, 0.55);
  cairo_paint (cr);

  for (guint i = 0; i < n_fit; i++) {
    const int y = pad + (int) i * (row_h + row_gap);
    const int bar_y = y + line_h + bar_gap;
    int score_w, h;

    pango_layout_get_pixel_size (scores[i], &score_w, &h);
    draw_layout (cr, labels[i], pad, y, outline);
    draw_layout (cr, scores[i], pad + content_w - score_w, y, outline);

    cairo_rectangle (cr, pad, bar_y, content_w, bar_h);
    cairo_set_source_rgba (cr, 1.0, 1.0, 1.0, 0.25);
    cairo_fill (cr);
    if (rows[i].permille > 0) {
      cairo_rectangle (cr, pad, bar_y, (double) content_w * rows[i].permille / 1000.0, bar_h);
      cairo_set_source_rgba (cr, 0.30, 0.85, 0.45, 1.0);
      cairo_fill (cr);
    }
  }

  cairo_destroy (cr);
  cairo_surface_flush (surface);
  cairo_surface_destroy (surface);
  gst_buffer_unmap (buffer, &map);

  /* Cairo's ARGB32 is premultiplied and native-endian, which is exactly the overlay API's
   * GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB (BGRA in memory on little-endian machines). */
  {
    gsize offset[GST_VIDEO_MAX_PLANES] = { 0, };
    gint strides[GST_VIDEO_MAX_PLANES] = { stride, };

    gst_buffer_add_video_meta_full (buffer, GST_VIDEO_FRAME_FLAG_NONE,
                                    GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, box_w, box_h, 1,
                                    offset, strides);
  }
  rectangle = gst_video_overlay_rectangle_new_raw (buffer, margin, margin, box_w, box_h,
                                                   GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  composition = gst_video_overlay_composition_new (rectangle);
  gst_video_overlay_rectangle_unref (rectangle);
  gst_buffer_unref (buffer);

done:
  for (guint i = 0; i < n; i++) {
    g_clear_object (&labels[i]);
    g_clear_object (&scores[i]);
  }
  g_free (labels);
  g_free (scores);
  pango_font_description_free (font);
  return composition;
}

GstVideoOverlayComposition *
clip_overlay_get_composition (ClipOverlay *overlay, const GstVideoInfo *info,
                              const char *const *labels, const double *scores, guint n)
{
  ClipOverlayRow *rows;
  char *key;
  const int width = info ? GST_VIDEO_INFO_WIDTH (info) : 0;
  const int height = info ? GST_VIDEO_INFO_HEIGHT (info) : 0;

  g_return_val_if_fail (overlay != NULL, NULL);
  g_return_val_if_fail (info != NULL, NULL);
  g_return_val_if_fail (n == 0 || (labels != NULL && scores != NULL), NULL);

  if (n == 0 || width <= 0 || height <= 0)
    return NULL;

  rows = g_new0 (ClipOverlayRow, n);
  for (guint i = 0; i < n; i++) {
    /* pango refuses invalid UTF-8; never let a bad label drop the whole overlay */
    rows[i].label = g_utf8_make_valid (labels[i] ? labels[i] : "", -1);
    rows[i].permille = score_to_permille (scores[i]);
  }
  key = make_key (rows, n);

  if (!(overlay->key && width == overlay->width && height == overlay->height &&
        strcmp (key, overlay->key) == 0)) {
    if (overlay->composition)
      gst_video_overlay_composition_unref (overlay->composition);
    overlay->composition = render (overlay, width, height, rows, n);
    overlay->width = width;
    overlay->height = height;
    g_free (overlay->key);
    overlay->key = key;
    key = NULL;
  }

  g_free (key);
  for (guint i = 0; i < n; i++)
    g_free (rows[i].label);
  g_free (rows);

  return overlay->composition ? gst_video_overlay_composition_ref (overlay->composition) : NULL;
}
