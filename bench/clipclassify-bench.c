/* clipclassify-bench — the clipclassify element's speed in a live pipeline; prints JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   clipclassify-bench --model DIR [--seconds 20] [--warmup 3] [--mode async] [--interval 1]
 *                      [--threads 0] [--width 1280] [--height 720] [--fps 30] [--format I420]
 *                      [--pattern smpte] [--labels "person,dog,..."] [--relabels 5]
 *                      [--relabel-size 20] [--relabel-gap-ms 1000] [--relabel-timeout 60]
 *                      [--max-lateness-ms 20] [--region frame] [--rois 0] [--crop center]
 *
 * Runs
 *
 *   videotestsrc is-live=true ! video/x-raw,... ! clipclassify ! fakesink sync=true
 *
 * (with --rois N, a probe on the capsfilter's src pad, upstream of everything measured, gives each
 * buffer N GstVideoRegionOfInterestMetas, as a detector would: boxes on a grid that drift from
 * frame to frame, a few reaching past the frame's edge; --region and --crop set the element's
 * properties) in three phases: warm-up (the first inferences touch the weights; not the steady state),
 * steady (the figures the issue asks for), relabel (labels set to new sets of N labels while
 * playing, each timed from g_object_set to the first bus message scored against it). Then EOS.
 *
 * What is measured, and how:
 *
 * - Per-buffer cost in the streaming thread: buffer probes on clipclassify's sink and src pads
 *   run in the streaming thread, just before the element's chain function and just as it pushes
 *   the buffer on. The time between them is what the element (GstBaseTransform included) costs
 *   that thread for one buffer. The element's counters are read before the start stamp and
 *   after the end stamp, so reading them is not part of the figure. A buffer is
 *   "sampled_skipped_worker_busy" if frames-skipped went up, else "sampled_handed_to_worker" if
 *   its index is a multiple of interval (the element counts frames the same way, from the
 *   first buffer after start), else "not_sampled". "carrying_result" are the buffers, of any
 *   category, during which frames-analysed went up: a result was attached and posted.
 *   Cross-check: after EOS, frames-analysed equals the buffers handed to the worker.
 *   On 2 cores the worker's threads compete with the streaming thread, so beside the wall
 *   clock the same span is measured in the streaming thread's own CPU time
 *   (CLOCK_THREAD_CPUTIME_ID), with whether the thread was switched out meanwhile
 *   (getrusage RUSAGE_THREAD: involuntary switches = "preempted", voluntary = "blocked", e.g.
 *   on a lock): wall >> cpu with "preempted" means the cores were busy, not the element.
 * - Lateness: a buffer probe on fakesink's sink pad compares the clock at arrival with the time
 *   the sink renders it (base time + running time of its PTS + the latency the sink was
 *   configured with). Above 0 the buffer arrived late. The same figure at clipclassify's sink
 *   pad tells lateness we were handed from lateness we caused. fakesink is set up as video
 *   sinks are (qos=true, max-lateness 20 ms): its own rendered/dropped counts are reported too.
 * - Inferences per second: clipclassify messages posted per second of each phase, and the
 *   element's average-latency at the end.
 * - Regions (issue 7): the same per-buffer figures with ROI metas on every buffer and
 *   region=roi or both show what regions cost the streaming thread: reading the metas into a
 *   list that rides with the frame copy (the cutting, preprocessing and the batched forward pass
 *   are the worker's). Compare with region=frame and --rois 0, today's element.
 * - Relabel latency: a bus sync handler stamps each clipclassify message with the monotonic
 *   time it was posted (the message's timestamp field, which GStreamer leaves unset); the bus
 *   watch compares its `labels` with the set requested.
 */
#include "bench-element.h"

#include "clip.h"

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef enum {
  PHASE_WARMUP,
  PHASE_STEADY,
  PHASE_RELABEL,
  PHASE_EOS,
  N_PHASES
} Phase;

static const char *const phase_names[N_PHASES] = { "warmup", "steady", "relabel", "eos" };

typedef enum {
  CATEGORY_NOT_SAMPLED,
  CATEGORY_HANDED,
  CATEGORY_SKIPPED,
  N_CATEGORIES
} Category;

static const char *const category_names[N_CATEGORIES] = {
  "not_sampled", "sampled_handed_to_worker", "sampled_skipped_worker_busy"
};

typedef struct {
  guint8 phase;
  guint8 category;
  gboolean carried_result;
  gboolean preempted;            /* the thread was switched out involuntarily meanwhile */
  gboolean blocked;              /* the thread waited (a lock, a condition) meanwhile */
  gint64 cost_ns;                /* wall clock */
  gint64 cpu_ns;                 /* the streaming thread's CPU time */
  gint64 input_lateness_ns;      /* at clipclassify's sink pad */
} BufferRecord;

/* What the streaming thread itself spent, to tell the element's work from time the 2 cores
 * were busy with someone else (the worker's threads, other processes). */
typedef struct {
  gint64 cpu_ns;
  long voluntary, involuntary;   /* context switches */
} ThreadSample;

typedef struct {
  guint8 phase;
  gint64 lateness_ns;            /* at fakesink's sink pad */
} ArrivalRecord;

typedef struct {
  /* options */
  const char *model, *labels, *mode, *format, *pattern, *region, *crop;
  int seconds, warmup, interval, threads, width, height, fps;
  int relabels, relabel_size, relabel_gap_ms, relabel_timeout_s, max_lateness_ms;
  int rois;
  guint64 rois_frame;            /* streaming thread: frames given ROI metas so far */

  GstElement *pipeline, *clip, *sink;
  GMainLoop *loop;
  int exit_code;

  /* streaming thread only (videotestsrc's task runs every probe) */
  guint64 buffer_index;
  gboolean pending;
  BufferRecord current;
  guint64 skipped_before, analysed_before;
  ThreadSample thread_before;
  GstClockTime start_stamp;
  GstSegment clip_segment, sink_segment;
  GArray *buffers;               /* BufferRecord */
  GArray *arrivals;              /* ArrivalRecord */

  /* any thread */
  gint phase;                    /* Phase, atomic */
  gint results[N_PHASES];        /* clipclassify messages posted per phase, atomic */

  /* main thread */
  GstClockTime phase_start[N_PHASES + 1];
  guint64 sink_rendered[N_PHASES + 1], sink_dropped[N_PHASES + 1];
  double startup_ms;
  int trial;
  char **expected;               /* labels of the pending relabel trial, NULL if none */
  GstClockTime set_stamp;
  guint trial_timeout;
  double *trial_ms, *trial_set_us;
  int n_timeouts;
  GstClockTime latency;
} Bench;

/* ------------------------------------------------------------------------------------------ */
/* Labels no earlier set used: the element caches text embeddings per prompt. */

static const char *const adjectives[] = {
  "red", "small", "wooden", "broken", "shiny", "old", "striped", "tall", "wet", "folded",
  "glass", "metal", "sleeping", "running", "empty", "crowded", "bright", "dark", "plastic",
  "round", "square", "frozen", "burning",
};

static const char *const nouns[] = {
  "bicycle", "teapot", "violin", "ladder", "lantern", "suitcase", "tractor", "kite", "anchor",
  "helmet", "bridge", "canoe", "fence", "giraffe", "harbour", "igloo", "jacket", "kettle",
  "lighthouse", "microscope", "notebook", "orchard", "parrot", "quilt", "robot", "scarf",
  "tent", "umbrella", "volcano", "windmill", "xylophone", "yacht", "zebra", "barn", "candle",
  "drum", "envelope", "feather", "glove", "hammock", "island",
};

static char **
make_label_set (int trial, int size)
{
  char **labels = g_new0 (char *, size + 1);
  int n_pairs = G_N_ELEMENTS (adjectives) * G_N_ELEMENTS (nouns);

  for (int i = 0; i < size; i++) {
    int k = trial * size + i, pair = k % n_pairs, round = k / n_pairs;
    const char *adjective = adjectives[pair % G_N_ELEMENTS (adjectives)];
    const char *noun = nouns[pair / G_N_ELEMENTS (adjectives)];

    labels[i] = round ? g_strdup_printf ("%s %s %d", adjective, noun, round) :
        g_strdup_printf ("%s %s", adjective, noun);
  }
  return labels;
}

/* ------------------------------------------------------------------------------------------ */
/* Probes (streaming thread) */

/* The CPU clock is read nearest the measured span: last before it, first after it. */
static void
sample_thread (ThreadSample *sample, gboolean before)
{
  struct timespec ts;
  struct rusage usage;

  if (!before)
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  getrusage (RUSAGE_THREAD, &usage);
  if (before)
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  sample->cpu_ns = (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
  sample->voluntary = usage.ru_nvcsw;
  sample->involuntary = usage.ru_nivcsw;
}

static void
read_counters (Bench *bench, guint64 *skipped, guint64 *analysed)
{
  g_object_get (bench->clip, "frames-skipped", skipped, "frames-analysed", analysed, NULL);
}

/* now - (base time + running time of pts + latency): above 0, later than the sink renders it. */
static gint64
lateness (GstElement *element, const GstSegment *segment, GstClockTime pts,
          GstClockTime latency)
{
  GstClock *clock = gst_element_get_clock (element);
  GstClockTime now, running_time;
  gint64 result = G_MININT64;

  if (!clock)
    return result;
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  if (segment->format != GST_FORMAT_TIME || !GST_CLOCK_TIME_IS_VALID (pts))
    return result;
  running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return result;
  return (gint64) (now - gst_element_get_base_time (element)) - (gint64) (running_time + latency);
}

static gboolean
cache_segment (GstPadProbeInfo *info, GstSegment *segment)
{
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT)
      gst_event_copy_segment (event, segment);
    return TRUE;
  }
  return FALSE;
}

/* Upstream of the measured span (the capsfilter's src pad): bench->rois ROI metas per buffer,
 * as a detector would attach them. Boxes of a grid of cells, 3/4 of a cell each, drifting by a
 * pixel per frame; every fifth reaches past the frame's right or bottom edge (the element
 * clamps it). */
static GstPadProbeReturn
roi_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bench *bench = user_data;
  GstBuffer *buffer = gst_buffer_make_writable (GST_PAD_PROBE_INFO_BUFFER (info));
  int cols = 1, rows;
  guint64 frame = bench->rois_frame++;

  while (cols * cols < bench->rois)
    cols++;
  rows = (bench->rois + cols - 1) / cols;
  for (int i = 0; i < bench->rois; i++) {
    int cell_w = bench->width / cols, cell_h = bench->height / rows;
    int w = MAX (8, cell_w * 3 / 4), h = MAX (8, cell_h * 3 / 4);
    int x = (i % cols) * cell_w + (int) ((frame + i) % MAX (1, cell_w / 4));
    int y = (i / cols) * cell_h + (int) ((frame + 2 * i) % MAX (1, cell_h / 4));
    GstVideoRegionOfInterestMeta *meta;

    if (i % 5 == 4) {
      w += cell_w / 2;
      h += cell_h / 2;
    }
    meta = gst_buffer_add_video_region_of_interest_meta (buffer, i % 2 ? "person" : "car",
                                                         x, y, w, h);
    meta->id = i;
  }
  GST_PAD_PROBE_INFO_DATA (info) = buffer;
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
clip_sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bench *bench = user_data;
  GstBuffer *buffer;

  if (cache_segment (info, &bench->clip_segment))
    return GST_PAD_PROBE_OK;
  buffer = GST_PAD_PROBE_INFO_BUFFER (info);

  bench->current.phase = (guint8) g_atomic_int_get (&bench->phase);
  bench->current.input_lateness_ns = lateness (bench->clip, &bench->clip_segment,
      GST_BUFFER_PTS (buffer), gst_base_sink_get_latency (GST_BASE_SINK (bench->sink)));
  read_counters (bench, &bench->skipped_before, &bench->analysed_before);
  bench->pending = TRUE;
  sample_thread (&bench->thread_before, TRUE);
  /* last: nothing of ours after it */
  bench->start_stamp = gst_util_get_timestamp ();
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
clip_src_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  /* first: nothing of ours before it */
  GstClockTime end_stamp = gst_util_get_timestamp ();
  Bench *bench = user_data;
  guint64 skipped, analysed, index;
  ThreadSample after;

  sample_thread (&after, FALSE);
  if (!bench->pending)
    return GST_PAD_PROBE_OK;
  bench->pending = FALSE;
  index = bench->buffer_index++;
  read_counters (bench, &skipped, &analysed);

  bench->current.cost_ns = (gint64) (end_stamp - bench->start_stamp);
  bench->current.cpu_ns = after.cpu_ns - bench->thread_before.cpu_ns;
  bench->current.preempted = after.involuntary > bench->thread_before.involuntary;
  bench->current.blocked = after.voluntary > bench->thread_before.voluntary;
  bench->current.carried_result = analysed > bench->analysed_before;
  if (skipped > bench->skipped_before)
    bench->current.category = CATEGORY_SKIPPED;
  else if (index % (guint64) bench->interval == 0)
    bench->current.category = CATEGORY_HANDED;
  else
    bench->current.category = CATEGORY_NOT_SAMPLED;
  g_array_append_val (bench->buffers, bench->current);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bench *bench = user_data;
  ArrivalRecord record;

  if (cache_segment (info, &bench->sink_segment))
    return GST_PAD_PROBE_OK;
  record.phase = (guint8) g_atomic_int_get (&bench->phase);
  record.lateness_ns = lateness (bench->sink, &bench->sink_segment,
      GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info)),
      gst_base_sink_get_latency (GST_BASE_SINK (bench->sink)));
  g_array_append_val (bench->arrivals, record);
  return GST_PAD_PROBE_OK;
}

/* Runs in the posting thread, inside the element: stamps and counts, nothing more. */
static GstBusSyncReply
bus_sync_handler (GstBus *bus, GstMessage *message, gpointer user_data)
{
  Bench *bench = user_data;

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT &&
      GST_MESSAGE_SRC (message) == GST_OBJECT (bench->clip) &&
      gst_message_has_name (message, "clipclassify")) {
    GST_MESSAGE_TIMESTAMP (message) = gst_util_get_timestamp ();
    g_atomic_int_inc (&bench->results[g_atomic_int_get (&bench->phase)]);
  }
  return GST_BUS_PASS;
}

/* ------------------------------------------------------------------------------------------ */
/* Phases (main thread) */

static void
read_sink_stats (Bench *bench, int slot)
{
  GstStructure *stats = NULL;

  g_object_get (bench->sink, "stats", &stats, NULL);
  if (stats) {
    gst_structure_get_uint64 (stats, "rendered", &bench->sink_rendered[slot]);
    gst_structure_get_uint64 (stats, "dropped", &bench->sink_dropped[slot]);
    gst_structure_free (stats);
  }
}

static void
enter_phase (Bench *bench, Phase phase)
{
  bench->phase_start[phase] = gst_util_get_timestamp ();
  read_sink_stats (bench, phase);
  g_atomic_int_set (&bench->phase, phase);
  g_printerr ("clipclassify-bench: %s\n", phase_names[phase]);
}

static void start_trial (Bench *bench);

static void
finish (Bench *bench)
{
  enter_phase (bench, PHASE_EOS);
  gst_element_send_event (bench->pipeline, gst_event_new_eos ());
}

static gboolean
next_trial_cb (gpointer user_data)
{
  Bench *bench = user_data;

  bench->trial++;
  if (bench->trial < bench->relabels)
    start_trial (bench);
  else
    finish (bench);
  return G_SOURCE_REMOVE;
}

static void
end_trial (Bench *bench, double ms)
{
  bench->trial_ms[bench->trial] = ms;
  g_clear_pointer (&bench->expected, g_strfreev);
  if (bench->trial_timeout) {
    g_source_remove (bench->trial_timeout);
    bench->trial_timeout = 0;
  }
  g_timeout_add (bench->relabel_gap_ms, next_trial_cb, bench);
}

static gboolean
trial_timeout_cb (gpointer user_data)
{
  Bench *bench = user_data;

  g_printerr ("clipclassify-bench: relabel %d: no result with the new labels after %d s\n",
              bench->trial, bench->relabel_timeout_s);
  bench->trial_timeout = 0;
  bench->n_timeouts++;
  end_trial (bench, -1.0);
  return G_SOURCE_REMOVE;
}

static void
start_trial (Bench *bench)
{
  char *text;
  GstClockTime done;

  bench->expected = make_label_set (bench->trial, bench->relabel_size);
  text = g_strjoinv (",", bench->expected);
  bench->set_stamp = gst_util_get_timestamp ();
  g_object_set (bench->clip, "labels", text, NULL);
  done = gst_util_get_timestamp ();
  bench->trial_set_us[bench->trial] = (done - bench->set_stamp) / 1e3;
  g_free (text);
  bench->trial_timeout = g_timeout_add (bench->relabel_timeout_s * 1000, trial_timeout_cb,
                                        bench);
}

static gboolean
steady_done_cb (gpointer user_data)
{
  Bench *bench = user_data;

  enter_phase (bench, PHASE_RELABEL);
  if (bench->relabels > 0)
    start_trial (bench);
  else
    finish (bench);
  return G_SOURCE_REMOVE;
}

static gboolean
warmup_done_cb (gpointer user_data)
{
  Bench *bench = user_data;

  enter_phase (bench, PHASE_STEADY);
  /* not g_timeout_add_seconds: it rounds to whole seconds of the wall clock */
  g_timeout_add (bench->seconds * 1000, steady_done_cb, bench);
  return G_SOURCE_REMOVE;
}

static gboolean
labels_match (const GstStructure *s, char **expected)
{
  const GValue *labels = gst_structure_get_value (s, "labels");
  guint n = g_strv_length (expected);

  if (!labels || !GST_VALUE_HOLDS_ARRAY (labels) || gst_value_array_get_size (labels) != n)
    return FALSE;
  for (guint i = 0; i < n; i++) {
    const GValue *label = gst_value_array_get_value (labels, i);

    if (!G_VALUE_HOLDS_STRING (label) || g_strcmp0 (g_value_get_string (label), expected[i]))
      return FALSE;
  }
  return TRUE;
}

static gboolean
bus_cb (GstBus *bus, GstMessage *message, gpointer user_data)
{
  Bench *bench = user_data;
  GError *error = NULL;
  char *debug = NULL;

  switch (GST_MESSAGE_TYPE (message)) {
    case GST_MESSAGE_ELEMENT:
      if (bench->expected && GST_MESSAGE_SRC (message) == GST_OBJECT (bench->clip) &&
          gst_message_has_name (message, "clipclassify") &&
          labels_match (gst_message_get_structure (message), bench->expected))
        end_trial (bench, (GST_MESSAGE_TIMESTAMP (message) - bench->set_stamp) / 1e6);
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (message, &error, &debug);
      g_printerr ("clipclassify-bench: warning from %s: %s\n", GST_OBJECT_NAME (message->src),
                  error->message);
      break;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (message, &error, &debug);
      g_printerr ("clipclassify-bench: error from %s: %s\n%s\n", GST_OBJECT_NAME (message->src),
                  error->message, debug ? debug : "");
      bench->exit_code = 1;
      g_main_loop_quit (bench->loop);
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit (bench->loop);
      break;
    default:
      break;
  }
  g_clear_error (&error);
  g_free (debug);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Output */

static void
print_json_string (const char *s)
{
  if (!s) {
    printf ("null");
    return;
  }
  putchar ('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;

    if (c == '"' || c == '\\')
      printf ("\\%c", c);
    else if (c < 0x20)
      printf ("\\u%04x", c);
    else
      putchar (c);
  }
  putchar ('"');
}

static int
compare_gint64 (const void *a, const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Nearest-rank quantiles of sorted values. */
static double
quantile (const gint64 *sorted, guint n, int percent)
{
  guint rank = (guint) (((guint64) percent * n + 99) / 100);

  return (double) sorted[MAX (rank, 1) - 1];
}

static double
median_of (const gint64 *sorted, guint n)
{
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

/* Wall-clock and CPU cost of the buffers of one phase that match: median, p99, max in µs. */
static void
print_costs (GArray *buffers, Phase phase, int category, gint64 *wall, gint64 *cpu)
{
  guint n = 0, preempted = 0, blocked = 0;

  for (guint i = 0; i < buffers->len; i++) {
    const BufferRecord *r = &g_array_index (buffers, BufferRecord, i);

    if (r->phase != phase)
      continue;
    if (category == N_CATEGORIES ? !r->carried_result :
        category >= 0 && r->category != category)
      continue;
    wall[n] = r->cost_ns;
    cpu[n] = r->cpu_ns;
    preempted += r->preempted;
    blocked += r->blocked;
    n++;
  }
  if (n == 0) {
    printf ("{\"count\": 0}");
    return;
  }
  qsort (wall, n, sizeof *wall, compare_gint64);
  qsort (cpu, n, sizeof *cpu, compare_gint64);
  printf ("{\"count\": %u, \"median\": %.1f, \"p99\": %.1f, \"max\": %.1f, "
          "\"cpu_median\": %.1f, \"cpu_p99\": %.1f, \"cpu_max\": %.1f, "
          "\"preempted\": %u, \"blocked\": %u}", n,
          median_of (wall, n) / 1e3, quantile (wall, n, 99) / 1e3, wall[n - 1] / 1e3,
          median_of (cpu, n) / 1e3, quantile (cpu, n, 99) / 1e3, cpu[n - 1] / 1e3,
          preempted, blocked);
}

static void
print_phase (Bench *bench, Phase phase, const char *indent)
{
  GArray *buffers = bench->buffers, *arrivals = bench->arrivals;
  gint64 *values = g_new (gint64, MAX (buffers->len, arrivals->len) + 1);
  gint64 *cpu = g_new (gint64, buffers->len + 1);
  double seconds = (bench->phase_start[phase + 1] - bench->phase_start[phase]) / 1e9;
  guint n, n_in = 0, late_in = 0, n_arrived = 0, late = 0, very_late = 0;
  gint64 max_lateness_ns = (gint64) bench->max_lateness_ms * GST_MSECOND;
  int results = g_atomic_int_get (&bench->results[phase]);

  for (guint i = 0; i < buffers->len; i++) {
    const BufferRecord *r = &g_array_index (buffers, BufferRecord, i);

    if (r->phase == phase) {
      n_in++;
      late_in += r->input_lateness_ns > 0;
    }
  }
  printf ("{\n%s  \"seconds\": %.2f, \"buffers_through_element\": %u, \"results\": %d, "
          "\"inferences_per_second\": %.2f,\n", indent, seconds, n_in, results,
          seconds > 0 ? results / seconds : 0.0);

  printf ("%s  \"per_buffer_us\": {\n", indent);
  /* the categories, then every buffer that carried a result, then all buffers */
  for (int c = 0; c <= N_CATEGORIES + 1; c++) {
    printf ("%s    \"%s\": ", indent, c < N_CATEGORIES ? category_names[c] :
            c == N_CATEGORIES ? "carrying_result" : "all");
    print_costs (buffers, phase, c <= N_CATEGORIES ? c : -1, values, cpu);
    printf ("%s\n", c <= N_CATEGORIES ? "," : "");
  }
  printf ("%s  },\n", indent);

  n = 0;
  for (guint i = 0; i < arrivals->len; i++) {
    const ArrivalRecord *r = &g_array_index (arrivals, ArrivalRecord, i);

    if (r->phase == phase && r->lateness_ns != G_MININT64) {
      values[n++] = r->lateness_ns;
      late += r->lateness_ns > 0;
      very_late += r->lateness_ns > max_lateness_ns;
    }
    n_arrived += r->phase == phase;
  }
  qsort (values, n, sizeof *values, compare_gint64);
  printf ("%s  \"sink\": {\"arrived\": %u, \"late\": %u, \"later_than_max_lateness\": %u, "
          "\"late_at_element_input\": %u, ", indent, n_arrived, late, very_late, late_in);
  if (n)
    printf ("\"median_lateness_us\": %.1f, \"worst_lateness_us\": %.1f, ",
            median_of (values, n) / 1e3, values[n - 1] / 1e3);
  printf ("\"rendered\": %" G_GUINT64_FORMAT ", \"dropped\": %" G_GUINT64_FORMAT "}\n%s}",
          bench->sink_rendered[phase + 1] - bench->sink_rendered[phase],
          bench->sink_dropped[phase + 1] - bench->sink_dropped[phase], indent);
  g_free (values);
  g_free (cpu);
}

static void
print_report (Bench *bench, int argc, char **argv, const char *launch)
{
  guint64 analysed = 0, skipped = 0, average_latency = 0, last_latency = 0;
  guint threads_property = 0, handed = 0, carrying = 0, n_valid = 0;
  int results_total = 0;
  GstElementFactory *factory = gst_element_get_factory (bench->clip);
  GstPlugin *plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  char *version = gst_version_string ();
  char *command;
  GString *args = g_string_new (NULL);

  g_object_get (bench->clip, "frames-analysed", &analysed, "frames-skipped", &skipped,
                "average-latency", &average_latency, "last-latency", &last_latency,
                "threads", &threads_property, NULL);
  for (guint i = 0; i < bench->buffers->len; i++) {
    const BufferRecord *r = &g_array_index (bench->buffers, BufferRecord, i);

    handed += r->category == CATEGORY_HANDED;
    carrying += r->carried_result;
  }
  for (int p = 0; p < N_PHASES; p++)
    results_total += g_atomic_int_get (&bench->results[p]);
  for (int i = 0; i < argc; i++) {
    char *quoted = g_shell_quote (argv[i]);

    g_string_append_printf (args, "%s%s", i ? " " : "", quoted);
    g_free (quoted);
  }
  command = g_string_free (args, FALSE);

  printf ("{\n  \"program\": \"clipclassify-bench\",\n  \"command\": ");
  print_json_string (command);
  printf (",\n  \"pipeline\": ");
  print_json_string (launch);
  printf (",\n  \"environment\": {\"OPENBLAS_CORETYPE\": ");
  print_json_string (g_getenv ("OPENBLAS_CORETYPE"));
  printf (", \"OMP_NUM_THREADS\": ");
  print_json_string (g_getenv ("OMP_NUM_THREADS"));
  printf (", \"cpus\": %u, \"gstreamer\": ", g_get_num_processors ());
  print_json_string (version);
  printf (", \"blas\": ");
  print_json_string (clip_blas_describe ());
  printf (", \"blas_hint\": ");
  print_json_string (clip_blas_performance_hint ());
  printf ("},\n  \"element\": {\"plugin\": ");
  print_json_string (plugin ? gst_plugin_get_filename (plugin) : NULL);
  printf (", \"model\": ");
  print_json_string (bench->model);
  /* the rule clip_context_new applies to the element's threads property */
  printf (", \"mode\": \"%s\", \"interval\": %d, \"threads_property\": %u, "
          "\"engine_threads\": %u, \"initial_labels\": ", bench->mode, bench->interval,
          threads_property, threads_property ? threads_property : g_get_num_processors ());
  print_json_string (bench->labels);
  printf (", \"region\": \"%s\", \"crop\": \"%s\", \"rois_per_buffer\": %d",
          bench->region, bench->crop, bench->rois);
  printf ("},\n  \"sink_latency_ms\": %.3f, \"startup_ms\": %.1f,\n",
          bench->latency / 1e6, bench->startup_ms);

  printf ("  \"phases\": {\n");
  for (int p = PHASE_WARMUP; p < N_PHASES; p++) {
    printf ("    \"%s\": ", phase_names[p]);
    print_phase (bench, p, "    ");
    printf ("%s\n", p + 1 < N_PHASES ? "," : "");
  }
  printf ("  },\n");

  printf ("  \"relabel\": {\"labels_per_set\": %d, \"latency_ms\": [", bench->relabel_size);
  double *valid = g_new (double, bench->relabels + 1);
  for (int i = 0; i < bench->relabels; i++) {
    if (bench->trial_ms[i] >= 0) {
      printf ("%s%.1f", i ? ", " : "", bench->trial_ms[i]);
      valid[n_valid++] = bench->trial_ms[i];
    } else {
      printf ("%snull", i ? ", " : "");
    }
  }
  printf ("], \"median_ms\": ");
  if (n_valid) {
    qsort (valid, n_valid, sizeof *valid, compare_double);
    printf ("%.1f", n_valid % 2 ? valid[n_valid / 2] :
            0.5 * (valid[n_valid / 2 - 1] + valid[n_valid / 2]));
  } else {
    printf ("null");
  }
  printf (", \"timeouts\": %d, \"set_property_us\": [", bench->n_timeouts);
  for (int i = 0; i < bench->relabels; i++)
    printf ("%s%.1f", i ? ", " : "", bench->trial_set_us[i]);
  printf ("]},\n");
  g_free (valid);

  printf ("  \"totals\": {\"buffers_through_element\": %u, \"sink_arrived\": %u, "
          "\"sink_rendered\": %" G_GUINT64_FORMAT ", \"sink_dropped\": %" G_GUINT64_FORMAT ", "
          "\"handed_to_worker\": %u, \"frames_analysed\": %" G_GUINT64_FORMAT ", "
          "\"frames_skipped\": %" G_GUINT64_FORMAT ", \"results_posted\": %d, "
          "\"buffers_carrying_result\": %u, \"average_latency_ms\": %.1f, "
          "\"last_latency_ms\": %.1f}\n}\n",
          bench->buffers->len, bench->arrivals->len, bench->sink_rendered[N_PHASES],
          bench->sink_dropped[N_PHASES], handed, analysed, skipped, results_total, carrying,
          average_latency / 1e6, last_latency / 1e6);

  g_free (command);
  g_free (version);
  if (plugin)
    gst_object_unref (plugin);
}

/* ------------------------------------------------------------------------------------------ */

static void
usage (void)
{
  g_printerr ("usage: clipclassify-bench --model DIR [--seconds 20] [--warmup 3] "
              "[--mode async|sync] [--interval 1] [--threads 0] [--width 1280] [--height 720] "
              "[--fps 30] [--format I420] [--pattern smpte] [--labels TEXT] [--relabels 5] "
              "[--relabel-size 20] [--relabel-gap-ms 1000] [--relabel-timeout 60] "
              "[--max-lateness-ms 20] [--region frame|roi|both] [--rois 0] "
              "[--crop center|squash|pad]\n");
}

static gboolean
parse_args (Bench *bench, int argc, char **argv)
{
  struct {
    const char *name;
    int *value;
    int min;
  } ints[] = {
    {"--seconds", &bench->seconds, 1}, {"--warmup", &bench->warmup, 0},
    {"--interval", &bench->interval, 1}, {"--threads", &bench->threads, 0},
    {"--width", &bench->width, 16}, {"--height", &bench->height, 16},
    {"--fps", &bench->fps, 1}, {"--relabels", &bench->relabels, 0},
    {"--relabel-size", &bench->relabel_size, 1}, {"--relabel-gap-ms", &bench->relabel_gap_ms, 0},
    {"--relabel-timeout", &bench->relabel_timeout_s, 1},
    {"--max-lateness-ms", &bench->max_lateness_ms, 0}, {"--rois", &bench->rois, 0},
  };
  struct {
    const char *name;
    const char **value;
  } strings[] = {
    {"--model", &bench->model}, {"--labels", &bench->labels}, {"--mode", &bench->mode},
    {"--format", &bench->format}, {"--pattern", &bench->pattern},
    {"--region", &bench->region}, {"--crop", &bench->crop},
  };

  for (int i = 1; i < argc; i++) {
    gboolean known = FALSE;

    for (guint j = 0; j < G_N_ELEMENTS (ints) && !known; j++) {
      if (!strcmp (argv[i], ints[j].name) && i + 1 < argc) {
        char *end;
        long v = strtol (argv[++i], &end, 10);

        if (*end || v < ints[j].min || v > G_MAXINT / 1000) {
          g_printerr ("clipclassify-bench: %s wants an integer >= %d, not \"%s\"\n",
                      ints[j].name, ints[j].min, argv[i]);
          return FALSE;
        }
        *ints[j].value = (int) v;
        known = TRUE;
      }
    }
    for (guint j = 0; j < G_N_ELEMENTS (strings) && !known; j++) {
      if (!strcmp (argv[i], strings[j].name) && i + 1 < argc) {
        *strings[j].value = argv[++i];
        known = TRUE;
      }
    }
    if (!known) {
      usage ();
      return FALSE;
    }
  }
  if (!bench->model || !*bench->model) {
    g_printerr ("clipclassify-bench: --model DIR is required (or $CLIPCLASSIFY_MODEL)\n");
    return FALSE;
  }
  if (!*bench->labels) {
    g_printerr ("clipclassify-bench: --labels must not be empty\n");
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  Bench bench = {
    .labels = "person,dog,cat,car,empty room", .mode = "async", .format = "I420",
    .pattern = "smpte", .seconds = 20, .warmup = 3, .interval = 1, .threads = 0,
    .width = 1280, .height = 720, .fps = 30, .relabels = 5, .relabel_size = 20,
    .relabel_gap_ms = 1000, .relabel_timeout_s = 60, .max_lateness_ms = 20,
    .region = "frame", .crop = "center",
  };
  GError *error = NULL;
  GstBus *bus;
  GstPad *pad;
  char *launch;
  GstClockTime t0;

  bench.model = g_getenv ("CLIPCLASSIFY_MODEL");
  gst_init (&argc, &argv);
  if (!parse_args (&bench, argc, argv))
    return 2;
  if (!clip_bench_ensure_element ("clipclassify-bench"))
    return 1;

  /* model and labels are set as properties: no quoting rules of gst-launch to satisfy */
  launch = g_strdup_printf ("videotestsrc is-live=true pattern=%s ! "
      "capsfilter name=caps caps=video/x-raw,format=%s,width=%d,height=%d,framerate=%d/1 ! "
      "clipclassify name=clip mode=%s interval=%d threads=%d region=%s crop=%s ! "
      "fakesink name=sink sync=true qos=true max-lateness=%" G_GINT64_FORMAT,
      bench.pattern, bench.format, bench.width, bench.height, bench.fps, bench.mode,
      bench.interval, bench.threads, bench.region, bench.crop,
      (gint64) bench.max_lateness_ms * GST_MSECOND);
  bench.pipeline = gst_parse_launch (launch, &error);
  if (!bench.pipeline) {
    g_printerr ("clipclassify-bench: %s\n", error->message);
    return 2;
  }
  bench.clip = gst_bin_get_by_name (GST_BIN (bench.pipeline), "clip");
  bench.sink = gst_bin_get_by_name (GST_BIN (bench.pipeline), "sink");
  g_object_set (bench.clip, "model", bench.model, "labels", bench.labels, NULL);

  bench.buffers = g_array_sized_new (FALSE, FALSE, sizeof (BufferRecord), 4096);
  bench.arrivals = g_array_sized_new (FALSE, FALSE, sizeof (ArrivalRecord), 4096);
  gst_segment_init (&bench.clip_segment, GST_FORMAT_UNDEFINED);
  gst_segment_init (&bench.sink_segment, GST_FORMAT_UNDEFINED);
  bench.trial_ms = g_new0 (double, bench.relabels + 1);
  bench.trial_set_us = g_new0 (double, bench.relabels + 1);

  if (bench.rois > 0) {
    GstElement *caps = gst_bin_get_by_name (GST_BIN (bench.pipeline), "caps");

    pad = gst_element_get_static_pad (caps, "src");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, roi_probe, &bench, NULL);
    gst_object_unref (pad);
    gst_object_unref (caps);
  }
  pad = gst_element_get_static_pad (bench.clip, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                     clip_sink_probe, &bench, NULL);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (bench.clip, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, clip_src_probe, &bench, NULL);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (bench.sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                     sink_probe, &bench, NULL);
  gst_object_unref (pad);

  bench.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (bench.pipeline);
  gst_bus_set_sync_handler (bus, bus_sync_handler, &bench, NULL);
  gst_bus_add_watch (bus, bus_cb, &bench);

  /* loads the model (READY->PAUSED) */
  t0 = gst_util_get_timestamp ();
  if (gst_element_set_state (bench.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("clipclassify-bench: the pipeline did not start\n");
    /* the error message says why */
    while (g_main_context_iteration (NULL, FALSE))
      ;
    gst_element_set_state (bench.pipeline, GST_STATE_NULL);
    return 1;
  }
  bench.startup_ms = (gst_util_get_timestamp () - t0) / 1e6;
  enter_phase (&bench, PHASE_WARMUP);
  g_timeout_add (bench.warmup * 1000, warmup_done_cb, &bench);

  g_main_loop_run (bench.loop);

  bench.phase_start[N_PHASES] = gst_util_get_timestamp ();
  read_sink_stats (&bench, N_PHASES);
  bench.latency = gst_base_sink_get_latency (GST_BASE_SINK (bench.sink));
  /* warm-up shorter than asked for if the pipeline failed early: phases not entered are empty */
  for (int p = N_PHASES - 1; p >= 0; p--) {
    if (!bench.phase_start[p]) {
      bench.phase_start[p] = bench.phase_start[p + 1];
      bench.sink_rendered[p] = bench.sink_rendered[p + 1];
      bench.sink_dropped[p] = bench.sink_dropped[p + 1];
    }
  }
  if (bench.exit_code == 0)
    print_report (&bench, argc, argv, launch);
  gst_element_set_state (bench.pipeline, GST_STATE_NULL);

  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  g_main_loop_unref (bench.loop);
  gst_object_unref (bench.clip);
  gst_object_unref (bench.sink);
  gst_object_unref (bench.pipeline);
  g_array_free (bench.buffers, TRUE);
  g_array_free (bench.arrivals, TRUE);
  g_strfreev (bench.expected);
  g_free (bench.trial_ms);
  g_free (bench.trial_set_us);
  g_free (launch);
  return bench.exit_code;
}
