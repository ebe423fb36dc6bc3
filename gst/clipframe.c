/* clipframe.c — the analysed frame: copied on the streaming thread, converted on the worker.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipframe.h"

#include <string.h>

struct _ClipFrameConverter {
  GstVideoInfo in_info;
  GstVideoInfo rgb_info;
  GstVideoConverter *converter;   /* in_info -> RGB at the same size; NULL for RGB input */
  GstBuffer *rgb;                 /* the converter's output */
  gboolean configured;
};

ClipFrame *
clip_frame_new (void)
{
  ClipFrame *frame = g_new0 (ClipFrame, 1);

  gst_video_info_init (&frame->info);
  return frame;
}

void
clip_frame_free (ClipFrame *frame)
{
  if (!frame)
    return;
  gst_clear_buffer (&frame->buffer);
  clip_region_list_unref (frame->regions);
  g_free (frame);
}

void
clip_frame_set_regions (ClipFrame *frame, ClipRegionList *regions)
{
  clip_region_list_unref (frame->regions);
  frame->regions = regions;
}

/* The bytes of one row of `plane` that hold pixels, in whole macropixels: the furthest byte any
 * component of the plane reaches. gst_video_frame_copy() copies width x pixel stride bytes, which
 * for an odd-width YUY2, UYVY or YVYU frame leaves out the last macropixel's last chroma byte
 * (the converter then reads uninitialised chroma in the last column). 0 when the layout is not
 * described per component (v210, UYVP, IYU1: pixel stride 0). */
static gsize
plane_row_bytes (const GstVideoFrame *frame, guint plane)
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gsize row = 0;

  for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS (finfo); c++) {
    gsize width = GST_VIDEO_FRAME_COMP_WIDTH (frame, c), sample;
    gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, c);

    if (GST_VIDEO_FORMAT_INFO_PLANE (finfo, c) != plane || width == 0)
      continue;
    if (pstride <= 0)
      return 0;
    sample = (GST_VIDEO_FORMAT_INFO_DEPTH (finfo, c) + GST_VIDEO_FORMAT_INFO_SHIFT (finfo, c)
        + 7) / 8;
    row = MAX (row, (width - 1) * pstride + GST_VIDEO_FRAME_COMP_POFFSET (frame, c) + sample);
    row = MAX (row, width * pstride);
  }
  return row;
}

static gboolean
copy_frame (GstVideoFrame *out, const GstVideoFrame *in)
{
  const GstVideoFormatInfo *finfo = in->info.finfo;

  if (GST_VIDEO_FORMAT_INFO_IS_TILED (finfo))
    return gst_video_frame_copy (out, in);
  for (guint plane = 0; plane < GST_VIDEO_FRAME_N_PLANES (in); plane++) {
    gsize row = plane_row_bytes (in, plane), src_stride, dst_stride;
    gint components[GST_VIDEO_MAX_COMPONENTS], height;
    const guint8 *s;
    guint8 *d;

    if (row == 0) {
      if (!gst_video_frame_copy_plane (out, in, plane))
        return FALSE;
      continue;
    }
    gst_video_format_info_component (finfo, plane, components);
    height = GST_VIDEO_FRAME_COMP_HEIGHT (in, components[0]);
    src_stride = GST_VIDEO_FRAME_PLANE_STRIDE (in, plane);
    dst_stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, plane);
    row = MIN (row, MIN (src_stride, dst_stride));
    s = GST_VIDEO_FRAME_PLANE_DATA (in, plane);
    d = GST_VIDEO_FRAME_PLANE_DATA (out, plane);
    for (gint y = 0; y < height; y++)
      memcpy (d + y * dst_stride, s + y * src_stride, row);
  }
  return TRUE;
}

gboolean
clip_frame_fill (ClipFrame *frame, const GstVideoInfo *info, GstBuffer *src)
{
  GstVideoFrame in, out;
  gboolean ok;

  if (!frame->buffer || !gst_video_info_is_equal (&frame->info, info)) {
    gst_clear_buffer (&frame->buffer);
    frame->info = *info;
    frame->buffer = gst_buffer_new_allocate (NULL, info->size, NULL);
    if (!frame->buffer)
      return FALSE;
  }

  if (!gst_video_frame_map (&in, (GstVideoInfo *) info, src, GST_MAP_READ))
    return FALSE;
  if (!gst_video_frame_map (&out, &frame->info, frame->buffer, GST_MAP_WRITE)) {
    gst_video_frame_unmap (&in);
    return FALSE;
  }
  ok = copy_frame (&out, &in);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  return ok;
}

ClipFrameConverter *
clip_frame_converter_new (void)
{
  ClipFrameConverter *converter = g_new0 (ClipFrameConverter, 1);

  gst_video_info_init (&converter->in_info);
  return converter;
}

void
clip_frame_converter_free (ClipFrameConverter *converter)
{
  if (!converter)
    return;
  g_clear_pointer (&converter->converter, gst_video_converter_free);
  gst_clear_buffer (&converter->rgb);
  g_free (converter);
}

/* Rebuilds the converter when the input layout changed (a renegotiation mid-stream). */
static gboolean
clip_frame_converter_configure (ClipFrameConverter *converter, const GstVideoInfo *info,
                                GError **error)
{
  int width = GST_VIDEO_INFO_WIDTH (info), height = GST_VIDEO_INFO_HEIGHT (info);

  if (converter->configured && gst_video_info_is_equal (&converter->in_info, info))
    return TRUE;

  g_clear_pointer (&converter->converter, gst_video_converter_free);
  gst_clear_buffer (&converter->rgb);
  converter->in_info = *info;
  converter->configured = FALSE;
  /* RGB is already what the preprocessor reads: no conversion, no copy. */
  if (GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_RGB) {
    converter->configured = TRUE;
    return TRUE;
  }

  /* GstVideoConverter only changes format (and size): rate, aspect and interlacing match. */
  gst_video_info_set_interlaced_format (&converter->rgb_info, GST_VIDEO_FORMAT_RGB,
                                        GST_VIDEO_INFO_INTERLACE_MODE (info), width, height);
  GST_VIDEO_INFO_FPS_N (&converter->rgb_info) = GST_VIDEO_INFO_FPS_N (info);
  GST_VIDEO_INFO_FPS_D (&converter->rgb_info) = GST_VIDEO_INFO_FPS_D (info);
  GST_VIDEO_INFO_PAR_N (&converter->rgb_info) = GST_VIDEO_INFO_PAR_N (info);
  GST_VIDEO_INFO_PAR_D (&converter->rgb_info) = GST_VIDEO_INFO_PAR_D (info);
  converter->converter = gst_video_converter_new ((GstVideoInfo *) info, &converter->rgb_info,
      gst_structure_new ("GstVideoConverter",
          /* exact pixel values: no dithering noise in what the model sees */
          GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
          GST_VIDEO_DITHER_NONE,
          GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT, 1, NULL));
  if (!converter->converter) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "cannot convert %s %dx%d video to RGB",
                 gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)), width, height);
    return FALSE;
  }
  converter->rgb = gst_buffer_new_allocate (NULL, converter->rgb_info.size, NULL);
  converter->configured = TRUE;
  return TRUE;
}

/* The frame and its regions from the RGB frame (rgb, stride) into batch. */
static gboolean
preprocess_images (const ClipFrame *frame, const ClipModel *model, const guint8 *rgb, int stride,
                   ClipImageBatch *batch, GError **error)
{
  const ClipPreprocessConfig *config = clip_model_get_preprocess_config (model);
  const ClipRegionList *regions = frame->regions;
  int size = clip_model_get_image_size (model);
  gsize image_floats = (gsize) 3 * size * size;
  float *pixels = clip_image_batch_reserve (batch, clip_region_list_n_images (regions),
                                            image_floats);

  if (!regions || regions->frame) {
    if (!clip_preprocess_rgb8_with_crop (config, frame->crop, rgb,
                                         GST_VIDEO_INFO_WIDTH (&frame->info),
                                         GST_VIDEO_INFO_HEIGHT (&frame->info), stride, pixels,
                                         error))
      return FALSE;
    pixels += image_floats;
  }
  /* A region is a window of the RGB frame: the preprocessor reads it in place through the
   * frame's stride, no copy. */
  for (guint i = 0; regions && i < regions->n_regions; i++, pixels += image_floats) {
    const ClipRegion *r = &regions->regions[i];
    int out_width, out_height;

    /* without a center crop in the model's config the size depends on the region's aspect */
    clip_preprocess_output_size_with_crop (config, frame->crop, (int) r->width, (int) r->height,
                                           &out_width, &out_height);
    if (out_width != size || out_height != size) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                   "%s: preprocessing a %ux%u region gives %dx%d pixels, the image tower takes "
                   "%dx%d (preprocessor_config.json needs a center crop to the image size)",
                   clip_model_get_path (model), r->width, r->height, out_width, out_height,
                   size, size);
      return FALSE;
    }
    if (!clip_preprocess_rgb8_with_crop (config, frame->crop,
                                         rgb + (gsize) r->y * stride + (gsize) r->x * 3,
                                         (int) r->width, (int) r->height, stride, pixels, error))
      return FALSE;
  }
  g_clear_pointer (&batch->regions, clip_region_list_unref);
  if (regions)
    batch->regions = clip_region_list_ref (frame->regions);
  return TRUE;
}

gboolean
clip_frame_prepare (gpointer data, const ClipModel *model, ClipImageBatch *batch,
                    gpointer user_data, GError **error)
{
  ClipFrame *frame = data;
  ClipFrameConverter *converter = user_data;
  const ClipPreprocessConfig *config = clip_model_get_preprocess_config (model);
  int size = clip_model_get_image_size (model);
  int width = GST_VIDEO_INFO_WIDTH (&frame->info), height = GST_VIDEO_INFO_HEIGHT (&frame->info);
  int out_width, out_height;
  GstVideoFrame in, rgb;
  gboolean ok;

  clip_preprocess_output_size_with_crop (config, frame->crop, width, height, &out_width,
                                         &out_height);
  if (out_width != size || out_height != size) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                 "%s: preprocessing a %dx%d frame gives %dx%d pixels, the image tower takes "
                 "%dx%d (preprocessor_config.json needs a center crop to the image size)",
                 clip_model_get_path (model), width, height, out_width, out_height, size, size);
    return FALSE;
  }

  if (!clip_frame_converter_configure (converter, &frame->info, error))
    return FALSE;

  if (!gst_video_frame_map (&in, &frame->info, frame->buffer, GST_MAP_READ)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "cannot map the analysed frame");
    return FALSE;
  }
  if (!converter->converter) {
    ok = preprocess_images (frame, model, GST_VIDEO_FRAME_PLANE_DATA (&in, 0),
                            GST_VIDEO_FRAME_PLANE_STRIDE (&in, 0), batch, error);
    gst_video_frame_unmap (&in);
    return ok;
  }

  if (!gst_video_frame_map (&rgb, &converter->rgb_info, converter->rgb, GST_MAP_WRITE)) {
    gst_video_frame_unmap (&in);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "cannot map the RGB conversion buffer");
    return FALSE;
  }
  gst_video_converter_frame (converter->converter, &in, &rgb);
  ok = preprocess_images (frame, model, GST_VIDEO_FRAME_PLANE_DATA (&rgb, 0),
                          GST_VIDEO_FRAME_PLANE_STRIDE (&rgb, 0), batch, error);
  gst_video_frame_unmap (&rgb);
  gst_video_frame_unmap (&in);
  return ok;
}
