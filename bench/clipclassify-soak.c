/* clipclassify-soak — the element over a long run: memory, descriptors, threads, results; JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   clipclassify-soak --model DIR [--frames 100000] [--relabel-every 10] [--cycle-every 1000]
 *                     [--caps-every 5000] [--sample-every 1000] [--baseline 1000]
 *                     [--mode sync] [--threads 2] [--max-rss-growth-kib 2048] [--pull-timeout 30]
 *
 * Runs
 *
 *   appsrc is-live=true format=time ! clipclassify ! appsink sync=false
 *
 * one frame at a time, as fast as the element goes: frame i is pushed, then pulled at the sink
 * (with mode=sync and interval=1, each frame carries its own result). Meanwhile:
 * - every relabel-every frames the labels change to a new set (2 to 5 labels never used before,
 *   so the element's prompt cache fills and trims);
 * - every cycle-every frames the pipeline goes NULL -> PLAYING (the model is released and
 *   loaded again, the worker and its threads stopped and started; 0: never);
 * - every caps-every frames the caps change (size and format: I420, NV12, YUY2 at an odd width,
 *   RGB, GRAY8).
 * Every sample-every frames (just before that frame's cycle) it samples the process: resident
 * memory (/proc/self/status VmRSS, RssAnon, RssFile), the same after malloc_trim (0) has given
 * the allocator's free pages back to the system, malloc's bytes in use (mallinfo2, every
 * arena), open file descriptors (/proc/self/fd) and threads.
 *
 * Checks (exit status 1 when one fails; the JSON says which):
 * - resident memory, measured after malloc_trim, grows by at most max-rss-growth-kib from the
 *   sample at `baseline` frames (the first frames load the model, fill caches and pools) to the
 *   last one. Without the trim glibc keeps freed pages of its per-thread arenas (the worker
 *   thread is a new one after every cycle): that figure is reported too ("untrimmed"), and so
 *   is malloc's bytes in use, the live heap;
 * - descriptors and threads are flat: no sample after the baseline above it;
 * - every result is scored against exactly one label set, whole: its `labels` are one set the
 *   program asked for, in order; in sync mode the set in force when the frame was pushed, and in
 *   async mode never an older set than an earlier result's;
 * - sync mode loses no result: every frame comes out with its own result (analysed-pts = its
 *   PTS) and one bus message per result;
 * - no ERROR message on the bus, no frame missing at the sink.
 * The program's own bookkeeping is constant in size (the last 64 label sets only).
 */
#include "bench-element.h"

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *model, *mode;
  gint64 frames, relabel_every, cycle_every, caps_every, sample_every, baseline;
  int threads, pull_timeout_s;
  gint64 max_rss_growth_kib;
} Options;

typedef struct {
  gint64 frame;
  gint64 rss_kib;            /* VmRSS: RssAnon + RssFile + RssShmem */
  gint64 rss_anon_kib;       /* private memory: the heap, stacks */
  gint64 rss_file_kib;       /* mapped files: libraries, the model's weights */
  gint64 rss_trimmed_kib;    /* VmRSS after malloc_trim (0) */
  gint64 rss_anon_trimmed_kib;
  gint64 heap_kib;           /* malloc's bytes in use, every arena (mallinfo2) */
  gint64 fds;
  gint64 threads;
} Sample;

#define SET_WINDOW 64

typedef struct {
  Options opt;
  GstElement *pipeline, *src, *clip, *sink;
  GstBus *bus;
  gboolean sync_mode;

  /* the last SET_WINDOW label sets asked for: set k -> "a,b,c" (as a result's labels joined by
   * commas) in sets[k % SET_WINDOW]. A result scored against an older set is an error anyway,
   * and keeping every set would grow this program's own memory. */
  char *sets[SET_WINDOW];
  guint n_sets;
  guint current_set;
  gint64 last_result_set;    /* async: the newest set a result was scored against so far */

  GArray *samples;           /* Sample */
  gint64 pushed, pulled, with_result, own_result, missing_result, wrong_set, older_set,
      unknown_set, messages, state_cycles, caps_changes, relabels;
  GPtrArray *errors;         /* the first few failures, as text */
  gint64 n_errors;
} Soak;

typedef struct {
  GstVideoFormat format;
  int width, height;
} CapsStep;

static const CapsStep caps_cycle[] = {
  { GST_VIDEO_FORMAT_I420, 320, 240 },
  { GST_VIDEO_FORMAT_NV12, 256, 144 },
  { GST_VIDEO_FORMAT_YUY2, 321, 181 },
  { GST_VIDEO_FORMAT_RGB, 160, 120 },
  { GST_VIDEO_FORMAT_GRAY8, 200, 150 },
};

static void
fail (Soak *soak, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
fail (Soak *soak, const char *format, ...)
{
  va_list args;

  soak->n_errors++;
  if (soak->errors->len >= 20)
    return;
  va_start (args, format);
  g_ptr_array_add (soak->errors, g_strdup_vprintf (format, args));
  va_end (args);
}

/* ------------------------------------------------------------------------------------------ */
/* the process, from /proc */

/* A "Name: value" line of /proc/self/status, or -1. */
static gint64
status_field (const char *name)
{
  char line[256];
  gint64 value = -1;
  gsize len = strlen (name);
  FILE *f = fopen ("/proc/self/status", "r");

  if (!f)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, name, len) == 0 && line[len] == ':') {
      value = g_ascii_strtoll (line + len + 1, NULL, 10);
      break;
    }
  fclose (f);
  return value;
}

static int
open_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *entry;
  int n = 0;

  if (!dir)
    return -1;
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir (dir);
  return n - 1;              /* the directory being read */
}

static void
take_sample (Soak *soak)
{
  Sample s = { soak->pushed, status_field ("VmRSS"), status_field ("RssAnon"),
               status_field ("RssFile"), -1, -1, -1, open_fds (), status_field ("Threads") };

  /* the same after glibc's allocator has given its free pages back to the system */
  struct mallinfo2 m = mallinfo2 ();
  s.heap_kib = (gint64) ((m.uordblks + m.hblkhd) / 1024);
  malloc_trim (0);
  s.rss_trimmed_kib = status_field ("VmRSS");
  s.rss_anon_trimmed_kib = status_field ("RssAnon");

  g_array_append_val (soak->samples, s);
}

/* ------------------------------------------------------------------------------------------ */
/* the pipeline */

static void
drain_bus (Soak *soak)
{
  GstMessage *msg;

  while ((msg = gst_bus_pop (soak->bus)) != NULL) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *error = NULL;
      gst_message_parse_error (msg, &error, NULL);
      fail (soak, "frame %" G_GINT64_FORMAT ": ERROR from %s: %s", soak->pushed,
            GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), error->message);
      g_error_free (error);
    } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT
               && gst_message_has_name (msg, "clipclassify")) {
      soak->messages++;
    }
    gst_message_unref (msg);
  }
}

static gboolean
set_state (Soak *soak, GstState state)
{
  /* (to PLAYING the sink completes its state change with the first frame, which we push
   * next: no waiting for it here) */
  GstStateChangeReturn ret = gst_element_set_state (soak->pipeline, state);

  if (ret == GST_STATE_CHANGE_FAILURE) {
    drain_bus (soak);
    fail (soak, "frame %" G_GINT64_FORMAT ": state change to %s failed", soak->pushed,
          gst_element_state_get_name (state));
    return FALSE;
  }
  return TRUE;
}

static void
set_caps (Soak *soak, guint index, GstVideoInfo *info)
{
  const CapsStep *c = &caps_cycle[index % G_N_ELEMENTS (caps_cycle)];
  GstCaps *caps;

  gst_video_info_set_format (info, c->format, c->width, c->height);
  info->fps_n = 30;
  info->fps_d = 1;
  caps = gst_video_info_to_caps (info);
  gst_app_src_set_caps (GST_APP_SRC (soak->src), caps);
  gst_caps_unref (caps);
}

/* A new set of 2 to 5 labels no earlier set used. */
static void
relabel (Soak *soak)
{
  static const char *const words[] = { "cat", "dog", "red car", "person", "empty room",
                                       "bicycle", "tree", "kitchen" };
  guint index = soak->n_sets, n = 2 + index % 4;
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (text, "%s%s %u", i ? "," : "", words[(index + i) % G_N_ELEMENTS (words)],
                            index);
  g_object_set (soak->clip, "labels", text->str, NULL);
  g_free (soak->sets[index % SET_WINDOW]);
  soak->sets[index % SET_WINDOW] = g_string_free (text, FALSE);
  soak->n_sets++;
  soak->current_set = index;
  soak->relabels++;
}

static char *
joined_labels (const GstStructure *s)
{
  const GValue *labels = gst_structure_get_value (s, "labels");
  GString *text = g_string_new (NULL);

  if (!labels || !GST_VALUE_HOLDS_ARRAY (labels)) {
    g_string_free (text, TRUE);
    return NULL;
  }
  for (guint i = 0; i < gst_value_array_get_size (labels); i++) {
    const GValue *v = gst_value_array_get_value (labels, i);
    g_string_append_printf (text, "%s%s", i ? "," : "", G_VALUE_HOLDS_STRING (v) ?
                            g_value_get_string (v) : "?");
  }
  return g_string_free (text, FALSE);
}

/* Finds which set asked for these labels: its index, or -1. */
static gint64
find_set (Soak *soak, const char *labels)
{
  /* results come from recent sets: search from the newest */
  for (guint i = soak->n_sets; i-- > 0 && i + SET_WINDOW >= soak->n_sets;)
    if (strcmp (soak->sets[i % SET_WINDOW], labels) == 0)
      return i;
  return -1;
}

static void
check_sample (Soak *soak, GstSample *sample, GstClockTime pts)
{
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  GstCustomMeta *meta = buffer ? gst_buffer_get_custom_meta (buffer, "GstClipClassifyMeta") : NULL;
  const GstStructure *s;
  guint64 analysed_pts = GST_CLOCK_TIME_NONE;
  char *labels;
  gint64 set;

  if (buffer && GST_BUFFER_PTS (buffer) != pts)
    fail (soak, "frame %" G_GINT64_FORMAT ": the sink got PTS %" GST_TIME_FORMAT ", pushed %"
          GST_TIME_FORMAT, soak->pulled, GST_TIME_ARGS (GST_BUFFER_PTS (buffer)),
          GST_TIME_ARGS (pts));
  if (!meta) {
    if (soak->sync_mode) {
      soak->missing_result++;
      fail (soak, "frame %" G_GINT64_FORMAT ": no result in sync mode", soak->pulled);
    }
    return;
  }
  soak->with_result++;
  s = gst_custom_meta_get_structure (meta);
  gst_structure_get_uint64 (s, "analysed-pts", &analysed_pts);
  if (analysed_pts == pts)
    soak->own_result++;
  else if (soak->sync_mode)
    fail (soak, "frame %" G_GINT64_FORMAT ": result of PTS %" GST_TIME_FORMAT " on the frame "
          "of %" GST_TIME_FORMAT, soak->pulled, GST_TIME_ARGS (analysed_pts), GST_TIME_ARGS (pts));

  labels = joined_labels (s);
  set = labels ? find_set (soak, labels) : -1;
  if (set < 0) {
    soak->unknown_set++;
    fail (soak, "frame %" G_GINT64_FORMAT ": labels [%s] are no set asked for (a mixture?)",
          soak->pulled, labels ? labels : "(none)");
  } else if (soak->sync_mode && set != soak->current_set) {
    soak->wrong_set++;
    fail (soak, "frame %" G_GINT64_FORMAT ": scored against set %" G_GINT64_FORMAT
          ", pushed under set %u", soak->pulled, set, soak->current_set);
  } else if (set < soak->last_result_set) {
    soak->older_set++;
    fail (soak, "frame %" G_GINT64_FORMAT ": scored against set %" G_GINT64_FORMAT
          " after a result of set %" G_GINT64_FORMAT, soak->pulled, set, soak->last_result_set);
  }
  if (set > soak->last_result_set)
    soak->last_result_set = set;
  g_free (labels);
}

static gboolean
build (Soak *soak)
{
  GError *error = NULL;

  soak->pipeline = gst_parse_launch ("appsrc name=src is-live=true format=time "
      "! clipclassify name=clip ! appsink name=sink sync=false", &error);
  if (!soak->pipeline) {
    g_printerr ("clipclassify-soak: %s\n", error->message);
    g_error_free (error);
    return FALSE;
  }
  soak->src = gst_bin_get_by_name (GST_BIN (soak->pipeline), "src");
  soak->clip = gst_bin_get_by_name (GST_BIN (soak->pipeline), "clip");
  soak->sink = gst_bin_get_by_name (GST_BIN (soak->pipeline), "sink");
  soak->bus = gst_element_get_bus (soak->pipeline);
  gst_util_set_object_arg (G_OBJECT (soak->clip), "mode", soak->opt.mode);
  g_object_set (soak->clip, "model", soak->opt.model, "threads", soak->opt.threads,
                "interval", 1, NULL);
  g_object_set (soak->sink, "max-buffers", 2, NULL);
  return TRUE;
}

static void
run (Soak *soak)
{
  GstVideoInfo info;
  guint8 *pattern = NULL;
  gsize pattern_size = 0;
  GstClockTime duration = GST_SECOND / 30;

  set_caps (soak, 0, &info);
  relabel (soak);
  if (!set_state (soak, GST_STATE_PLAYING))
    return;

  for (gint64 i = 0; i < soak->opt.frames; i++) {
    GstBuffer *buffer;
    GstSample *sample;
    GstClockTime pts = i * duration;

    if (i > 0 && i % soak->opt.sample_every == 0) {
      drain_bus (soak);
      take_sample (soak);
    }
    if (i > 0 && soak->opt.cycle_every > 0 && i % soak->opt.cycle_every == 0) {
      if (!set_state (soak, GST_STATE_NULL) || !set_state (soak, GST_STATE_PLAYING))
        return;
      soak->state_cycles++;
    }
    if (i > 0 && i % soak->opt.caps_every == 0) {
      set_caps (soak, ++soak->caps_changes, &info);
      g_clear_pointer (&pattern, g_free);
    }
    if (i % soak->opt.relabel_every == 0 && i > 0)
      relabel (soak);
    if (!pattern) {
      pattern_size = GST_VIDEO_INFO_SIZE (&info);
      pattern = g_malloc (pattern_size);
      for (gsize b = 0; b < pattern_size; b++)
        pattern[b] = (guint8) (b * 7 + b / 997);
    }
    /* the picture moves a little from frame to frame */
    pattern[(i * 131) % pattern_size] ^= 0x5a;
    buffer = gst_buffer_new_memdup (pattern, pattern_size);
    GST_BUFFER_PTS (buffer) = pts;
    GST_BUFFER_DURATION (buffer) = duration;
    if (gst_app_src_push_buffer (GST_APP_SRC (soak->src), buffer) != GST_FLOW_OK) {
      fail (soak, "frame %" G_GINT64_FORMAT ": push refused", i);
      break;
    }
    soak->pushed++;
    sample = gst_app_sink_try_pull_sample (GST_APP_SINK (soak->sink),
                                           soak->opt.pull_timeout_s * GST_SECOND);
    if (!sample) {
      drain_bus (soak);
      fail (soak, "frame %" G_GINT64_FORMAT ": nothing at the sink within %d s", i,
            soak->opt.pull_timeout_s);
      break;
    }
    soak->pulled++;
    check_sample (soak, sample, pts);
    gst_sample_unref (sample);
    if (i % 64 == 0)
      drain_bus (soak);
  }
  drain_bus (soak);
  take_sample (soak);
  set_state (soak, GST_STATE_NULL);
  g_free (pattern);
}

/* ------------------------------------------------------------------------------------------ */

/* Every series of the samples, as "name": [values...], comma-separated. */
static void
print_samples (GString *json, Soak *soak)
{
  static const struct {
    const char *name;
    gsize offset;
  } series[] = {
    { "rss_kib", G_STRUCT_OFFSET (Sample, rss_kib) },
    { "rss_anon_kib", G_STRUCT_OFFSET (Sample, rss_anon_kib) },
    { "rss_file_kib", G_STRUCT_OFFSET (Sample, rss_file_kib) },
    { "rss_trimmed_kib", G_STRUCT_OFFSET (Sample, rss_trimmed_kib) },
    { "rss_anon_trimmed_kib", G_STRUCT_OFFSET (Sample, rss_anon_trimmed_kib) },
    { "heap_in_use_kib", G_STRUCT_OFFSET (Sample, heap_kib) },
    { "fds", G_STRUCT_OFFSET (Sample, fds) },
    { "threads", G_STRUCT_OFFSET (Sample, threads) },
  };

  for (guint k = 0; k < G_N_ELEMENTS (series); k++) {
    g_string_append_printf (json, "%s\"%s\": [", k ? ", " : "", series[k].name);
    for (guint i = 0; i < soak->samples->len; i++) {
      const Sample *s = &g_array_index (soak->samples, Sample, i);
      gint64 v = G_STRUCT_MEMBER (gint64, s, series[k].offset);

      g_string_append_printf (json, "%s%" G_GINT64_FORMAT, i ? ", " : "", v);
    }
    g_string_append (json, "]");
  }
}

int
main (int argc, char **argv)
{
  Soak soak = { 0 };
  Options *o = &soak.opt;
  GOptionContext *context;
  GError *error = NULL;
  gint64 start;
  double seconds;
  *o = (Options) { NULL, NULL, 100000, 10, 1000, 5000, 1000, 1000, 2, 30, 2048 };
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &o->model, "model directory (required)", "DIR" },
    { "frames", 0, 0, G_OPTION_ARG_INT64, &o->frames, "frames to push (100000)", "N" },
    { "relabel-every", 0, 0, G_OPTION_ARG_INT64, &o->relabel_every, "new labels every N frames "
      "(10)", "N" },
    { "cycle-every", 0, 0, G_OPTION_ARG_INT64, &o->cycle_every, "NULL -> PLAYING every N "
      "frames (1000; 0: never)", "N" },
    { "sample-every", 0, 0, G_OPTION_ARG_INT64, &o->sample_every, "memory, descriptors and "
      "threads sampled every N frames (1000; just before a cycle when they coincide)", "N" },
    { "caps-every", 0, 0, G_OPTION_ARG_INT64, &o->caps_every, "new caps every N frames (5000)",
      "N" },
    { "baseline", 0, 0, G_OPTION_ARG_INT64, &o->baseline, "frames before the baseline sample "
      "(1000; a multiple of --cycle-every)", "N" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &o->mode, "sync or async (sync)", "MODE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &o->threads, "the element's threads (2)", "N" },
    { "max-rss-growth-kib", 0, 0, G_OPTION_ARG_INT64, &o->max_rss_growth_kib,
      "resident memory growth allowed after the baseline (2048)", "KIB" },
    { "pull-timeout", 0, 0, G_OPTION_ARG_INT, &o->pull_timeout_s, "seconds a frame may take "
      "(30)", "S" },
    { NULL }
  };

  context = g_option_context_new ("- the clipclassify element over a long run (JSON)");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("clipclassify-soak: %s\n", error->message);
    return 2;
  }
  g_option_context_free (context);
  if (!o->mode)
    o->mode = g_strdup ("sync");
  if (!o->model || o->frames < 1 || o->relabel_every < 1 || o->cycle_every < 0
      || o->caps_every < 1 || o->sample_every < 1 || o->baseline < o->sample_every
      || o->baseline % o->sample_every
      || (strcmp (o->mode, "sync") != 0 && strcmp (o->mode, "async") != 0)) {
    g_printerr ("clipclassify-soak: --model DIR is required; counts are positive, --baseline "
                "a multiple of --sample-every; --mode sync|async\n");
    return 2;
  }
  gst_init (&argc, &argv);
  if (!clip_bench_ensure_element ("clipclassify-soak"))
    return 2;

  soak.sync_mode = strcmp (o->mode, "sync") == 0;
  soak.samples = g_array_new (FALSE, FALSE, sizeof (Sample));
  soak.errors = g_ptr_array_new_with_free_func (g_free);
  soak.last_result_set = -1;
  if (!build (&soak))
    return 2;

  start = g_get_monotonic_time ();
  run (&soak);
  seconds = (g_get_monotonic_time () - start) / 1e6;

  /* the verdict */
  Sample *base = NULL, *last = NULL;
  gint64 max_fds = -1, max_threads = -1;
  for (guint i = 0; i < soak.samples->len; i++) {
    Sample *s = &g_array_index (soak.samples, Sample, i);
    if (s->frame == o->baseline)
      base = s;
    if (base && s != base) {
      max_fds = MAX (max_fds, s->fds);
      max_threads = MAX (max_threads, s->threads);
    }
    last = s;
  }
  gint64 growth = base && last ? last->rss_trimmed_kib - base->rss_trimmed_kib : -1;
  gint64 raw_growth = base && last ? last->rss_kib - base->rss_kib : -1;
  gboolean rss_ok = base != NULL && growth <= o->max_rss_growth_kib;
  gboolean fds_ok = base != NULL && max_fds <= base->fds;
  gboolean threads_ok = base != NULL && max_threads <= base->threads;
  gboolean results_ok = soak.unknown_set == 0 && soak.wrong_set == 0 && soak.older_set == 0
      && soak.pulled == soak.pushed && soak.pushed == o->frames
      && (!soak.sync_mode || (soak.missing_result == 0 && soak.own_result == soak.pushed
                              && soak.messages == soak.with_result));
  gboolean pass = rss_ok && fds_ok && threads_ok && results_ok && soak.n_errors == 0;
  GString *json = g_string_new ("{");

  g_string_append_printf (json, "\"pass\": %s, \"mode\": \"%s\", \"frames\": %" G_GINT64_FORMAT
      ", \"seconds\": %.1f, \"frames_per_second\": %.1f, \"relabels\": %" G_GINT64_FORMAT
      ", \"state_cycles\": %" G_GINT64_FORMAT ", \"caps_changes\": %" G_GINT64_FORMAT ", ",
      pass ? "true" : "false", o->mode, soak.pushed, seconds, soak.pushed / MAX (seconds, 1e-9),
      soak.relabels, soak.state_cycles, soak.caps_changes);
  g_string_append_printf (json, "\"rss\": {\"ok\": %s, \"baseline_frame\": %" G_GINT64_FORMAT
      ", \"baseline_kib\": %" G_GINT64_FORMAT ", \"end_kib\": %" G_GINT64_FORMAT
      ", \"growth_kib\": %" G_GINT64_FORMAT ", \"max_growth_kib\": %" G_GINT64_FORMAT
      ", \"untrimmed_baseline_kib\": %" G_GINT64_FORMAT ", \"untrimmed_end_kib\": %"
      G_GINT64_FORMAT ", \"untrimmed_growth_kib\": %" G_GINT64_FORMAT "}, ",
      rss_ok ? "true" : "false", o->baseline, base ? base->rss_trimmed_kib : -1,
      last ? last->rss_trimmed_kib : -1, growth, o->max_rss_growth_kib,
      base ? base->rss_kib : -1, last ? last->rss_kib : -1, raw_growth);
  g_string_append_printf (json, "\"fds\": {\"ok\": %s, \"baseline\": %" G_GINT64_FORMAT
      ", \"max_after\": %" G_GINT64_FORMAT ", \"end\": %" G_GINT64_FORMAT "}, ",
      fds_ok ? "true" : "false", base ? base->fds : -1, max_fds, last ? last->fds : -1);
  g_string_append_printf (json, "\"threads\": {\"ok\": %s, \"baseline\": %" G_GINT64_FORMAT
      ", \"max_after\": %" G_GINT64_FORMAT ", \"end\": %" G_GINT64_FORMAT "}, ",
      threads_ok ? "true" : "false", base ? base->threads : -1, max_threads,
      last ? last->threads : -1);
  g_string_append_printf (json, "\"results\": {\"ok\": %s, \"pushed\": %" G_GINT64_FORMAT
      ", \"pulled\": %" G_GINT64_FORMAT ", \"with_result\": %" G_GINT64_FORMAT
      ", \"own_result\": %" G_GINT64_FORMAT ", \"missing_in_sync\": %" G_GINT64_FORMAT
      ", \"bus_messages\": %" G_GINT64_FORMAT ", \"label_sets_asked\": %u"
      ", \"not_one_set_asked_for\": %" G_GINT64_FORMAT ", \"not_the_set_in_force\": %"
      G_GINT64_FORMAT ", \"older_set_after_newer\": %" G_GINT64_FORMAT "}, ",
      results_ok ? "true" : "false", soak.pushed, soak.pulled, soak.with_result,
      soak.own_result, soak.missing_result, soak.messages, soak.n_sets, soak.unknown_set,
      soak.wrong_set, soak.older_set);
  g_string_append (json, "\"samples\": {\"every_frames\": ");
  g_string_append_printf (json, "%" G_GINT64_FORMAT ", ", o->sample_every);
  print_samples (json, &soak);
  g_string_append_printf (json, "}, \"errors\": %" G_GINT64_FORMAT ", \"first_errors\": [",
                          soak.n_errors);
  for (guint i = 0; i < soak.errors->len; i++) {
    char *escaped = g_strescape (soak.errors->pdata[i], NULL);
    g_string_append_printf (json, "%s\"%s\"", i ? ", " : "", escaped);
    g_free (escaped);
  }
  g_string_append (json, "]}");
  printf ("%s\n", json->str);
  g_string_free (json, TRUE);

  gst_object_unref (soak.src);
  gst_object_unref (soak.clip);
  gst_object_unref (soak.sink);
  gst_object_unref (soak.bus);
  gst_object_unref (soak.pipeline);
  for (guint i = 0; i < SET_WINDOW; i++)
    g_free (soak.sets[i]);
  g_ptr_array_unref (soak.errors);
  g_array_unref (soak.samples);
  g_free (o->model);
  g_free (o->mode);
  return pass ? 0 : 1;
}
