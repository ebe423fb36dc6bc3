/* clipframe.h — the analysed frame: a private copy taken on the streaming thread, turned into the
 * model's pixel tensor on the worker.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The streaming thread only copies the planes as they are (a memcpy per line, no conversion), so
 * a sampled frame costs it one frame-sized copy into a buffer that is reused from frame to
 * frame. Everything expensive runs on the worker: format -> RGB8 at native size with a
 * GstVideoConverter (rebuilt when the caps change; skipped for RGB input), then
 * clip_preprocess_rgb8 (the Pillow-exact resize, crop and normalisation). The copy is taken
 * before any overlay is drawn, so the model never sees the overlay.
 */
#ifndef CLIP_FRAME_H
#define CLIP_FRAME_H

#include <gst/video/video.h>
#include "clip.h"
#include "clipregions.h"

G_BEGIN_DECLS

typedef struct {
  GstVideoInfo info;
  GstBuffer *buffer;          /* the pixels, laid out as info says (default strides) */
  ClipCrop crop;              /* the crop policy to preprocess with (CLIP_CROP_CENTER: 0) */
  ClipRegionList *regions;    /* what to analyse (owned); NULL: the frame alone */
} ClipFrame;

ClipFrame *clip_frame_new (void);
void clip_frame_free (ClipFrame *frame);

/* Streaming thread: what the next analysis of frame is for (takes regions; NULL: the frame
 * alone). */
void clip_frame_set_regions (ClipFrame *frame, ClipRegionList *regions);

/* Streaming thread: copies the video frame in src (read through its GstVideoMeta if any) into
 * frame, reallocating only when info differs from the previous fill. */
gboolean clip_frame_fill (ClipFrame *frame, const GstVideoInfo *info, GstBuffer *src);

/* Worker-thread state: the converter to RGB8 and its output buffer. */
typedef struct _ClipFrameConverter ClipFrameConverter;

ClipFrameConverter *clip_frame_converter_new (void);
void clip_frame_converter_free (ClipFrameConverter *converter);

/* A ClipWorkerPrepareFunc: frame is a ClipFrame, user_data a ClipFrameConverter. The frame
 * (unless frame->regions leaves it out) and each region, cut out of the RGB frame, preprocessed
 * with frame->crop, one tensor each in that order. */
gboolean clip_frame_prepare (gpointer frame, const ClipModel *model, ClipImageBatch *batch,
                             gpointer user_data, GError **error);

G_END_DECLS

#endif /* CLIP_FRAME_H */
