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

  /* regions (clip_overlay_get_composition_full) */
  GPtrArray *region_rectangles; /* GstVideoOverlayRectangle: the boxes and tags last rendered */
  int region_width, region_height; /* video size they were rendered for */
  char *region_key;            /* the regions they were rendered from */
  GstVideoOverlayComposition *combined; /* label box + regions, last returned */
  GstVideoOverlayComposition *combined_main; /* the label box composition it was made with (a
                                              * reference: compared by address) */
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
  g_clear_pointer (&overlay->region_rectangles, g_ptr_array_unref);
  g_free (overlay->region_key);
  if (overlay->combined)
    gst_video_overlay_composition_unref (overlay->combined);
  if (overlay->combined_main)
    gst_video_overlay_composition_unref (overlay->combined_main);
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

/* ------------------------------------------------------------------------------------------ */
/* Regions */

/* A premultiplied ARGB buffer (cairo's layout) as an overlay rectangle at (x, y). */
static GstVideoOverlayRectangle *
wrap_rectangle (GstBuffer *buffer, int x, int y, int width, int height, int stride)
{
  gsize offset[GST_VIDEO_MAX_PLANES] = { 0, };
  gint strides[GST_VIDEO_MAX_PLANES] = { stride, };
  GstVideoOverlayRectangle *rectangle;

  gst_buffer_add_video_meta_full (buffer, GST_VIDEO_FRAME_FLAG_NONE,
                                  GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, width, height, 1,
                                  offset, strides);
  rectangle = gst_video_overlay_rectangle_new_raw (buffer, x, y, width, height,
                                                   GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  gst_buffer_unref (buffer);
  return rectangle;
}

/* The boxes' colour, the bars' green: opaque, so premultiplying changes nothing. */
#define REGION_ARGB 0xff4dd973u

static GstVideoOverlayRectangle *
solid_rectangle (int x, int y, int width, int height)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, (gsize) width * height * 4, NULL);
  GstMapInfo map;
  guint32 *pixels;

  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  pixels = (guint32 *) map.data;
  for (gsize i = 0; i < (gsize) width * height; i++)
    pixels[i] = REGION_ARGB;      /* native-endian ARGB32, as cairo writes it */
  gst_buffer_unmap (buffer, &map);
  return wrap_rectangle (buffer, x, y, width, height, width * 4);
}

/* "label  87.3%" in white on the boxes' colour, darkened, placed above the box (or inside its
 * top where there is no room above), inside the frame. */
static GstVideoOverlayRectangle *
tag_rectangle (ClipOverlay *overlay, int video_width, int video_height,
               const ClipOverlayRegion *region, const ClipOverlayRow *row)
{
  const int font_px = CLIP_OVERLAY_REGION_FONT_PX (video_height);
  const int pad = MAX (1, font_px / 5);
  const double outline = MAX (1.0, font_px / 14.0);
  PangoFontDescription *font;
  PangoLayout *layout;
  GstBuffer *buffer;
  GstMapInfo map;
  cairo_surface_t *surface;
  cairo_t *cr;
  char *text;
  int text_w, text_h, tag_w, tag_h, x, y, stride;

  if (!overlay->font_map) {
    overlay->font_map = pango_cairo_font_map_new ();
    overlay->context = pango_font_map_create_context (overlay->font_map);
  }
  font = pango_font_description_from_string ("Sans Bold");
  pango_font_description_set_absolute_size (font, (double) font_px * PANGO_SCALE);
  text = g_strdup_printf ("%s  %d.%d%%", row->label, row->permille / 10, row->permille % 10);
  /* never wider than the frame: a long label is ellipsized */
  layout = make_layout (overlay->context, font, text, video_width - 2 * pad);
  pango_layout_get_pixel_size (layout, &text_w, &text_h);
  tag_w = MIN (text_w + 2 * pad, video_width);
  tag_h = MIN (text_h + 2 * pad, video_height);

  x = MIN (region->x, video_width - tag_w);
  y = region->y >= tag_h ? region->y - tag_h : region->y;
  y = MIN (y, video_height - tag_h);

  stride = cairo_format_stride_for_width (CAIRO_FORMAT_ARGB32, tag_w);
  buffer = gst_buffer_new_allocate (NULL, (gsize) stride * tag_h, NULL);
  gst_buffer_map (buffer, &map, GST_MAP_READWRITE);
  memset (map.data, 0, map.size);
  surface = cairo_image_surface_create_for_data (map.data, CAIRO_FORMAT_ARGB32, tag_w, tag_h,
                                                 stride);
  cr = cairo_create (surface);
  cairo_set_source_rgba (cr, 0.30 * 0.45, 0.85 * 0.45, 0.45 * 0.45, 0.85);
  cairo_paint (cr);
  draw_layout (cr, layout, pad, pad, outline);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  cairo_surface_destroy (surface);
  gst_buffer_unmap (buffer, &map);

  g_object_unref (layout);
  g_free (text);
  pango_font_description_free (font);
  return wrap_rectangle (buffer, x, y, tag_w, tag_h, stride);
}

/* The outline of region: four edges of line px, inside the box (a box thinner than two lines
 * is filled). */
static void
box_rectangles (GPtrArray *rectangles, const ClipOverlayRegion *r, int line)
{
  int lw = MIN (line, (r->width + 1) / 2), lh = MIN (line, (r->height + 1) / 2);

  g_ptr_array_add (rectangles, solid_rectangle (r->x, r->y, r->width, lh));
  if (r->height > lh)
    g_ptr_array_add (rectangles, solid_rectangle (r->x, r->y + r->height - lh, r->width, lh));
  if (r->height > 2 * lh) {
    g_ptr_array_add (rectangles, solid_rectangle (r->x, r->y + lh, lw, r->height - 2 * lh));
    if (r->width > lw)
      g_ptr_array_add (rectangles, solid_rectangle (r->x + r->width - lw, r->y + lh, lw,
                                                    r->height - 2 * lh));
  }
}

GstVideoOverlayComposition *
clip_overlay_get_composition_full (ClipOverlay *overlay, const GstVideoInfo *info,
                                   const char *const *labels, const double *scores, guint n,
                                   const ClipOverlayRegion *regions, guint n_regions)
{
  const int width = info ? GST_VIDEO_INFO_WIDTH (info) : 0;
  const int height = info ? GST_VIDEO_INFO_HEIGHT (info) : 0;
  GstVideoOverlayComposition *main_box, *combined;
  ClipOverlayRow *rows;
  GString *key;

  g_return_val_if_fail (overlay != NULL, NULL);
  g_return_val_if_fail (info != NULL, NULL);
  g_return_val_if_fail (n_regions == 0 || regions != NULL, NULL);

  main_box = n > 0 ? clip_overlay_get_composition (overlay, info, labels, scores, n) : NULL;
  if (n_regions == 0 || width <= 0 || height <= 0)
    return main_box;

  rows = g_new0 (ClipOverlayRow, n_regions);
  key = g_string_new (NULL);
  for (guint i = 0; i < n_regions; i++) {
    rows[i].label = regions[i].label ? g_utf8_make_valid (regions[i].label, -1) : NULL;
    rows[i].permille = score_to_permille (regions[i].score);
    g_string_append_printf (key, "%d,%d,%d,%d\x1f%s\x1f%d\x1e", regions[i].x, regions[i].y,
                            regions[i].width, regions[i].height,
                            rows[i].label ? rows[i].label : "\x1d", rows[i].permille);
  }

  if (!(overlay->region_key && width == overlay->region_width
        && height == overlay->region_height && strcmp (key->str, overlay->region_key) == 0)) {
    GPtrArray *rectangles =
        g_ptr_array_new_with_free_func ((GDestroyNotify) gst_video_overlay_rectangle_unref);
    const int line = CLIP_OVERLAY_REGION_LINE_PX (height);

    ClipOverlayRegion *boxes = g_new (ClipOverlayRegion, n_regions);

    for (guint i = 0; i < n_regions; i++) {
      ClipOverlayRegion *r = &boxes[i];

      /* a caller's box is inside the frame; a stray one is clipped rather than trusted */
      *r = regions[i];
      r->x = CLAMP (r->x, 0, width - 1);
      r->y = CLAMP (r->y, 0, height - 1);
      r->width = CLAMP (r->width, 1, width - r->x);
      r->height = CLAMP (r->height, 1, height - r->y);
      box_rectangles (rectangles, r, line);
    }
    /* tags after every box: a tag is never hidden under a neighbour's outline */
    for (guint i = 0; i < n_regions; i++)
      if (rows[i].label)
        g_ptr_array_add (rectangles, tag_rectangle (overlay, width, height, &boxes[i],
                                                    &rows[i]));
    g_free (boxes);
    g_clear_pointer (&overlay->region_rectangles, g_ptr_array_unref);
    overlay->region_rectangles = rectangles;
    overlay->region_width = width;
    overlay->region_height = height;
    g_free (overlay->region_key);
    overlay->region_key = g_string_free (key, FALSE);
    key = NULL;
    g_clear_pointer (&overlay->combined, gst_video_overlay_composition_unref);
  }
  if (key)
    g_string_free (key, TRUE);
  for (guint i = 0; i < n_regions; i++)
    g_free (rows[i].label);
  g_free (rows);

  /* Unchanged label box and regions: the same composition (and seqnum) as last time. */
  if (!overlay->combined || overlay->combined_main != main_box) {
    GPtrArray *rectangles = overlay->region_rectangles;

    g_clear_pointer (&overlay->combined, gst_video_overlay_composition_unref);
    combined = main_box ? gst_video_overlay_composition_copy (main_box) : NULL;
    for (guint i = 0; i < rectangles->len; i++) {
      if (!combined)
        combined = gst_video_overlay_composition_new (rectangles->pdata[i]);
      else
        gst_video_overlay_composition_add_rectangle (combined, rectangles->pdata[i]);
    }
    overlay->combined = combined;
    if (overlay->combined_main)
      gst_video_overlay_composition_unref (overlay->combined_main);
    overlay->combined_main = main_box ? gst_video_overlay_composition_ref (main_box) : NULL;
  }
  if (main_box)
    gst_video_overlay_composition_unref (main_box);
  return overlay->combined ? gst_video_overlay_composition_ref (overlay->combined) : NULL;
}
