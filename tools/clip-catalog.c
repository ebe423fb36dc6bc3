/* clip-catalog.c — `clip-infer classify --labels L1,L2 IMAGE...`: many images, one process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two threads: the decoder reads and preprocesses the images in order into a short queue while
 * the main thread runs the image tower on the ones before, scores them against the label
 * embeddings (computed once) and prints a line each. Against one process per image this saves
 * the model load, the text tower and the decoding time of every image but the first.
 */
#include "clip-catalog.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "image-io.h"
#include "json-out.h"

/* Decoded images waiting for the engine: enough to cover a slow file, few enough that the
 * queue's memory (600 KB a B/16 image) does not matter. */
#define QUEUE_DEPTH 4
/* The progress bar redraws at most this often (µs). */
#define PROGRESS_INTERVAL 100000

/* ------------------------------------------------------------------------------------------ */
/* Inputs */

static void
entry_free (gpointer data)
{
  ClipCatalogEntry *entry = data;

  g_free (entry->path);
  g_free (entry->error);
  g_free (entry);
}

static void
add_entry (GPtrArray *entries, const char *path, char *error)
{
  ClipCatalogEntry *entry = g_new0 (ClipCatalogEntry, 1);

  entry->path = g_strdup (path);
  entry->error = error;
  g_ptr_array_add (entries, entry);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Its regular files (symbolic links to them too), sorted by name, not recursive. */
static void
expand_directory (GPtrArray *entries, const char *dir)
{
  GError *error = NULL;
  GDir *handle = g_dir_open (dir, 0, &error);
  GPtrArray *names;
  const char *name;

  if (!handle) {
    add_entry (entries, dir, g_strdup_printf ("cannot read the directory: %s", error->message));
    g_error_free (error);
    return;
  }
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (handle)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (handle);
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++) {
    char *path = g_build_filename (dir, names->pdata[i], NULL);

    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      add_entry (entries, path, NULL);
    g_free (path);
  }
  g_ptr_array_unref (names);
}

/* One path per line; empty lines (and a final newline, and CRs of CRLF files) are skipped.
 * Relative paths stay relative: to the current directory. */
static void
expand_list (GPtrArray *entries, const char *list)
{
  GError *error = NULL;
  char *contents, **lines;

  if (!g_file_get_contents (list, &contents, NULL, &error)) {
    add_entry (entries, list, g_strdup_printf ("cannot read the list: %s", error->message));
    g_error_free (error);
    return;
  }
  lines = g_strsplit (contents, "\n", -1);
  for (char **line = lines; *line; line++) {
    gsize length = strlen (*line);

    if (length > 0 && (*line)[length - 1] == '\r')
      (*line)[--length] = '\0';
    if (length > 0)
      add_entry (entries, *line, NULL);
  }
  g_strfreev (lines);
  g_free (contents);
}

GPtrArray *
clip_catalog_expand (char *const *inputs, int n_inputs)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func (entry_free);

  for (int i = 0; i < n_inputs; i++) {
    const char *input = inputs[i];

    if (input[0] == '@' && input[1] != '\0')
      expand_list (entries, input + 1);
    else if (g_file_test (input, G_FILE_TEST_IS_DIR))
      expand_directory (entries, input);
    else
      add_entry (entries, input, NULL);
  }
  return entries;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding thread */

typedef struct {
  float *pixels;              /* [3, height, width], or NULL with error */
  int width, height;
  char *error;
} Decoded;

static void
decoded_free (Decoded *decoded)
{
  if (!decoded)
    return;
  g_free (decoded->pixels);
  g_free (decoded->error);
  g_free (decoded);
}

typedef struct {
  GMutex lock;
  GCond cond;
  GQueue queue;               /* Decoded, in the entries' order */
  gboolean stop;              /* the consumer gave up: finish now */
  GPtrArray *entries;
  ClipPreprocessConfig config;
  ClipCrop crop;
} Decoder;

static Decoded *
decode (const ClipPreprocessConfig *config, ClipCrop crop, const ClipCatalogEntry *entry)
{
  Decoded *decoded = g_new0 (Decoded, 1);
  GError *error = NULL;
  ClipImage image;

  if (entry->error) {
    decoded->error = g_strdup (entry->error);
    return decoded;
  }
  if (!clip_image_load (entry->path, &image, &error)) {
    decoded->error = g_strdup (error->message);
    g_error_free (error);
    return decoded;
  }
  clip_preprocess_output_size_with_crop (config, crop, image.width, image.height,
                                         &decoded->width, &decoded->height);
  decoded->pixels = g_new (float, (gsize) 3 * decoded->width * decoded->height);
  if (!clip_preprocess_rgb8_with_crop (config, crop, image.rgb, image.width, image.height,
                                       3 * image.width, decoded->pixels, &error)) {
    g_clear_pointer (&decoded->pixels, g_free);
    decoded->error = g_strdup_printf ("%s: %s", entry->path, error->message);
    g_error_free (error);
  }
  clip_image_clear (&image);
  return decoded;
}

static gpointer
decoder_thread (gpointer data)
{
  Decoder *decoder = data;

  for (guint i = 0; i < decoder->entries->len; i++) {
    Decoded *decoded;

    g_mutex_lock (&decoder->lock);
    while (!decoder->stop && g_queue_get_length (&decoder->queue) >= QUEUE_DEPTH)
      g_cond_wait (&decoder->cond, &decoder->lock);
    if (decoder->stop) {
      g_mutex_unlock (&decoder->lock);
      break;
    }
    g_mutex_unlock (&decoder->lock);

    decoded = decode (&decoder->config, decoder->crop, decoder->entries->pdata[i]);

    g_mutex_lock (&decoder->lock);
    g_queue_push_tail (&decoder->queue, decoded);
    g_cond_broadcast (&decoder->cond);
    g_mutex_unlock (&decoder->lock);
  }
  return NULL;
}

/* The next image, in order (the decoder makes one per entry). */
static Decoded *
decoder_pop (Decoder *decoder)
{
  Decoded *decoded;

  g_mutex_lock (&decoder->lock);
  while (g_queue_is_empty (&decoder->queue))
    g_cond_wait (&decoder->cond, &decoder->lock);
  decoded = g_queue_pop_head (&decoder->queue);
  g_cond_broadcast (&decoder->cond);
  g_mutex_unlock (&decoder->lock);
  return decoded;
}

static void
decoder_stop (Decoder *decoder, GThread *thread)
{
  g_mutex_lock (&decoder->lock);
  decoder->stop = TRUE;
  g_cond_broadcast (&decoder->cond);
  g_mutex_unlock (&decoder->lock);
  if (thread)
    g_thread_join (thread);
  g_queue_clear_full (&decoder->queue, (GDestroyNotify) decoded_free);
  g_mutex_clear (&decoder->lock);
  g_cond_clear (&decoder->cond);
}

/* ------------------------------------------------------------------------------------------ */
/* Progress bar (stderr, terminals only) */

typedef struct {
  gboolean on;
  guint total;
  gint64 start, last_draw;
} Progress;

static void
progress_draw (Progress *progress, guint done, guint errors, gboolean force)
{
  static const char bar[] = "==============================";
  const int width = sizeof bar - 1;
  gint64 now = g_get_monotonic_time ();
  double elapsed = (now - progress->start) / 1e6;
  int filled;

  if (!progress->on || (!force && now - progress->last_draw < PROGRESS_INTERVAL))
    return;
  progress->last_draw = now;
  filled = progress->total ? (int) ((guint64) done * width / progress->total) : width;
  fprintf (stderr, "\r%u/%u [%.*s%*s] %.1f img/s", done, progress->total, filled, bar,
           width - filled, "", elapsed > 0 ? done / elapsed : 0.0);
  if (errors)
    fprintf (stderr, ", %u failed", errors);
  /* \033[K: clear what a longer line left */
  fprintf (stderr, "\033[K");
  fflush (stderr);
}

/* ------------------------------------------------------------------------------------------ */
/* Output */

/* path and messages are bytes from the file system: made valid UTF-8 for JSON */
static void
append_text (GString *json, const char *text)
{
  char *valid = g_utf8_make_valid (text, -1);

  json_append_string (json, valid);
  g_free (valid);
}

static void
error_line (GString *json, const char *path, const char *message)
{
  g_string_append (json, "{\"path\": ");
  append_text (json, path);
  g_string_append (json, ", \"error\": ");
  append_text (json, message);
  g_string_append (json, "}\n");
}

typedef struct {
  char **labels, **negatives;
  int n_labels, n_negative;
} LabelLists;

/* probs: labels then negatives, one softmax */
static void
result_line (GString *json, const char *path, const LabelLists *lists, const float *probs,
             const float *embedding, int dim)
{
  int best = 0;
  float bar = -1.0f;

  for (int i = 1; i < lists->n_labels; i++)
    if (probs[i] > probs[best])
      best = i;
  for (int j = 0; j < lists->n_negative; j++)
    bar = MAX (bar, probs[lists->n_labels + j]);

  g_string_append (json, "{\"path\": ");
  append_text (json, path);
  g_string_append (json, ", \"labels\": ");
  json_append_strings (json, lists->labels, lists->n_labels);
  g_string_append (json, ", \"scores\": ");
  json_append_floats (json, probs, lists->n_labels);
  if (lists->n_negative > 0) {
    g_string_append (json, ", \"negative-labels\": ");
    json_append_strings (json, lists->negatives, lists->n_negative);
    g_string_append (json, ", \"negative-scores\": ");
    json_append_floats (json, probs + lists->n_labels, lists->n_negative);
  }
  /* "none of these" when a negative label scores as high as the best label */
  g_string_append (json, ", \"top-label\": ");
  json_append_string (json, probs[best] > bar ? lists->labels[best] : "");
  g_string_append (json, ", \"top-score\": ");
  json_append_float (json, probs[best] > bar ? probs[best] : 0.0f);
  if (embedding) {
    g_string_append (json, ", \"image-embedding\": ");
    json_append_floats (json, embedding, dim);
  }
  g_string_append (json, "}\n");
}

/* ------------------------------------------------------------------------------------------ */

static void
fatal (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
fatal (const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "clip-infer classify: %s\n", message);
  g_free (message);
}

int
clip_catalog_classify (const ClipCatalogOptions *options, char *const *inputs, int n_inputs,
                       FILE *out)
{
  const char *template_ = options->template_ ? options->template_ : CLIP_DEFAULT_TEMPLATE;
  LabelLists lists = { 0 };
  Decoder decoder = { 0 };
  GThread *thread = NULL;
  GError *error = NULL;
  ClipModel *model = NULL;
  ClipContext *ctx = NULL;
  ClipContextParams params = clip_context_params_default ();
  Progress progress = { 0 };
  char **templates, **all = NULL;
  float *texts = NULL, *image = NULL, *probs = NULL;
  GString *json = g_string_new (NULL);
  guint done = 0, failed = 0;
  int status = 1, size, dim, n_all;

  /* What can be refused before any work */
  lists.labels = clip_labels_split (options->labels);
  lists.n_labels = (int) g_strv_length (lists.labels);
  lists.negatives = clip_negative_labels_split (options->negative,
                                                (const char *const *) lists.labels);
  lists.n_negative = (int) g_strv_length (lists.negatives);
  if (lists.n_labels == 0) {
    fatal ("--labels holds no label (e.g. --labels \"a cat,a dog\")");
    goto out;
  }
  templates = clip_templates_parse (template_, &error);
  if (!templates) {
    fatal ("%s", error->message);
    goto out;
  }
  g_strfreev (templates);
  if (!g_file_test (options->model_dir, G_FILE_TEST_IS_DIR)) {
    fatal ("model directory %s does not exist (expected a HuggingFace CLIP checkpoint)",
           options->model_dir);
    goto out;
  }
  if (!clip_preprocess_config_load_dir (options->model_dir, &decoder.config, &error)) {
    fatal ("%s", error->message);
    goto out;
  }
  decoder.crop = options->crop;

  /* Decoding starts now, while the model loads. */
  g_mutex_init (&decoder.lock);
  g_cond_init (&decoder.cond);
  g_queue_init (&decoder.queue);
  decoder.entries = clip_catalog_expand (inputs, n_inputs);
  thread = g_thread_try_new ("clip-decode", decoder_thread, &decoder, &error);
  if (!thread) {
    fatal ("cannot start the decoding thread: %s", error->message);
    goto stop;
  }

  model = clip_model_load_with_params (options->model_dir, &options->model_params, &error);
  if (!model) {
    fatal ("%s", error->message);
    goto stop;
  }
  if (clip_model_get_precision_note (model))
    fprintf (stderr, "clip-infer: warning: %s\n", clip_model_get_precision_note (model));
  params.n_threads = options->n_threads;
  ctx = clip_context_new (model, &params, &error);
  if (!ctx) {
    fatal ("%s", error->message);
    goto stop;
  }
  size = clip_model_get_image_size (model);
  dim = clip_model_get_embedding_dim (model);

  /* The labels' embeddings, once */
  n_all = lists.n_labels + lists.n_negative;
  all = g_new0 (char *, n_all + 1);
  for (int i = 0; i < n_all; i++)
    all[i] = i < lists.n_labels ? lists.labels[i] : lists.negatives[i - lists.n_labels];
  texts = g_new (float, (gsize) n_all * dim);
  if (!clip_embed_labels (ctx, template_, (const char *const *) all, n_all, texts, &error)) {
    fatal ("%s", error->message);
    goto stop;
  }

  image = g_new (float, dim);
  probs = g_new (float, n_all);
  progress.on = options->progress > 0 || (options->progress < 0 && isatty (STDERR_FILENO));
  progress.total = decoder.entries->len;
  progress.start = g_get_monotonic_time ();
  progress_draw (&progress, 0, 0, TRUE);
  for (guint i = 0; i < decoder.entries->len; i++) {
    const ClipCatalogEntry *entry = decoder.entries->pdata[i];
    Decoded *decoded = decoder_pop (&decoder);

    g_string_truncate (json, 0);
    if (decoded->error) {
      error_line (json, entry->path, decoded->error);
      failed++;
    } else if (decoded->width != size || decoded->height != size) {
      char *message = g_strdup_printf ("%s: preprocessing gives %dx%d pixels but the model "
                                       "takes %dx%d (check crop_size / do_center_crop in "
                                       "preprocessor_config.json)", entry->path,
                                       decoded->width, decoded->height, size, size);

      error_line (json, entry->path, message);
      g_free (message);
      failed++;
    } else {
      if (clip_embed_image (ctx, decoded->pixels, image, &error)) {
        clip_score (model, image, texts, n_all, NULL, probs);
        result_line (json, entry->path, &lists, probs, options->embeddings ? image : NULL, dim);
      } else {
        /* the workspace could not be allocated: this image fails, the next may not */
        error_line (json, entry->path, error->message);
        g_clear_error (&error);
        failed++;
      }
    }
    decoded_free (decoded);
    done++;

    if (fwrite (json->str, 1, json->len, out) != json->len || fflush (out) != 0) {
      if (progress.on)
        fprintf (stderr, "\r\033[K");
      fatal ("cannot write the results: %s", g_strerror (errno));
      goto stop;
    }
    progress_draw (&progress, done, failed, done == decoder.entries->len);
  }

  if (progress.on) {
    double elapsed = (g_get_monotonic_time () - progress.start) / 1e6;

    fprintf (stderr, "\r\033[K%u image%s in %.1f s (%.1f img/s)", done, done == 1 ? "" : "s",
             elapsed, elapsed > 0 ? done / elapsed : 0.0);
    if (failed)
      fprintf (stderr, ", %u failed", failed);
    fprintf (stderr, "\n");
  } else if (failed) {
    fatal ("%u of %u images could not be classified", failed, done);
  } else if (done == 0) {
    fatal ("warning: no images");
  }
  status = failed ? 1 : 0;

stop:
  decoder_stop (&decoder, thread);
  g_ptr_array_unref (decoder.entries);
out:
  g_clear_error (&error);
  g_free (probs);
  g_free (image);
  g_free (texts);
  g_free (all);
  if (ctx)
    clip_context_free (ctx);
  if (model)
    clip_model_unref (model);
  g_strfreev (lists.labels);
  g_strfreev (lists.negatives);
  g_string_free (json, TRUE);
  return status;
}
