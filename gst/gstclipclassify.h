/* gstclipclassify.h — the clipclassify element: zero-shot CLIP classification of live video.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef GST_CLIP_CLASSIFY_H
#define GST_CLIP_CLASSIFY_H

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstClipClassifyMode:
 * @GST_CLIP_CLASSIFY_MODE_ASYNC: the streaming thread never waits: a sampled frame is analysed
 *   only if the worker is free (otherwise skipped and counted), and each result is attached to
 *   the next buffer that passes.
 * @GST_CLIP_CLASSIFY_MODE_SYNC: every sampled frame waits for its own result, which is
 *   attached to that same buffer (offline and file processing).
 */
typedef enum {
  GST_CLIP_CLASSIFY_MODE_ASYNC,
  GST_CLIP_CLASSIFY_MODE_SYNC,
} GstClipClassifyMode;

#define GST_TYPE_CLIP_CLASSIFY_MODE (gst_clip_classify_mode_get_type ())
GType gst_clip_classify_mode_get_type (void);

/**
 * GstClipClassifyPrecision:
 * @GST_CLIP_CLASSIFY_PRECISION_FP32: fp32 GEMMs, as the checkpoint's weights.
 * @GST_CLIP_CLASSIFY_PRECISION_BF16: bfloat16 weights and activations with fp32 accumulation
 *   (AVX512_BF16 CPUs): about half the inference time and weight memory, embeddings within a
 *   cosine of about 0.9999 of fp32's. Elsewhere fp32 runs, with a warning in the debug log.
 */
typedef enum {
  GST_CLIP_CLASSIFY_PRECISION_FP32,
  GST_CLIP_CLASSIFY_PRECISION_BF16,
} GstClipClassifyPrecision;

#define GST_TYPE_CLIP_CLASSIFY_PRECISION (gst_clip_classify_precision_get_type ())
GType gst_clip_classify_precision_get_type (void);

/**
 * GstClipClassifyCrop:
 * @GST_CLIP_CLASSIFY_CROP_CENTER: HF's CLIPImageProcessor as the model configures it: the
 *   shortest edge resized, the centre cropped (a 16:9 frame loses its left and right 7/32).
 * @GST_CLIP_CLASSIFY_CROP_SQUASH: the whole picture resized to the model's input size,
 *   aspect ratio not kept.
 * @GST_CLIP_CLASSIFY_CROP_PAD: the picture padded to a square with the model's mean colour,
 *   then as center: all of it seen, aspect ratio kept.
 *
 * What part of the frame (or of each region) the model sees (ClipCrop in clip.h).
 */
typedef enum {
  GST_CLIP_CLASSIFY_CROP_CENTER,
  GST_CLIP_CLASSIFY_CROP_SQUASH,
  GST_CLIP_CLASSIFY_CROP_PAD,
} GstClipClassifyCrop;

#define GST_TYPE_CLIP_CLASSIFY_CROP (gst_clip_classify_crop_get_type ())
GType gst_clip_classify_crop_get_type (void);

/**
 * GstClipClassifyRegion:
 * @GST_CLIP_CLASSIFY_REGION_FRAME: the whole frame is classified (regions of interest ignored).
 * @GST_CLIP_CLASSIFY_REGION_ROI: each region of interest is classified, the frame is not; a
 *   sampled frame without regions is not analysed.
 * @GST_CLIP_CLASSIFY_REGION_BOTH: the frame and each region of interest.
 *
 * What of each sampled frame is classified.
 */
typedef enum {
  GST_CLIP_CLASSIFY_REGION_FRAME,
  GST_CLIP_CLASSIFY_REGION_ROI,
  GST_CLIP_CLASSIFY_REGION_BOTH,
} GstClipClassifyRegion;

#define GST_TYPE_CLIP_CLASSIFY_REGION (gst_clip_classify_region_get_type ())
GType gst_clip_classify_region_get_type (void);

#define GST_TYPE_CLIP_CLASSIFY (gst_clip_classify_get_type ())
G_DECLARE_FINAL_TYPE (GstClipClassify, gst_clip_classify, GST, CLIP_CLASSIFY, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (clipclassify);

G_END_DECLS

#endif /* GST_CLIP_CLASSIFY_H */
