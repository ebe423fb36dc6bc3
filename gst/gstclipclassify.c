/* gstclipclassify.c — the clipclassify element: zero-shot CLIP classification of live video.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-clipclassify
 * @title: clipclassify
 *
 * Classifies video frames against labels you choose, with OpenAI's CLIP on the CPU, while the
 * video passes through untouched (in place, in any of the common raw formats, at any size and
 * rate, live or not). Labels can be changed while playing.
 *
 * A worker thread owned by the element runs the model. In the default `async` mode the
 * streaming thread never waits for it: a sampled frame (see #GstClipClassify:interval) is
 * copied and handed over only if the worker is free, otherwise it is skipped and counted
 * (#GstClipClassify:frames-skipped), and each result is attached to the next buffer that
 * passes. In `sync` mode every sampled frame waits for its own result, which is attached to that
 * buffer: use it for files and offline processing.
 *
 * Each result is delivered twice, with the same fields:
 *
 * - as an element message named `clipclassify` on the bus (unless
 *   #GstClipClassify:post-messages is %FALSE; `gst-launch-1.0 -m` prints them);
 * - as a #GstCustomMeta named `GstClipClassifyMeta` on the buffer, read with
 *   gst_buffer_get_custom_meta() and gst_custom_meta_get_structure() (in Python:
 *   `buffer.get_custom_meta("GstClipClassifyMeta").get_structure()`), without linking anything
 *   of ours. The meta survives buffer copies and elements that scale or convert.
 *
 * Fields:
 *
 * - `labels` (GST_TYPE_ARRAY of strings): the whole label set, in label order.
 * - `scores` (GST_TYPE_ARRAY of doubles): the probability of each label, same order (softmax
 *   over the set and the negative labels: with `negative-scores` they sum to 1).
 * - `negative-labels`, `negative-scores` (GST_TYPE_ARRAY of strings, of doubles): the
 *   #GstClipClassify:negative-labels and their probabilities in the same softmax (empty arrays
 *   without negative labels).
 * - `top-labels` (GST_TYPE_ARRAY of strings): the best labels first, at most
 *   #GstClipClassify:top-k of them, each scoring at least #GstClipClassify:threshold and more
 *   than every negative label.
 * - `top-scores` (GST_TYPE_ARRAY of doubles): their probabilities.
 * - `top-label` (string), `top-score` (double): the best label and its probability, whatever
 *   the threshold; "" and 0 when a negative label scores at least as much ("none of these").
 * - `smoothed-scores`, `smoothed-negative-scores` (GST_TYPE_ARRAY of doubles), with
 *   #GstClipClassify:smoothing only: the scores smoothed in time. The top fields above then rank
 *   these instead of the raw scores.
 * - `previous-top-label` (string): the `top-label` of the previous result of the same label set
 *   and segment, "" for the first (see #GstClipClassify:changes-only).
 * - `analysed-pts` (guint64): the PTS of the analysed frame. In async mode the result is
 *   attached to a later buffer.
 * - `latency` (guint64): how long the worker took for this frame, in nanoseconds (conversion,
 *   preprocessing and the image tower).
 * - `rescored` (boolean): %TRUE for a re-scored result (async mode only, see below): the
 *   frame of `analysed-pts` analysed earlier, scored against labels that became current since.
 *   Its `latency` is that of the frame's analysis.
 * - `timestamp`, `stream-time`, `running-time` (guint64): of the buffer the result is attached
 *   to, as the level element reports them. At EOS in async mode and across a switch to sync
 *   mode (see below) there is no such buffer: they are those of the analysed frame.
 * - `image-embedding` (GST_TYPE_ARRAY of floats), with #GstClipClassify:embeddings only: the
 *   analysed frame's L2-normalised image embedding (projection_dim floats).
 *
 * A result is always scored against one complete label set: its `labels` are exactly the set
 * its `scores` belong to, even while the labels change.
 *
 * Labels are separated by commas and trimmed of surrounding whitespace; a label given twice
 * counts once (two copies would split its probability). For labels that contain commas,
 * separate them with semicolons instead: as soon as the value has a semicolon, semicolons
 * separate and commas belong to the labels (`labels="salt, pepper; dog; a cat, sleeping"` has
 * three labels). A backslash also escapes a separator or itself (`\,`, `\;`,
 * `\\`), which is handy from code; a gst-launch-1.0 command line eats one level of
 * backslashes, so semicolons are simpler there.
 *
 * Each label is put into #GstClipClassify:template to make the prompt the text tower sees.
 * Setting #GstClipClassify:labels or #GstClipClassify:template while playing does not stall
 * the video: the worker computes the text embeddings of the new prompts only (they are cached
 * per prompt), then swaps the set in at once. It computes them 16 prompts at a time, so that
 * stopping the element (PAUSED to READY) while thousands of labels are being built waits for
 * those 16 only.
 *
 * In async mode the new labels show up without waiting for another frame to be analysed: as
 * soon as the set is swapped in, the worker scores the image embedding of the last frame it
 * analysed against it (no forward pass) and delivers that as a result with `rescored` %TRUE
 * and that frame's `analysed-pts`, after that frame's own result if it is still to be
 * delivered. Results of frames analysed later follow as usual. In sync mode every result is
 * the carrying buffer's own: nothing is re-scored.
 *
 * The model is loaded when the element goes from READY to PAUSED; elements of one process with
 * the same #GstClipClassify:model share it. A missing or broken model fails that state change
 * with an error naming the directory; get the model with `scripts/download-model.sh`. Empty
 * labels post one warning and let the video through unclassified: no result is attached and the
 * overlay draws nothing until labels are set again.
 *
 * Latency: sync mode holds each sampled buffer for its analysis, so it answers the LATENCY query
 * with upstream's latency plus its own bound, the longest analysis since start plus a quarter
 * (nothing until the first result; a longer analysis raises the bound and posts a LATENCY
 * message, as does a change of #GstClipClassify:mode). Live sinks then wait for it instead of
 * showing analysed frames late. On a live source put a queue after the element in sync mode
 * (`v4l2src ! videoconvert ! clipclassify mode=sync ! queue ! autovideosink`): without one the
 * streaming thread that analyses a frame also waits in the sink for the added latency, and
 * falls behind the source. Async mode never holds a buffer and adds no latency.
 *
 * EOS: in sync mode every sampled frame already has its result. In async mode a frame still
 * being analysed when EOS arrives is waited for (at most one inference) and its result posted
 * as a message before EOS goes downstream; no buffer is left to carry it as meta.
 *
 * Switching #GstClipClassify:mode from async to sync loses no result: the frame handed over in
 * async mode, still being analysed or analysed but not delivered yet, has no buffer left to
 * carry it either (a sync buffer carries its own frame's result), so its result goes out as a
 * message only, before the next sync frame's (or at EOS). A re-score still pending then is
 * dropped, as sync mode shows frames' own results only.
 *
 * What the model sees of a frame is set by #GstClipClassify:crop: by default CLIP's own
 * preprocessing (the shortest edge resized to the model's input, the centre cropped), which on
 * a 16:9 frame never sees the left and right 7/32; `squash` and `pad` show it the whole frame.
 *
 * ## Regions of interest
 *
 * Behind a detector, #GstClipClassify:region classifies what it found: with `roi` or `both`,
 * every #GstVideoRegionOfInterestMeta of a sampled buffer (DL Streamer's gvadetect, a tracker,
 * the application's own) and, in builds for GStreamer 1.24 or later with its analytics
 * library, every GstAnalyticsODMtd (`onnxinference ! ssdobjectdetector`) is a region (a
 * detection attached both ways, an ODMtd and a ROI meta with its id and rectangle, as DL
 * Streamer does, counts once). Regions are filtered by #GstClipClassify:roi-types, clamped to the frame (a region left empty is
 * skipped), and the #GstClipClassify:max-regions largest are cut out of the frame, preprocessed
 * with #GstClipClassify:crop and classified against the labels, all of a frame's regions (and
 * the frame, with `both`) in one batched pass through the model. The streaming thread only reads
 * the metas: the cutting and everything after happen on the worker.
 *
 * The message and the meta then carry `regions` (GST_TYPE_ARRAY of structures named
 * `clipclassify-region`), one per region, largest first, each with:
 *
 * - `id` (gint): the ROI meta's id (or the ODMtd's);
 * - `roi-type` (string): its type ("" when it has none);
 * - `x`, `y`, `width`, `height` (guint): its rectangle after clamping to the frame;
 * - `labels`, `scores`, `negative-labels`, `negative-scores`, `top-labels`, `top-scores`,
 *   `top-label`, `top-score` as for a frame, and `image-embedding` (the region's own) with
 *   #GstClipClassify:embeddings. #GstClipClassify:smoothing and
 *   #GstClipClassify:changes-only follow the frame's labels only: with `region=roi` every result
 *   is posted, unsmoothed.
 *
 * `regions` is the last field. With `both` the frame's own fields come first, as without
 * regions. With `roi` there are no frame-level label fields: `analysed-pts`, `latency`,
 * `rescored` and the timestamps, then `regions`; a sampled frame without a region (after filtering) runs no inference, posts no
 * message and gets no meta. In sync mode each ROI meta analysed also gets a parameter
 * structure named `clipclassify` holding its label fields
 * (gst_video_region_of_interest_meta_get_param()), as DL Streamer's classifiers add theirs. In
 * async mode a result rides on a later buffer, whose metas are other regions: the message and
 * the meta carry it, the ROI metas do not. With #GstClipClassify:overlay each region's box is
 * drawn with its top label.
 *
 * ## GstAnalytics (GStreamer 1.24 and later)
 *
 * Built against GStreamer 1.24 or later with its analytics library (gst-plugins-bad), every
 * result is also added to the carrying buffer's GstAnalyticsRelationMeta as a
 * GstAnalyticsClsMtd: every label as a class quark with its probability as confidence level,
 * best first, so class 0 is the top label. The frame's (unless `region=roi`), and in sync mode
 * one per GstAnalyticsODMtd region, related from the ODMtd with RELATE_TO | CONTAIN in one
 * relation: `objectdetectionoverlay` then draws each detection with its clipclassify label, and
 * DL Streamer's convention (the detection contains its classification) holds too. In async
 * mode the carrying buffer's detections are other objects than the analysed frame's: only the
 * frame's ClsMtd is added there.
 *
 * With #GstClipClassify:overlay the best labels and their scores are drawn on the video: as a
 * #GstVideoOverlayCompositionMeta when downstream supports it (the overlay is then composed by
 * the sink), blended into the pixels otherwise. The model never sees the overlay: the analysed
 * copy is taken before drawing.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! clipclassify labels="person,dog,empty room" overlay=true ! videoconvert ! autovideosink
 * ]| Classifies the webcam live and shows the best labels on the video; -m prints each result.
 * |[
 * gst-launch-1.0 -m filesrc location=video.mp4 ! decodebin ! videoconvert ! clipclassify mode=sync interval=30 labels="indoors,outdoors" ! fakesink
 * ]| Classifies every 30th frame of a file, waiting for each result.
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! clipclassify labels="a person,a dog" negative-labels="an empty room" template=imagenet-7 smoothing=1.0 changes-only=true json-location=events.jsonl ! fakesink
 * ]| Posts a message only when the (smoothed) best label changes, "" when the room is empty,
 * and appends every result to events.jsonl.
 */

#include "gstclipclassify.h"

#include <gst/video/video.h>
#include <string.h>

#include "clip.h"
#include "clipframe.h"
#include "clipjson.h"
#include "cliplabels.h"
#include "clipmeta.h"
#include "clipmodelcache.h"
#include "clipoverlay.h"
#include "clipregions.h"
#include "clipresult.h"
#include "cliptrack.h"
#include "clipworker.h"
#ifdef HAVE_GST_ANALYTICS
#include "clipanalytics.h"
#endif

GST_DEBUG_CATEGORY_STATIC (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

#define DEFAULT_PROP_LABELS ""
#define DEFAULT_PROP_TEMPLATE CLIP_DEFAULT_TEMPLATE
#define DEFAULT_PROP_INTERVAL 1
#define DEFAULT_PROP_MODE GST_CLIP_CLASSIFY_MODE_ASYNC
#define DEFAULT_PROP_TOP_K 3
#define DEFAULT_PROP_THRESHOLD 0.0
#define DEFAULT_PROP_OVERLAY FALSE
#define DEFAULT_PROP_THREADS 0
#define DEFAULT_PROP_PRECISION GST_CLIP_CLASSIFY_PRECISION_FP32
#define DEFAULT_PROP_POST_MESSAGES TRUE
#define DEFAULT_PROP_NEGATIVE_LABELS ""
#define DEFAULT_PROP_EMBEDDINGS FALSE
#define DEFAULT_PROP_JSON_LOCATION ""
#define DEFAULT_PROP_SMOOTHING 0.0
#define DEFAULT_PROP_CHANGES_ONLY FALSE
#define DEFAULT_PROP_CROP GST_CLIP_CLASSIFY_CROP_CENTER
#define DEFAULT_PROP_REGION GST_CLIP_CLASSIFY_REGION_FRAME
#define DEFAULT_PROP_ROI_TYPES ""
#define DEFAULT_PROP_MAX_REGIONS 16
#define MAX_PROP_MAX_REGIONS 1024

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_LABELS,
  PROP_TEMPLATE,
  PROP_INTERVAL,
  PROP_MODE,
  PROP_TOP_K,
  PROP_THRESHOLD,
  PROP_OVERLAY,
  PROP_THREADS,
  PROP_PRECISION,
  PROP_POST_MESSAGES,
  PROP_NEGATIVE_LABELS,
  PROP_EMBEDDINGS,
  PROP_JSON_LOCATION,
  PROP_SMOOTHING,
  PROP_CHANGES_ONLY,
  PROP_FRAMES_ANALYSED,
  PROP_FRAMES_SKIPPED,
  PROP_LAST_LATENCY,
  PROP_AVERAGE_LATENCY,
  PROP_CROP,
  PROP_REGION,
  PROP_ROI_TYPES,
  PROP_MAX_REGIONS,
};

#define OVERLAY_FEATURE GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION

/* Formats GstVideoConverter reads and gst_video_overlay_composition_blend draws on. */
#define CLIP_CLASSIFY_FORMATS \
  "{ RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR, RGB, BGR, I420, YV12, NV12, NV21, " \
  "YUY2, UYVY, YVYU, AYUV, Y42B, Y444, GRAY8 }"

#define CLIP_CLASSIFY_CAPS \
  GST_VIDEO_CAPS_MAKE (CLIP_CLASSIFY_FORMATS) "; " \
  GST_VIDEO_CAPS_MAKE_WITH_FEATURES (GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY ", " OVERLAY_FEATURE, \
      CLIP_CLASSIFY_FORMATS)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (CLIP_CLASSIFY_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (CLIP_CLASSIFY_CAPS));

struct _GstClipClassify
{
  GstBaseTransform parent;

  /* Properties and statistics: under the object lock, which guards values only. */
  char *model_path;
  char *labels;
  char *template_;
  char *negative_labels;
  guint64 labels_generation;     /* bumped by every change of labels, negative-labels or
                                  * template */
  guint n_labels;                /* of `labels`, parsed */
  guint interval;
  GstClipClassifyMode mode;
  guint top_k;
  gdouble threshold;
  gboolean overlay;
  guint threads;
  GstClipClassifyPrecision precision;
  gboolean post_messages;
  gboolean embeddings;
  char *json_location;
  gdouble smoothing;             /* seconds, 0 = off */
  gboolean changes_only;
  GstClipClassifyCrop crop;
  GstClipClassifyRegion region;
  char *roi_types;
  GBytes *roi_type_quarks;       /* roi_types parsed (clip_region_types_parse), read-only */
  guint max_regions;
  guint64 frames_analysed;
  guint64 frames_skipped;
  guint64 last_latency;
  guint64 total_latency;
  guint64 worst_latency;         /* the longest analysis since start, ns */
  guint64 latency_bound;         /* what sync mode adds to the LATENCY query: worst_latency
                                  * plus a quarter (raised only when exceeded), 0 until the
                                  * first result */

  /* Streaming thread only (and start/stop, when no buffer flows). */
  GstVideoInfo info;
  gboolean attach_overlay;       /* downstream composes GstVideoOverlayCompositionMeta */
  guint64 frame_count;           /* since start or the last flush */
  guint64 warned_generation;     /* of the empty labels last warned about */
  ClipResult *shown;             /* newest result, drawn by the overlay */
  ClipTrack track;               /* smoothing and the last top label, per label set/segment */
  ClipOverlay *renderer;

  ClipJsonWriter *json;          /* json-location, open from start to stop (it locks itself) */
  gboolean json_failed;          /* a write failed since start: warned once */

  ClipWorker *worker;            /* element lifetime; its thread runs from start to stop */
  ClipModel *model;              /* from start to stop */
};

#define gst_clip_classify_parent_class parent_class
G_DEFINE_TYPE (GstClipClassify, gst_clip_classify, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (clipclassify, "clipclassify", GST_RANK_NONE,
    GST_TYPE_CLIP_CLASSIFY);

GType
gst_clip_classify_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIP_CLASSIFY_MODE_ASYNC,
        "Never wait: analyse a sampled frame only if the worker is free, attach results to "
          "the next buffer", "async"},
    {GST_CLIP_CLASSIFY_MODE_SYNC,
        "Every sampled frame waits for its own result, attached to it", "sync"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstClipClassifyMode", values);

    g_once_init_leave (&type, registered);
  }
  return type;
}

GType
gst_clip_classify_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIP_CLASSIFY_PRECISION_FP32, "fp32 GEMMs", "fp32"},
    {GST_CLIP_CLASSIFY_PRECISION_BF16,
        "bfloat16 GEMMs with fp32 accumulation where the CPU has AVX512_BF16 (else fp32)",
        "bf16"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstClipClassifyPrecision", values);

    g_once_init_leave (&type, registered);
  }
  return type;
}

GType
gst_clip_classify_crop_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIP_CLASSIFY_CROP_CENTER,
        "Shortest edge resized, centre cropped (HF's CLIPImageProcessor)", "center"},
    {GST_CLIP_CLASSIFY_CROP_SQUASH,
        "Whole picture resized to the model's input size (aspect ratio not kept)", "squash"},
    {GST_CLIP_CLASSIFY_CROP_PAD,
        "Whole picture padded to a square with the mean colour, then as center", "pad"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstClipClassifyCrop", values);

    g_once_init_leave (&type, registered);
  }
  return type;
}

GType
gst_clip_classify_region_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_CLIP_CLASSIFY_REGION_FRAME, "The whole frame (regions of interest ignored)", "frame"},
    {GST_CLIP_CLASSIFY_REGION_ROI,
        "Each region of interest, not the frame (frames without regions are not analysed)",
        "roi"},
    {GST_CLIP_CLASSIFY_REGION_BOTH, "The whole frame and each region of interest", "both"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstClipClassifyRegion", values);

    g_once_init_leave (&type, registered);
  }
  return type;
}

/* The engine's policy for the property's: the same three, in the same order. */
static ClipCrop
gst_clip_classify_engine_crop (GstClipClassifyCrop crop)
{
  switch (crop) {
    case GST_CLIP_CLASSIFY_CROP_SQUASH:
      return CLIP_CROP_SQUASH;
    case GST_CLIP_CLASSIFY_CROP_PAD:
      return CLIP_CROP_PAD;
    case GST_CLIP_CLASSIFY_CROP_CENTER:
    default:
      return CLIP_CROP_CENTER;
  }
}

/* $CLIPCLASSIFY_MODEL, else where scripts/download-model.sh puts the model. */
static char *
gst_clip_classify_default_model (void)
{
  const char *env = g_getenv ("CLIPCLASSIFY_MODEL");

  if (env && *env)
    return g_strdup (env);
  return g_build_filename (g_get_user_data_dir (), "clipclassify", "models",
                           "clip-vit-base-patch16", NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Properties */

/* Hands the current vocabulary to the worker. Called without the object lock. */
static void
gst_clip_classify_relabel (GstClipClassify *self)
{
  char *labels, *negative, *template_;
  guint64 generation;

  GST_OBJECT_LOCK (self);
  labels = g_strdup (self->labels);
  negative = g_strdup (self->negative_labels);
  template_ = g_strdup (self->template_);
  generation = self->labels_generation;
  GST_OBJECT_UNLOCK (self);

  /* Racing setters may arrive here out of order: the worker keeps the newest generation. */
  clip_worker_set_labels_full (self->worker, generation, labels, negative, template_);
  g_free (labels);
  g_free (negative);
  g_free (template_);
}

/* model, threads and precision (GST_PARAM_MUTABLE_READY) are read when the worker starts, at
 * READY->PAUSED. A value set later is kept for the next start and, as GStreamer elements do
 * for such properties, the debug log says it does not apply now. state and next (the
 * transition under way, if any, which may have read the old value already) were read under
 * the object lock, which is not held here. */
static void
gst_clip_classify_warn_if_running (GstClipClassify *self, GParamSpec *pspec, GstState state,
                                   GstState next)
{
  if (state >= GST_STATE_PAUSED || next >= GST_STATE_PAUSED)
    GST_WARNING_OBJECT (self, "%s set while %s: it takes effect on the next READY->PAUSED",
        g_param_spec_get_name (pspec), gst_element_state_get_name (state));
}

static void
gst_clip_classify_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);
  GstState state, next;

  switch (prop_id) {
    case PROP_MODEL:{
      char *path = g_value_dup_string (value);

      if (!path || !*path) {
        g_free (path);
        path = gst_clip_classify_default_model ();
      }
      GST_OBJECT_LOCK (self);
      g_free (self->model_path);
      self->model_path = path;
      state = GST_STATE (self);
      next = GST_STATE_NEXT (self);
      GST_OBJECT_UNLOCK (self);
      gst_clip_classify_warn_if_running (self, pspec, state, next);
      break;
    }
    case PROP_LABELS:
    case PROP_NEGATIVE_LABELS:
    case PROP_TEMPLATE:{
      char *text = g_value_dup_string (value);
      char **parsed = NULL;

      if (prop_id == PROP_LABELS)
        parsed = clip_labels_split (text);
      else if (prop_id == PROP_TEMPLATE && !text)
        text = g_strdup (DEFAULT_PROP_TEMPLATE);

      GST_OBJECT_LOCK (self);
      if (prop_id == PROP_LABELS) {
        g_free (self->labels);
        self->labels = text;
        self->n_labels = g_strv_length (parsed);
      } else if (prop_id == PROP_NEGATIVE_LABELS) {
        g_free (self->negative_labels);
        self->negative_labels = text;
      } else {
        g_free (self->template_);
        self->template_ = text;
      }
      self->labels_generation++;
      GST_OBJECT_UNLOCK (self);
      g_strfreev (parsed);

      gst_clip_classify_relabel (self);
      break;
    }
    case PROP_INTERVAL:
      GST_OBJECT_LOCK (self);
      self->interval = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_MODE:{
      GstClipClassifyMode mode = g_value_get_enum (value), old;

      GST_OBJECT_LOCK (self);
      old = self->mode;
      self->mode = mode;
      GST_OBJECT_UNLOCK (self);
      /* A sync buffer carries its own frame's result, never an older frame re-scored. */
      clip_worker_set_rescore (self->worker, mode == GST_CLIP_CLASSIFY_MODE_ASYNC);
      /* Only sync mode adds latency: the pipeline has to ask again. */
      if (mode != old)
        gst_element_post_message (GST_ELEMENT (self),
            gst_message_new_latency (GST_OBJECT (self)));
      break;
    }
    case PROP_TOP_K:
      GST_OBJECT_LOCK (self);
      self->top_k = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_THRESHOLD:
      GST_OBJECT_LOCK (self);
      self->threshold = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_OVERLAY:{
      gboolean overlay = g_value_get_boolean (value), changed;

      GST_OBJECT_LOCK (self);
      changed = overlay != self->overlay;
      self->overlay = overlay;
      GST_OBJECT_UNLOCK (self);
      /* The caps we offer depend on it (the overlay-composition feature): renegotiate. This
       * takes the object lock itself, hence after releasing it. */
      if (changed)
        gst_base_transform_reconfigure_src (GST_BASE_TRANSFORM (self));
      break;
    }
    case PROP_THREADS:
      GST_OBJECT_LOCK (self);
      self->threads = g_value_get_uint (value);
      state = GST_STATE (self);
      next = GST_STATE_NEXT (self);
      GST_OBJECT_UNLOCK (self);
      gst_clip_classify_warn_if_running (self, pspec, state, next);
      break;
    case PROP_PRECISION:
      GST_OBJECT_LOCK (self);
      self->precision = g_value_get_enum (value);
      state = GST_STATE (self);
      next = GST_STATE_NEXT (self);
      GST_OBJECT_UNLOCK (self);
      gst_clip_classify_warn_if_running (self, pspec, state, next);
      break;
    case PROP_POST_MESSAGES:
      GST_OBJECT_LOCK (self);
      self->post_messages = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_EMBEDDINGS:
      GST_OBJECT_LOCK (self);
      self->embeddings = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_SMOOTHING:
      GST_OBJECT_LOCK (self);
      self->smoothing = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_CHANGES_ONLY:
      GST_OBJECT_LOCK (self);
      self->changes_only = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_JSON_LOCATION:{
      char *location = g_value_dup_string (value);

      GST_OBJECT_LOCK (self);
      g_free (self->json_location);
      self->json_location = location ? location : g_strdup ("");
      state = GST_STATE (self);
      next = GST_STATE_NEXT (self);
      GST_OBJECT_UNLOCK (self);
      gst_clip_classify_warn_if_running (self, pspec, state, next);
      break;
    }
    case PROP_CROP:
      GST_OBJECT_LOCK (self);
      self->crop = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_REGION:
      GST_OBJECT_LOCK (self);
      self->region = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_ROI_TYPES:{
      char *text = g_value_dup_string (value);
      /* parsed here, once, so the streaming thread only takes a reference */
      GBytes *quarks = clip_region_types_parse (text), *old;

      if (!text)
        text = g_strdup (DEFAULT_PROP_ROI_TYPES);
      GST_OBJECT_LOCK (self);
      g_free (self->roi_types);
      self->roi_types = text;
      old = self->roi_type_quarks;
      self->roi_type_quarks = quarks;
      GST_OBJECT_UNLOCK (self);
      g_bytes_unref (old);
      break;
    }
    case PROP_MAX_REGIONS:
      GST_OBJECT_LOCK (self);
      self->max_regions = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_clip_classify_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels);
      break;
    case PROP_TEMPLATE:
      g_value_set_string (value, self->template_);
      break;
    case PROP_NEGATIVE_LABELS:
      g_value_set_string (value, self->negative_labels);
      break;
    case PROP_INTERVAL:
      g_value_set_uint (value, self->interval);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, self->top_k);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_OVERLAY:
      g_value_set_boolean (value, self->overlay);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_EMBEDDINGS:
      g_value_set_boolean (value, self->embeddings);
      break;
    case PROP_JSON_LOCATION:
      g_value_set_string (value, self->json_location);
      break;
    case PROP_SMOOTHING:
      g_value_set_double (value, self->smoothing);
      break;
    case PROP_CHANGES_ONLY:
      g_value_set_boolean (value, self->changes_only);
      break;
    case PROP_FRAMES_ANALYSED:
      g_value_set_uint64 (value, self->frames_analysed);
      break;
    case PROP_FRAMES_SKIPPED:
      g_value_set_uint64 (value, self->frames_skipped);
      break;
    case PROP_LAST_LATENCY:
      g_value_set_uint64 (value, self->last_latency);
      break;
    case PROP_AVERAGE_LATENCY:
      g_value_set_uint64 (value, self->frames_analysed ?
          self->total_latency / self->frames_analysed : 0);
      break;
    case PROP_CROP:
      g_value_set_enum (value, self->crop);
      break;
    case PROP_REGION:
      g_value_set_enum (value, self->region);
      break;
    case PROP_ROI_TYPES:
      g_value_set_string (value, self->roi_types);
      break;
    case PROP_MAX_REGIONS:
      g_value_set_uint (value, self->max_regions);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------------------------ */
/* Caps and allocation */

/* Downstream of us the overlay can travel as a meta instead of pixels: with overlay on, offer
 * every upstream caps structure also with the overlay-composition feature (first, so it is
 * preferred); upstream of us, a structure with the feature can also be had without it. */
static GstCaps *
gst_clip_classify_transform_caps (GstBaseTransform *trans, GstPadDirection direction,
                                  GstCaps *caps, GstCaps *filter)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstCaps *result = gst_caps_new_empty ();
  gboolean overlay;
  guint i;

  GST_OBJECT_LOCK (self);
  overlay = self->overlay;
  GST_OBJECT_UNLOCK (self);

  for (i = 0; i < gst_caps_get_size (caps); i++) {
    GstStructure *s = gst_caps_get_structure (caps, i);
    GstCapsFeatures *features = gst_caps_get_features (caps, i);
    gboolean any = gst_caps_features_is_any (features);
    gboolean has_meta = !any && gst_caps_features_contains (features, OVERLAY_FEATURE);
    GstCapsFeatures *variant;

    if (direction == GST_PAD_SINK && overlay && !any && !has_meta) {
      variant = gst_caps_features_copy (features);
      gst_caps_features_add (variant, OVERLAY_FEATURE);
      result = gst_caps_merge_structure_full (result, gst_structure_copy (s), variant);
    }
    result = gst_caps_merge_structure_full (result, gst_structure_copy (s),
                                            gst_caps_features_copy (features));
    if (direction == GST_PAD_SRC && has_meta) {
      variant = gst_caps_features_copy (features);
      gst_caps_features_remove (variant, OVERLAY_FEATURE);
      result = gst_caps_merge_structure_full (result, gst_structure_copy (s), variant);
    }
  }

  if (filter) {
    /* our order first: the overlay-composition variant is the preferred one */
    GstCaps *filtered = gst_caps_intersect_full (result, filter, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (result);
    result = filtered;
  }

  GST_DEBUG_OBJECT (self, "%s caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
                    direction == GST_PAD_SINK ? "sink" : "src", caps, result);
  return result;
}

static gboolean
gst_clip_classify_set_caps (GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstVideoInfo info;

  if (!gst_video_info_from_caps (&info, incaps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  /* A new size or format only changes what the next copied frame looks like: the worker
   * rebuilds its converter when it sees one. */
  self->info = info;

  /* Not in place until decide_allocation has run: GstBaseTransform skips the allocation query
   * (and with it our look at downstream's metas) for in-place elements. */
  gst_base_transform_set_in_place (trans, FALSE);
  return TRUE;
}

static gboolean
gst_clip_classify_decide_allocation (GstBaseTransform *trans, GstQuery *query)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstCaps *outcaps = NULL, *incaps;
  gboolean caps_have_meta = FALSE, upstream_has_meta = FALSE, query_has_meta;

  gst_query_parse_allocation (query, &outcaps, NULL);
  if (outcaps && gst_caps_get_size (outcaps) > 0)
    caps_have_meta = gst_caps_features_contains (gst_caps_get_features (outcaps, 0),
                                                 OVERLAY_FEATURE);
  incaps = gst_pad_get_current_caps (GST_BASE_TRANSFORM_SINK_PAD (trans));
  if (incaps && gst_caps_get_size (incaps) > 0)
    upstream_has_meta = gst_caps_features_contains (gst_caps_get_features (incaps, 0),
                                                    OVERLAY_FEATURE);
  gst_clear_caps (&incaps);
  query_has_meta = gst_query_find_allocation_meta (query,
      GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);

  /* As textoverlay: attach only when the caps say the meta may travel and downstream (or
   * upstream, which already attaches) handles it; otherwise blend into the pixels. */
  self->attach_overlay = caps_have_meta && (query_has_meta || upstream_has_meta);
  GST_DEBUG_OBJECT (self, "overlay will be %s", self->attach_overlay ? "attached" : "blended");

  /* Every buffer goes through in place: no pool of our own. */
  gst_base_transform_set_in_place (trans, TRUE);
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Start and stop */

static gboolean
gst_clip_classify_start (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GError *error = NULL;
  ClipModel *model;
  char *path;
  guint threads;
  ClipPrecision precision;
  char *json_location;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->model_path);
  json_location = g_strdup (self->json_location);
  threads = self->threads;
  precision = self->precision == GST_CLIP_CLASSIFY_PRECISION_BF16 ? CLIP_PRECISION_BF16
      : CLIP_PRECISION_FP32;
  GST_OBJECT_UNLOCK (self);

  /* Before the model: a typo in the path should not cost a model load to find out. */
  if (*json_location) {
    self->json = clip_json_writer_open (json_location, &error);
    if (!self->json)
      goto no_json;
  }
  self->json_failed = FALSE;

  /* Loading takes a while: no lock of ours is held. */
  model = clip_model_cache_acquire (path, precision, &error);
  if (!model)
    goto no_model;

  if (!clip_worker_start (self->worker, model, (int) threads, &error))
    goto no_worker;

  self->model = model;
  self->frame_count = 0;
  self->warned_generation = 0;
  g_clear_pointer (&self->shown, clip_result_free);
  clip_track_reset (&self->track);
  GST_OBJECT_LOCK (self);
  self->frames_analysed = self->frames_skipped = 0;
  self->last_latency = self->total_latency = 0;
  self->worst_latency = self->latency_bound = 0;
  GST_OBJECT_UNLOCK (self);

  GST_INFO_OBJECT (self, "model %s, worker with %u threads, isa %s, precision %s", path,
      threads, clip_model_get_isa (model),
      clip_precision_name (clip_model_get_precision (model)));
  /* Debug-log warnings, not bus warnings: the pipeline works, only slower than it could. */
  if (clip_model_get_precision_note (model))
    GST_WARNING_OBJECT (self, "%s", clip_model_get_precision_note (model));
  if (g_str_equal (clip_model_get_isa (model), "blas")) {
    GST_INFO_OBJECT (self, "%s", clip_blas_describe ());
    if (clip_blas_performance_hint ())
      GST_WARNING_OBJECT (self, "%s", clip_blas_performance_hint ());
  }
  g_free (path);
  g_free (json_location);
  return TRUE;

  /* ERRORS */
no_json:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open \"%s\" for the JSON lines (json-location): %s", json_location,
            error->message), (NULL));
    g_error_free (error);
    g_free (json_location);
    g_free (path);
    return FALSE;
  }
no_model:
  {
    GstResourceError code = g_error_matches (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND) ?
        GST_RESOURCE_ERROR_NOT_FOUND : GST_RESOURCE_ERROR_OPEN_READ;

    /* GST_ELEMENT_ERROR spelled out: the error code depends on what failed. */
    gst_element_message_full_with_details (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        GST_RESOURCE_ERROR, code,
        g_strdup_printf ("Could not load the CLIP model in \"%s\": %s%s", path, error->message,
            strstr (error->message, "download-model.sh") ? "" :
            ". Get the model with scripts/download-model.sh, or point the model property "
            "(or $CLIPCLASSIFY_MODEL) at a HuggingFace CLIP model directory."),
        g_strdup_printf ("clip_model_load failed: %s (code %d)", error->message, error->code),
        __FILE__, GST_FUNCTION, __LINE__,
        gst_structure_new ("details", "model", G_TYPE_STRING, path, NULL));
    g_error_free (error);
    g_free (path);
    g_free (json_location);
    g_clear_pointer (&self->json, clip_json_writer_close);
    return FALSE;
  }
no_worker:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Could not start the inference thread: %s", error->message), (NULL));
    g_error_free (error);
    clip_model_cache_release (model);
    g_free (path);
    g_free (json_location);
    g_clear_pointer (&self->json, clip_json_writer_close);
    return FALSE;
  }
}

static gboolean
gst_clip_classify_stop (GstBaseTransform *trans)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  clip_worker_stop (self->worker);
  if (self->model) {
    clip_model_cache_release (self->model);
    self->model = NULL;
  }
  g_clear_pointer (&self->shown, clip_result_free);
  g_clear_pointer (&self->renderer, clip_overlay_free);
  g_clear_pointer (&self->json, clip_json_writer_close);
  clip_track_clear (&self->track);
  return TRUE;
}

static GstStateChangeReturn
gst_clip_classify_change_state (GstElement *element, GstStateChange transition)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (element);
  GstStateChangeReturn ret;

  /* Before chaining up: a streaming thread waiting for a sync result must return FLUSHING,
   * or deactivating the pads would wait for it. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    clip_worker_set_flushing (self->worker, TRUE);

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  /* Still PAUSED: go on analysing. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY && ret == GST_STATE_CHANGE_FAILURE)
    clip_worker_set_flushing (self->worker, FALSE);
  return ret;
}

/* ------------------------------------------------------------------------------------------ */
/* Streaming */

/* What the properties make of a result, read under the object lock at once. */
typedef struct {
  ClipResultFormat format;       /* top-k, threshold, embeddings */
  gdouble smoothing;
  gboolean changes_only;
} GstClipClassifyDelivery;

/* Turns result into the message/meta structure: smoothed and tracked (previous-top-label), and
 * counts an analysed frame. *post: whether the message goes out as far as changes-only is
 * concerned. Streaming thread, no lock held. */
static GstStructure *
gst_clip_classify_describe (GstClipClassify *self, ClipResult *result, GstClockTime timestamp,
                            const GstClipClassifyDelivery *delivery, gboolean *post)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime stream_time = GST_CLOCK_TIME_NONE, running_time = GST_CLOCK_TIME_NONE;
  GstClockTime analysed_time = GST_CLOCK_TIME_NONE;
  ClipResultFormat format = delivery->format;
  GstStructure *s;
  char *previous;
  gboolean first;

  if (GST_CLOCK_TIME_IS_VALID (timestamp) && segment->format == GST_FORMAT_TIME) {
    stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, timestamp);
    running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, timestamp);
  }
  /* smoothing's time steps: the analysed frames' running times */
  if (result->pts != CLIP_WORKER_NO_PTS && segment->format == GST_FORMAT_TIME)
    analysed_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, result->pts);

  if (result->scores) {
    previous = clip_track_update (&self->track, result, analysed_time, delivery->smoothing,
                                  format.threshold, &first);
    /* the first result of a label set or segment always goes out, then changes only */
    *post = !delivery->changes_only || first
        || !g_str_equal (previous, clip_result_top_label (result, format.threshold));
    format.previous_top_label = previous;
  } else {
    /* region=roi: no frame-level labels to smooth or compare; every result goes out */
    previous = NULL;
    *post = TRUE;
  }

  /* A re-score analysed no frame: the statistics are about frames. */
  if (!result->rescored) {
    gboolean raised = FALSE;

    GST_OBJECT_LOCK (self);
    self->frames_analysed++;
    self->last_latency = result->latency_ns;
    self->total_latency += result->latency_ns;
    self->worst_latency = MAX (self->worst_latency, result->latency_ns);
    if (self->worst_latency > self->latency_bound) {
      self->latency_bound = self->worst_latency + self->worst_latency / 4;
      raised = self->mode == GST_CLIP_CLASSIFY_MODE_SYNC;
    }
    GST_OBJECT_UNLOCK (self);
    /* Sync mode holds each sampled buffer for its analysis: live sinks must wait longer. */
    if (raised) {
      GST_INFO_OBJECT (self, "analysis took up to %" GST_TIME_FORMAT ": latency raised",
          GST_TIME_ARGS (result->latency_ns));
      gst_element_post_message (GST_ELEMENT (self), gst_message_new_latency (GST_OBJECT (self)));
    }
  }

  /* `regions` is added by gst_clip_classify_add_regions, made ahead on the worker */
  s = clip_result_to_structure_base (result, &format, timestamp, stream_time, running_time);
  g_free (previous);
  return s;
}
/* Worker thread (a ClipWorkerFinishFunc): a result's regions described for the message and the
 * meta ahead of delivery, with the top-k, threshold and embeddings of now. A structure per
 * region costs microseconds: made here, the streaming thread only moves them into place. */
static void
gst_clip_classify_finish (ClipResult *result, gpointer user_data)
{
  GstClipClassify *self = user_data;
  ClipResultFormat format = { 0 };

  if (!result->regions)
    return;
  GST_OBJECT_LOCK (self);
  format.top_k = self->top_k;
  format.threshold = self->threshold;
  format.embeddings = self->embeddings;
  GST_OBJECT_UNLOCK (self);
  clip_result_prepare_regions (result, &format);
}

/* `regions` into the message's structure s and the meta's (NULL: none), taken from what
 * gst_clip_classify_finish made (made now if the format changed since), not copied. */
static void
gst_clip_classify_add_regions (GstClipClassify *self, ClipResult *result, GstStructure *s,
                               GstCustomMeta *meta, const ClipResultFormat *format)
{
  GValue for_meta = G_VALUE_INIT, for_message = G_VALUE_INIT;

  if (!result->regions)
    return;
  clip_result_take_regions (result, format, &for_meta, &for_message);
  if (meta)
    gst_structure_take_value (gst_custom_meta_get_structure (meta), "regions", &for_meta);
  else
    g_value_unset (&for_meta);
  gst_structure_take_value (s, "regions", &for_message);
}

/* LATENCY: in sync mode a sampled buffer leaves only once analysed, so the element adds its
 * latency bound (the worst analysis time since start, plus a quarter) to upstream's minimum and
 * maximum; a longer analysis raises the bound and posts a LATENCY message. Async mode never
 * holds a buffer and adds nothing. */
static gboolean
gst_clip_classify_query (GstBaseTransform *trans, GstPadDirection direction, GstQuery *query)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  gboolean ret = GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query);
  GstClockTime min, max, ours;
  gboolean live;

  if (!ret || direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return ret;
  GST_OBJECT_LOCK (self);
  ours = self->mode == GST_CLIP_CLASSIFY_MODE_SYNC ? self->latency_bound : 0;
  GST_OBJECT_UNLOCK (self);
  if (ours > 0) {
    gst_query_parse_latency (query, &live, &min, &max);
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += ours;
    GST_DEBUG_OBJECT (self, "latency: adding %" GST_TIME_FORMAT " (sync mode)",
        GST_TIME_ARGS (ours));
    gst_query_set_latency (query, live, min, max);
  }
  return ret;
}

/* Appends s to json-location's file, if one is open. Streaming thread. */
static void
gst_clip_classify_write_json (GstClipClassify *self, const GstStructure *s)
{
  GError *error = NULL;
  char *name;

  if (!self->json)
    return;
  name = gst_object_get_name (GST_OBJECT (self));
  if (!clip_json_writer_write (self->json, s, name, &error)) {
    /* once: a full disk would otherwise post a warning per frame */
    if (!self->json_failed)
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
          ("Could not write a JSON line (json-location): %s", error->message),
          ("later write failures are not reported"));
    self->json_failed = TRUE;
    g_error_free (error);
  }
  g_free (name);
}

/* Posts with no lock held, as level does: a sync bus handler may call back into us. Every
 * result goes to the JSON lines first, posted or not. */
static void
gst_clip_classify_post (GstClipClassify *self, GstStructure *s, gboolean post_messages)
{
  if (!s)
    return;
  gst_clip_classify_write_json (self, s);
  if (post_messages)
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
  else
    gst_structure_free (s);
}

/* Posts, as messages only, the results waiting in the worker: those that have no buffer to ride
 * on, at EOS or in sync mode (the result of the frame that was in the worker when the mode
 * became sync), timed by their own frames as at EOS. A re-score is posted only when
 * keep_rescores is set (async): a sync stream shows frames' own results only. Streaming thread,
 * no lock held. FALSE with error on a failed analysis. */
static gboolean
gst_clip_classify_post_pending (GstClipClassify *self, gboolean keep_rescores,
                                const GstClipClassifyDelivery *delivery, gboolean post_messages,
                                GError **error)
{
  ClipResult *result;

  while ((result = clip_worker_take_result (self->worker, error))) {
    GstClockTime pts = result->pts == CLIP_WORKER_NO_PTS ? GST_CLOCK_TIME_NONE : result->pts;

    if (!result->rescored || keep_rescores) {
      GST_DEBUG_OBJECT (self, "result of %" GST_TIME_FORMAT " posted without a buffer",
          GST_TIME_ARGS (pts));
      gboolean post = FALSE;
      GstStructure *s = gst_clip_classify_describe (self, result, pts, delivery, &post);

      gst_clip_classify_add_regions (self, result, s, NULL, &delivery->format);
      gst_clip_classify_post (self, s, post_messages && post);
    }
    clip_result_free (result);
  }
  return !error || !*error;
}

/* Surfaces a failure to build the requested label set (the previous set stays in use). */
static void
gst_clip_classify_check_labels (GstClipClassify *self, guint n_labels, guint64 generation)
{
  GError *error = clip_worker_take_labels_error (self->worker);

  if (error) {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Could not use the new labels or template: %s", error->message),
        ("the previous label set stays in use"));
    g_error_free (error);
  }
  if (n_labels == 0 && self->warned_generation != generation) {
    self->warned_generation = generation;
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("No labels set: video passes through unclassified."),
        ("Set the labels property, e.g. labels=\"person,dog,empty room\"."));
  }
}

/* The overlay with the shown result's regions: each box with its top label (at the threshold;
 * a box alone when none reaches it). Without regions, the label box alone. */
static GstVideoOverlayComposition *
gst_clip_classify_compose (GstClipClassify *self, const char *const *labels,
                           const double *scores, guint n, gdouble threshold)
{
  const ClipResult *shown = self->shown;
  const ClipRegionList *regions = shown->regions;
  ClipOverlayRegion *boxes;
  GstVideoOverlayComposition *composition;

  if (!regions || regions->n_regions == 0)
    return clip_overlay_get_composition (self->renderer, &self->info, labels, scores, n);

  boxes = g_new0 (ClipOverlayRegion, regions->n_regions);
  for (guint i = 0; i < regions->n_regions; i++) {
    const ClipResult *r = shown->region_results[i];
    guint best;

    boxes[i].x = (int) regions->regions[i].x;
    boxes[i].y = (int) regions->regions[i].y;
    boxes[i].width = (int) regions->regions[i].width;
    boxes[i].height = (int) regions->regions[i].height;
    if (clip_result_top (r, 1, threshold, &best) == 1) {
      boxes[i].label = r->labels->labels[best];
      boxes[i].score = r->scores[best];
    }
  }
  composition = clip_overlay_get_composition_full (self->renderer, &self->info, labels, scores,
                                                   n, boxes, regions->n_regions);
  g_free (boxes);
  return composition;
}

static GstFlowReturn
gst_clip_classify_draw (GstClipClassify *self, GstBuffer *buffer, guint top_k,
                        gdouble threshold)
{
  const ClipResult *shown = self->shown;
  GstVideoOverlayComposition *composition;
  guint *top, n, i;
  const char **labels;
  double *scores;

  top = g_new (guint, MAX (MIN (top_k, shown->labels->n_labels), 1));
  /* region=roi: no frame-level scores, only the regions' boxes */
  n = shown->scores ? clip_result_top (shown, top_k, threshold, top) : 0;
  labels = g_new (const char *, n + 1);
  scores = g_new (double, n + 1);
  for (i = 0; i < n; i++) {
    labels[i] = shown->labels->labels[top[i]];
    scores[i] = shown->scores[top[i]];
  }
  labels[n] = NULL;

  if (!self->renderer)
    self->renderer = clip_overlay_new ();
  composition = gst_clip_classify_compose (self, labels, scores, n, threshold);
  g_free (top);
  g_free (labels);
  g_free (scores);
  if (!composition)
    return GST_FLOW_OK;

  if (self->attach_overlay) {
    GstVideoOverlayCompositionMeta *upstream =
        gst_buffer_get_video_overlay_composition_meta (buffer);

    if (upstream) {
      /* Upstream attached its own overlay: ours goes on top of it, in one composition. */
      GstVideoOverlayComposition *merged =
          gst_video_overlay_composition_copy (upstream->overlay);

      for (i = 0; i < gst_video_overlay_composition_n_rectangles (composition); i++)
        gst_video_overlay_composition_add_rectangle (merged,
            gst_video_overlay_composition_get_rectangle (composition, i));
      gst_buffer_remove_meta (buffer, (GstMeta *) upstream);
      gst_buffer_add_video_overlay_composition_meta (buffer, merged);
      gst_video_overlay_composition_unref (merged);
    } else {
      gst_buffer_add_video_overlay_composition_meta (buffer, composition);
    }
  } else {
    GstVideoFrame frame;

    if (!gst_video_frame_map (&frame, &self->info, buffer, GST_MAP_READWRITE)) {
      gst_video_overlay_composition_unref (composition);
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the video frame to draw on"),
          (NULL));
      return GST_FLOW_ERROR;
    }
    gst_video_overlay_composition_blend (composition, &frame);
    gst_video_frame_unmap (&frame);
  }
  gst_video_overlay_composition_unref (composition);
  return GST_FLOW_OK;
}

/* A sampled frame with nothing to analyse in roi mode: no inference, no result, and the boxes
 * of an earlier frame are not drawn on it (nothing is detected now). Returns FALSE (sampled). */
static gboolean
gst_clip_classify_no_regions (GstClipClassify *self, GstClockTime pts)
{
  GST_LOG_OBJECT (self, "no region on frame %" GST_TIME_FORMAT ": not analysed",
                  GST_TIME_ARGS (pts));
  g_clear_pointer (&self->shown, clip_result_free);
  return FALSE;
}

/* The regions of a frame the worker is about to take (microseconds, no pixels: the list
 * travels with the frame copy), or NULL when there is nothing to analyse (roi mode, no region
 * left after filtering and clamping). */
static ClipRegionList *
gst_clip_classify_regions (GstClipClassify *self, GstBuffer *buffer,
                           GstClipClassifyRegion region, GBytes *roi_types, guint max_regions,
                           GstClockTime pts)
{
  ClipRegionList *regions = clip_region_list_collect (buffer,
      GST_VIDEO_INFO_WIDTH (&self->info), GST_VIDEO_INFO_HEIGHT (&self->info),
      region == GST_CLIP_CLASSIFY_REGION_BOTH, roi_types, max_regions);

  if (!regions)
    gst_clip_classify_no_regions (self, pts);
  return regions;
}

static GstFlowReturn
gst_clip_classify_transform_ip (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstClipClassifyMode mode;
  guint interval, top_k, n_labels;
  gdouble threshold;
  GstClipClassifyDelivery delivery;
  gboolean post = FALSE;
  gboolean overlay, post_messages, sampled, own_result = FALSE;
  ClipCrop crop;
  GstClipClassifyRegion region;
  g_autoptr (GBytes) roi_types = NULL;
  guint max_regions;
  g_autoptr (ClipRegionList) regions = NULL;      /* until handed over with the frame */
  guint64 generation;
  ClipResult *result = NULL;
  ClipFrame *handover = NULL;
  GstStructure *s = NULL;
  GError *error = NULL;
  GstFlowReturn ret = GST_FLOW_OK;

  /* Values only: the lock is not held across anything that waits, computes or posts. */
  GST_OBJECT_LOCK (self);
  mode = self->mode;
  interval = self->interval;
  top_k = self->top_k;
  threshold = self->threshold;
  delivery = (GstClipClassifyDelivery) {
    .format = { .top_k = top_k, .threshold = threshold, .embeddings = self->embeddings },
    .smoothing = self->smoothing, .changes_only = self->changes_only };
  overlay = self->overlay;
  post_messages = self->post_messages;
  n_labels = self->n_labels;
  generation = self->labels_generation;
  crop = gst_clip_classify_engine_crop (self->crop);
  region = self->region;
  roi_types = self->roi_type_quarks ? g_bytes_ref (self->roi_type_quarks) : NULL;
  max_regions = self->max_regions;
  GST_OBJECT_UNLOCK (self);

  gst_clip_classify_check_labels (self, n_labels, generation);

  sampled = n_labels > 0 && self->frame_count++ % interval == 0;
  /* roi mode: a frame without any region meta has nothing to analyse (a first look at the
   * metas; which of them count is read only for a frame the worker will take) */
  if (sampled && region == GST_CLIP_CLASSIFY_REGION_ROI && !clip_region_list_may_have (buffer))
    sampled = gst_clip_classify_no_regions (self, pts);
  if (n_labels == 0) {
    /* No labels: nothing is drawn and no result attached, not even the last one shown or one
     * the worker finished under the previous labels. */
    result = clip_worker_take_result (self->worker, &error);
    if (error)
      goto analysis_failed;
    g_clear_pointer (&result, clip_result_free);
    g_clear_pointer (&self->shown, clip_result_free);
  } else if (mode == GST_CLIP_CLASSIFY_MODE_ASYNC) {
    gpointer spare = NULL;
    gboolean reserved = sampled && clip_worker_try_reserve (self->worker, &spare);

    /* Which regions count is read only for a frame the worker takes: a busy worker costs the
     * buffer nothing more than without regions. */
    if (reserved && region != GST_CLIP_CLASSIFY_REGION_FRAME) {
      regions = gst_clip_classify_regions (self, buffer, region, roi_types, max_regions, pts);
      if (!regions) {
        if (spare)
          clip_worker_return_spare (self->worker, spare);
        spare = NULL;
        reserved = FALSE;
        sampled = FALSE;
      }
    }
    /* The frame is copied now, before any overlay is drawn, but handed over last (below). */
    if (reserved) {
      handover = spare ? spare : clip_frame_new ();
      handover->crop = crop;
      clip_frame_set_regions (handover, g_steal_pointer (&regions));
      if (!clip_frame_fill (handover, &self->info, buffer))
        goto map_failed;
    } else if (sampled) {
      GST_LOG_OBJECT (self, "worker busy, skipping frame %" GST_TIME_FORMAT,
                      GST_TIME_ARGS (pts));
      GST_OBJECT_LOCK (self);
      self->frames_skipped++;
      GST_OBJECT_UNLOCK (self);
    }
    /* After the reserve: an idle worker's last result is queued by now, and goes on this
     * buffer (the oldest first, when a re-score waits behind it). */
    result = clip_worker_take_result (self->worker, &error);
    if (error)
      goto analysis_failed;
  } else {
    ClipFrame *frame;
    gpointer spare;
    gboolean flushing = FALSE;
    guint64 seq;

    /* A sync buffer carries its own frame's result: any other goes out as a message. */
    if (!gst_clip_classify_post_pending (self, FALSE, &delivery, post_messages, &error))
      goto analysis_failed;
    if (sampled && region != GST_CLIP_CLASSIFY_REGION_FRAME
        && !(regions = gst_clip_classify_regions (self, buffer, region, roi_types, max_regions,
                                                  pts)))
      sampled = FALSE;
    if (sampled) {
      /* After a switch from async a frame may still be in the worker: let it finish, and post
       * its result before this frame's. */
      if (!clip_worker_wait_idle (self->worker, &spare))
        goto flushing;
      if (!gst_clip_classify_post_pending (self, FALSE, &delivery, post_messages, &error)) {
        clip_worker_return_spare (self->worker, spare);
        goto analysis_failed;
      }
      frame = spare ? spare : clip_frame_new ();
      frame->crop = crop;
      clip_frame_set_regions (frame, g_steal_pointer (&regions));
      if (!clip_frame_fill (frame, &self->info, buffer)) {
        clip_worker_return_spare (self->worker, frame);
        goto map_failed;
      }
      seq = clip_worker_submit (self->worker, frame, pts);
      result = clip_worker_wait_result (self->worker, seq, &flushing, &error);
      if (flushing)
        goto flushing;
      if (error)
        goto analysis_failed;
      own_result = result != NULL;
    }
  }

  if (result) {
    GstCustomMeta *meta;

    s = gst_clip_classify_describe (self, result, pts, &delivery, &post);
    meta = gst_clip_classify_meta_add (buffer, s);
    gst_clip_classify_add_regions (self, result, s, meta, &delivery.format);
    /* This buffer's own regions were analysed (sync): each ROI meta gets its result. */
    if (own_result && result->regions)
      clip_result_attach_roi_params (result, buffer, &delivery.format);
#ifdef HAVE_GST_ANALYTICS
    /* and as GstAnalytics ClsMtds, the ODMtd regions' related to them when they are ours */
    clip_analytics_add_result (buffer, result, own_result);
#endif
    g_clear_pointer (&self->shown, clip_result_free);
    self->shown = g_steal_pointer (&result);
  }

  /* After the frame copy: the model never sees the overlay. */
  if (overlay && self->shown && self->shown->labels->n_labels > 0)
    ret = gst_clip_classify_draw (self, buffer, top_k, threshold);

  gst_clip_classify_post (self, s, post_messages && post);

  /* Last: the worker's threads wake up and take the cores, so everything this thread still had
   * to do for the buffer is done by now. Results the worker finishes meanwhile (a re-score)
   * wait in its queue for the next buffer. */
  if (handover) {
    if (ret == GST_FLOW_OK)
      clip_worker_submit (self->worker, handover, pts);
    else
      clip_worker_return_spare (self->worker, handover);
  }
  return ret;

  /* ERRORS */
flushing:
  {
    GST_DEBUG_OBJECT (self, "flushing while waiting for the result");
    clip_result_free (result);
    return GST_FLOW_FLUSHING;
  }
map_failed:
  {
    if (handover)
      clip_worker_return_spare (self->worker, handover);
    clip_result_free (result);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the video frame"), (NULL));
    return GST_FLOW_ERROR;
  }
analysis_failed:
  {
    if (handover)
      clip_worker_return_spare (self->worker, handover);
    clip_result_free (result);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Classification failed: %s", error->message),
        (NULL));
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
}

/* GstBaseTransform honours set_in_place (FALSE) only for elements that can also copy, and we
 * need it between set_caps and decide_allocation. decide_allocation puts us back in place, so
 * this copy runs only if that never happened. */
static GstFlowReturn
gst_clip_classify_transform (GstBaseTransform *trans, GstBuffer *inbuf, GstBuffer *outbuf)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);
  GstVideoFrame in, out;
  gboolean copied;

  if (!gst_video_frame_map (&in, &self->info, inbuf, GST_MAP_READ))
    goto map_failed;
  if (!gst_video_frame_map (&out, &self->info, outbuf, GST_MAP_WRITE)) {
    gst_video_frame_unmap (&in);
    goto map_failed;
  }
  copied = gst_video_frame_copy (&out, &in);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  if (!copied)
    goto map_failed;
  return gst_clip_classify_transform_ip (trans, outbuf);

  /* ERRORS */
map_failed:
  {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not copy the video frame"), (NULL));
    return GST_FLOW_ERROR;
  }
}

static gboolean
gst_clip_classify_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      /* Before chaining up, as for PAUSED->READY: a sync wait returns FLUSHING. */
      clip_worker_set_flushing (self->worker, TRUE);
      break;
    case GST_EVENT_FLUSH_STOP:
      /* Results of frames from before the flush would be attached to the wrong position. */
      clip_worker_set_flushing (self->worker, FALSE);
      self->frame_count = 0;
      g_clear_pointer (&self->shown, clip_result_free);
      /* smoothing and changes-only start afresh */
      clip_track_reset (&self->track);
      break;
    case GST_EVENT_SEGMENT:
      /* a new segment too (a seek, a loop, the next file) */
      clip_track_reset (&self->track);
      break;
    case GST_EVENT_EOS:{
      GstClipClassifyMode mode;
      GError *error = NULL;
      gboolean post_messages;
      GstClipClassifyDelivery delivery;

      GST_OBJECT_LOCK (self);
      mode = self->mode;
      post_messages = self->post_messages;
      delivery = (GstClipClassifyDelivery) {
        .format = { .top_k = self->top_k, .threshold = self->threshold,
                    .embeddings = self->embeddings },
        .smoothing = self->smoothing, .changes_only = self->changes_only };
      GST_OBJECT_UNLOCK (self);

      /* The frame in the worker (async mode, or async until a switch to sync) is the last one
       * analysed; its result has no buffer left to ride on, so it goes out as a message only
       * (see the element docs), followed in async mode by its re-score against newer labels. */
      if (clip_worker_wait_idle (self->worker, NULL)
          && !gst_clip_classify_post_pending (self, mode == GST_CLIP_CLASSIFY_MODE_ASYNC,
                                              &delivery, post_messages, &error)) {
        GST_ELEMENT_WARNING (self, STREAM, FAILED,
            ("Classification failed: %s", error->message), (NULL));
        g_error_free (error);
      }
      break;
    }
    default:
      break;
  }

  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* ------------------------------------------------------------------------------------------ */
/* GObject */

static void
gst_clip_classify_finalize (GObject *object)
{
  GstClipClassify *self = GST_CLIP_CLASSIFY (object);

  clip_worker_free (self->worker);
  g_clear_pointer (&self->shown, clip_result_free);
  clip_track_clear (&self->track);
  g_clear_pointer (&self->renderer, clip_overlay_free);
  g_free (self->model_path);
  g_free (self->labels);
  g_free (self->negative_labels);
  g_free (self->template_);
  g_free (self->json_location);
  g_free (self->roi_types);
  g_bytes_unref (self->roi_type_quarks);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_classify_init (GstClipClassify *self)
{
  self->model_path = gst_clip_classify_default_model ();
  self->labels = g_strdup (DEFAULT_PROP_LABELS);
  self->template_ = g_strdup (DEFAULT_PROP_TEMPLATE);
  self->negative_labels = g_strdup (DEFAULT_PROP_NEGATIVE_LABELS);
  self->labels_generation = 1;
  self->interval = DEFAULT_PROP_INTERVAL;
  self->mode = DEFAULT_PROP_MODE;
  self->top_k = DEFAULT_PROP_TOP_K;
  self->threshold = DEFAULT_PROP_THRESHOLD;
  self->overlay = DEFAULT_PROP_OVERLAY;
  self->threads = DEFAULT_PROP_THREADS;
  self->precision = DEFAULT_PROP_PRECISION;
  self->post_messages = DEFAULT_PROP_POST_MESSAGES;
  self->embeddings = DEFAULT_PROP_EMBEDDINGS;
  self->json_location = g_strdup (DEFAULT_PROP_JSON_LOCATION);
  self->smoothing = DEFAULT_PROP_SMOOTHING;
  self->changes_only = DEFAULT_PROP_CHANGES_ONLY;
  self->crop = DEFAULT_PROP_CROP;
  self->region = DEFAULT_PROP_REGION;
  self->roi_types = g_strdup (DEFAULT_PROP_ROI_TYPES);
  self->roi_type_quarks = clip_region_types_parse (DEFAULT_PROP_ROI_TYPES);
  self->max_regions = DEFAULT_PROP_MAX_REGIONS;
  clip_track_init (&self->track);
  gst_video_info_init (&self->info);

  self->worker = clip_worker_new (clip_frame_prepare, clip_frame_converter_new (),
      (GDestroyNotify) clip_frame_converter_free, (GDestroyNotify) clip_frame_free);
  clip_worker_set_labels_full (self->worker, self->labels_generation, self->labels,
                               self->negative_labels, self->template_);
  clip_worker_set_rescore (self->worker, self->mode == GST_CLIP_CLASSIFY_MODE_ASYNC);
  clip_worker_set_finish (self->worker, gst_clip_classify_finish, self);

  /* Never passthrough: results are added as meta, so buffers must be writable. */
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_clip_classify_class_init (GstClipClassifyClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  char *default_model = gst_clip_classify_default_model ();

  GST_DEBUG_CATEGORY_INIT (gst_clip_classify_debug, "clipclassify", 0,
                           "zero-shot CLIP video classification");

  gobject_class->set_property = gst_clip_classify_set_property;
  gobject_class->get_property = gst_clip_classify_get_property;
  gobject_class->finalize = gst_clip_classify_finalize;

  /**
   * GstClipClassify:model:
   *
   * The HuggingFace CLIP model directory (config.json, model.safetensors, vocab.json,
   * merges.txt, preprocessor_config.json). Default: $CLIPCLASSIFY_MODEL if set, else
   * `<user data dir>/clipclassify/models/clip-vit-base-patch16`, where
   * scripts/download-model.sh puts it. Read when going from READY to PAUSED: a value set while
   * PAUSED or PLAYING is kept for the next start (the debug log warns).
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "CLIP model directory (HuggingFace layout). Default: $CLIPCLASSIFY_MODEL, else "
          "<user data dir>/clipclassify/models/clip-vit-base-patch16",
          default_model,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));

  /**
   * GstClipClassify:labels:
   *
   * Comma-separated labels, trimmed of surrounding whitespace; repeats count once. A value with
   * a semicolon is split on semicolons instead, so labels can contain commas; a backslash
   * escapes a separator or itself. Can be changed in any state, PLAYING included: the new set is swapped in once
   * its text embeddings are ready, without stalling the video.
   */
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Labels to classify against, separated by commas (or by semicolons if there is one, "
          "so that labels can contain commas; a backslash escapes a separator). Settable while "
          "playing",
          DEFAULT_PROP_LABELS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:template:
   *
   * The prompt each label is put into: every `{}` is replaced by the label. `{}` alone uses
   * the labels verbatim.
   *
   * Several templates separated by `|` make a prompt ensemble (as in CLIP's prompt engineering
   * notebook): a label's text embedding is the L2-normalised mean of the L2-normalised
   * embeddings of each template filled with the label. Spaces around each template are trimmed,
   * empty members ignored, and `\|` is a literal bar; every template must contain `{}`.
   * `imagenet-80` names CLIP's 80 ImageNet templates and `imagenet-7` the 7 its notebook
   * selects (a member of a longer list may name a set too). Each prompt's embedding is cached:
   * relabeling embeds only the new prompts. Can be changed while playing.
   */
  g_object_class_install_property (gobject_class, PROP_TEMPLATE,
      g_param_spec_string ("template", "Prompt template",
          "Prompt made from each label: \"{}\" is replaced by the label. Several separated by "
          "\"|\" (\"\\|\" for a literal bar) are ensembled; \"imagenet-80\" and \"imagenet-7\" "
          "name CLIP's ImageNet ensembles. Settable while playing",
          DEFAULT_PROP_TEMPLATE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:interval:
   *
   * Analyse at most every Nth frame (frames 0, N, 2N... since start or the last flush). In
   * async mode a sampled frame is still skipped while the worker is busy.
   */
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint ("interval", "Interval",
          "Analyse at most every Nth frame", 1, G_MAXUINT, DEFAULT_PROP_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:mode:
   *
   * async: the streaming thread never waits for inference; sync: every sampled frame waits
   * for its own result.
   */
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "async: never delay video, attach results to the next buffer; sync: each sampled "
          "frame waits for its own result",
          GST_TYPE_CLIP_CLASSIFY_MODE, DEFAULT_PROP_MODE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:top-k:
   *
   * How many of the best labels the overlay shows and the `top-labels`/`top-scores` fields
   * hold (`labels`/`scores` always carry the whole set).
   */
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_uint ("top-k", "Top k",
          "Number of best labels in top-labels/top-scores and on the overlay",
          1, G_MAXINT, DEFAULT_PROP_TOP_K,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:threshold:
   *
   * Only labels with at least this probability enter `top-labels`/`top-scores` (and so
   * `top-label`/`top-score`, their first) and the overlay.
   */
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          "Minimum probability for top-labels/top-scores, top-label and the overlay", 0.0, 1.0,
          DEFAULT_PROP_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:overlay:
   *
   * Draw the best labels and their scores on the video (attached as
   * GstVideoOverlayCompositionMeta when downstream supports it, else blended). When %FALSE,
   * the output pixels are exactly the input pixels.
   */
  g_object_class_install_property (gobject_class, PROP_OVERLAY,
      g_param_spec_boolean ("overlay", "Overlay",
          "Draw the best labels and scores on the video", DEFAULT_PROP_OVERLAY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:threads:
   *
   * Threads of the worker's forward passes; 0 uses every online core. Read when going from
   * READY to PAUSED, like #GstClipClassify:model.
   */
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_uint ("threads", "Threads",
          "Inference threads (0 = all cores)", 0, 1024, DEFAULT_PROP_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:precision:
   *
   * Arithmetic of the model's GEMMs. `bf16` packs the weights as bfloat16 and multiplies with
   * AVX512_BF16 (fp32 accumulation): about half the inference time and memory, embeddings within
   * a cosine of about 0.9999 of fp32's (README). On a CPU without AVX512_BF16 the model runs
   * fp32 and the debug log says so. Read when going from READY to PAUSED, like
   * #GstClipClassify:model; elements asking for the same model in different precisions each get
   * their own copy.
   */
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "GEMM arithmetic: fp32, or bf16 on CPUs with AVX512_BF16", GST_TYPE_CLIP_CLASSIFY_PRECISION,
          DEFAULT_PROP_PRECISION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:post-messages:
   *
   * Post a `clipclassify` element message for every result. The buffer meta is attached
   * either way.
   */
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post a \"clipclassify\" element message for every result",
          DEFAULT_PROP_POST_MESSAGES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:negative-labels:
   *
   * "None of these": labels that are scored in the same softmax as #GstClipClassify:labels
   * but are never an answer (same syntax as #GstClipClassify:labels; one that is also a label
   * counts as a label). `labels`/`scores` keep the labels' probabilities (of the joint softmax),
   * and `negative-labels`/`negative-scores` carry these. `top-labels`/`top-scores` and the overlay
   * hold only labels whose probability exceeds every negative label's (and passes
   * #GstClipClassify:threshold); `top-label` is the best label if it does, else "" with a
   * `top-score` of 0, and the overlay then shows nothing. Empty (the default): none. Can be changed
   * while playing, like #GstClipClassify:labels.
   */
  g_object_class_install_property (gobject_class, PROP_NEGATIVE_LABELS,
      g_param_spec_string ("negative-labels", "Negative labels",
          "\"None of these\" labels, scored in the same softmax as labels but never an answer: "
          "a label enters top-labels only above all of them (same syntax as labels; empty = "
          "none). Settable while playing",
          DEFAULT_PROP_NEGATIVE_LABELS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:embeddings:
   *
   * Add the analysed frame's image embedding to every result, as the `image-embedding` field:
   * projection_dim floats (512 for ViT-B), L2-normalised, in a #GstValueArray of %G_TYPE_FLOAT
   * (a list in Python), for search and indexing. Dot products of two of them are cosine
   * similarities. pipelines/embeddings.py stores them and searches them.
   */
  g_object_class_install_property (gobject_class, PROP_EMBEDDINGS,
      g_param_spec_boolean ("embeddings", "Embeddings",
          "Add the L2-normalised image embedding (image-embedding, projection_dim floats) to "
          "every result", DEFAULT_PROP_EMBEDDINGS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:smoothing:
   *
   * Temporal smoothing of the scores, in seconds (a time constant); 0 (the default) is off.
   * Per label set and segment, with p the probabilities of a result (labels and negative labels)
   * and Δt the difference of the analysed frames' running times in seconds, the smoothed values
   * are s₁ = p₁ and sₖ = sₖ₋₁ + αₖ (pₖ − sₖ₋₁), αₖ = 1 − exp (−Δtₖ / smoothing): an exponential
   * moving average that weighs frames by the time between them, whatever the frame rate or
   * #GstClipClassify:interval. Results then add `smoothed-scores` and
   * `smoothed-negative-scores`; `scores` stay raw, and `top-labels`, `top-scores`, `top-label`,
   * `top-score` and the overlay use the smoothed values. Smoothing starts afresh with a new label
   * set (any change of #GstClipClassify:labels, #GstClipClassify:negative-labels or
   * #GstClipClassify:template, even back to an earlier one), after a flush and at a new segment.
   * Can be changed while playing.
   */
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_double ("smoothing", "Smoothing",
          "Time constant in seconds of the exponential smoothing of scores over analysed frames "
          "(0 = off); top-labels, top-label and the overlay then use smoothed-scores",
          0.0, G_MAXDOUBLE, DEFAULT_PROP_SMOOTHING,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:changes-only:
   *
   * Post a `clipclassify` message only when `top-label` differs from that of the last one
   * posted: the first result of a label set, after a flush or at a new segment is always posted
   * (also when an earlier label set comes back). Every message carries `previous-top-label`,
   * the `top-label` of the result before it ("" for the first of a label set or segment). The
   * meta still rides on every buffer that carries a result, and #GstClipClassify:json-location
   * still gets every result. Can be changed while playing.
   */
  g_object_class_install_property (gobject_class, PROP_CHANGES_ONLY,
      g_param_spec_boolean ("changes-only", "Changes only",
          "Post a message only when top-label changes (and for the first result of a label "
          "set or segment); the meta still rides on every result's buffer",
          DEFAULT_PROP_CHANGES_ONLY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:json-location:
   *
   * A file to which every result is appended as one JSON object per line (JSON lines), whether
   * or not messages are posted (#GstClipClassify:post-messages, #GstClipClassify:changes-only):
   * every field of the message under its own name (arrays as JSON arrays, times as integers in
   * nanoseconds, null when unknown) and `"element"`, the element's name. Each line is written
   * out (unbuffered) as soon as the result is. `-` is the standard output; empty (the default)
   * writes nothing. The file is created if missing and appended to otherwise. Opened when going
   * from READY to PAUSED, like #GstClipClassify:model: a path that cannot be opened fails that
   * state change with an error naming it.
   */
  g_object_class_install_property (gobject_class, PROP_JSON_LOCATION,
      g_param_spec_string ("json-location", "JSON lines location",
          "Append every result as one JSON object per line to this file (\"-\" = stdout, "
          "empty = none), messages posted or not. Opened at READY->PAUSED",
          DEFAULT_PROP_JSON_LOCATION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:frames-analysed:
   *
   * Frames analysed whose results were delivered since the element last went to PAUSED.
   * Re-scored results (see `rescored`) are not counted: no frame was analysed for them.
   */
  g_object_class_install_property (gobject_class, PROP_FRAMES_ANALYSED,
      g_param_spec_uint64 ("frames-analysed", "Frames analysed",
          "Analysed frames whose results were delivered since READY->PAUSED (re-scored "
          "results not counted)", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstClipClassify:frames-skipped:
   *
   * Sampled frames not analysed because the worker was busy (async mode).
   */
  g_object_class_install_property (gobject_class, PROP_FRAMES_SKIPPED,
      g_param_spec_uint64 ("frames-skipped", "Frames skipped",
          "Sampled frames skipped because the worker was busy (async)", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstClipClassify:last-latency:
   *
   * Worker time for the newest result, in nanoseconds.
   */
  g_object_class_install_property (gobject_class, PROP_LAST_LATENCY,
      g_param_spec_uint64 ("last-latency", "Last latency",
          "Inference time of the newest result (ns)", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstClipClassify:average-latency:
   *
   * Mean worker time per result since READY->PAUSED, in nanoseconds.
   */
  g_object_class_install_property (gobject_class, PROP_AVERAGE_LATENCY,
      g_param_spec_uint64 ("average-latency", "Average latency",
          "Mean inference time per result (ns)", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstClipClassify:crop:
   *
   * What part of each analysed picture (the frame, and each region) the model sees. `center`
   * is HF's CLIPImageProcessor as the model's preprocessor_config.json says: the shortest edge
   * resized and the centre cropped, so a 1280x720 frame's left and right 280 pixels are never
   * seen. `squash` resizes the whole picture to the model's input size (the same bicubic
   * filter; the aspect ratio is not kept). `pad` places the picture on a square of side
   * max(width, height), centred, filled with the model's mean colour (round(255 x image_mean)),
   * then processes that as `center`: everything is seen at its own aspect ratio, smaller. The
   * policy is taken with each frame handed to the worker.
   */
  g_object_class_install_property (gobject_class, PROP_CROP,
      g_param_spec_enum ("crop", "Crop policy",
          "What of each analysed picture the model sees: center (shortest edge resized, centre "
          "cropped, as HF's CLIPImageProcessor), squash (whole picture resized, aspect not "
          "kept) or pad (whole picture padded to a square with the mean colour)",
          GST_TYPE_CLIP_CLASSIFY_CROP, DEFAULT_PROP_CROP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:region:
   *
   * What of each sampled frame is classified: `frame` (the whole frame, as without regions),
   * `roi` (each region of interest and not the frame) or `both`. Regions are the buffer's
   * #GstVideoRegionOfInterestMeta (and, in builds for GStreamer 1.24 or later, its
   * GstAnalyticsODMtd), filtered by #GstClipClassify:roi-types, clamped to the frame (empty ones
   * skipped), largest area first, at most #GstClipClassify:max-regions. Each is cut out of the
   * frame, preprocessed with #GstClipClassify:crop and classified against the labels; the frame
   * and all its regions go through the model in one batched pass. With `roi`, a sampled frame
   * without regions is not analysed: no message, no meta.
   */
  g_object_class_install_property (gobject_class, PROP_REGION,
      g_param_spec_enum ("region", "Region",
          "What of each sampled frame is classified: frame (the whole frame), roi (each region "
          "of interest meta, not the frame) or both",
          GST_TYPE_CLIP_CLASSIFY_REGION, DEFAULT_PROP_REGION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:roi-types:
   *
   * Only regions of these types are classified: a comma-separated list of roi-type names (a
   * region of interest meta's `roi_type`, a detection's class), each trimmed of whitespace.
   * Empty (the default) takes every type.
   */
  g_object_class_install_property (gobject_class, PROP_ROI_TYPES,
      g_param_spec_string ("roi-types", "ROI types",
          "Comma-separated roi-type names of the regions to classify (empty = every type)",
          DEFAULT_PROP_ROI_TYPES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  /**
   * GstClipClassify:max-regions:
   *
   * At most this many regions of a frame are classified, the largest (by area inside the
   * frame) first. Each costs about what a frame costs to analyse; up to 31 regions and the
   * frame go through the model in one batched pass, more in several.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_REGIONS,
      g_param_spec_uint ("max-regions", "Max regions",
          "Most regions classified per frame, largest area first", 1, MAX_PROP_MAX_REGIONS,
          DEFAULT_PROP_MAX_REGIONS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_DOC_SHOW_DEFAULT));

  g_free (default_model);

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_clip_classify_change_state);

  gst_element_class_set_static_metadata (element_class,
      "CLIP zero-shot classifier", "Filter/Analyzer/Video",
      "Classifies video against labels chosen at run time with OpenAI CLIP, posting the "
      "results as messages and buffer meta", "clipclassify developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_clip_classify_transform_caps);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_clip_classify_set_caps);
  trans_class->decide_allocation = GST_DEBUG_FUNCPTR (gst_clip_classify_decide_allocation);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_classify_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_classify_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_clip_classify_transform_ip);
  trans_class->transform = GST_DEBUG_FUNCPTR (gst_clip_classify_transform);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_classify_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_clip_classify_query);
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_MODE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_PRECISION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_CROP, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_REGION, 0);
}
