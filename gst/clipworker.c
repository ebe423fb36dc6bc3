/* clipworker.c — the inference thread of one clipclassify element, its job queue and results.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clipworker.h"

#include <string.h>

typedef struct {
  guint64 seq;
  gpointer frame;
  guint64 pts;
  guint64 labels_generation;  /* the vocabulary requested when the frame was submitted */
} ClipWorkerJob;

struct _ClipWorker {
  ClipWorkerPrepareFunc prepare;
  gpointer prepare_data;
  GDestroyNotify prepare_data_free;
  GDestroyNotify frame_free;
  ClipWorkerFinishFunc finish;
  gpointer finish_data;

  GMutex lock;                /* guards everything below; never taken with the object lock */
  GCond cond;                 /* any change a waiter may care about */
  GThread *thread;
  GCancellable *cancellable;  /* cancelled by stop: a label build stops between batches */
  gboolean quit;
  gboolean flushing;

  /* requested vocabulary */
  guint64 labels_generation;  /* newest seen by set_labels */
  guint64 labels_built;       /* the generation the worker last started building */
  char *labels_text;
  char *template_;
  GError *labels_error;
  char *negative_text;        /* negative labels (set_labels_full) */

  /* Jobs are numbered from 1 in submission order, never reused in the worker's life. A job's
   * number says everything about it: done once <= done_seq, forgotten once <= flushed_seq
   * (whatever it gives then is dropped), and its results carry it. */
  GQueue jobs;                /* ClipWorkerJob *, submitted, not yet taken by the worker */
  guint64 running;            /* the job being analysed, 0 when none */
  guint64 next_seq;           /* the last number handed out */
  guint64 done_seq;           /* every job up to this one is finished */
  guint64 flushed_seq;        /* every job up to this one was submitted before the last flush */
  GQueue results;             /* ClipResult *, finished and not taken yet, oldest first; only
                               * a take, a flush or a newer result for the same frame (below)
                               * removes one */
  GError *job_error;
  gpointer spare;             /* a frame the producer may refill */
  gboolean rescore;           /* clip_worker_set_rescore */

  /* worker thread only (set before the thread starts, cleared after it is joined) */
  ClipModel *model;
  ClipContext *ctx;
  ClipLabelSet *label_set;    /* read by the worker; swapped under lock */
  ClipLabelCache *cache;
  ClipImageBatch batch;       /* the images of the frame being analysed */
  float *image;               /* embeddings of the last analysed frame's images (the frame, its
                               * regions), kept for re-scoring */
  gsize image_capacity;       /* floats allocated for image */
  ClipRegionList *image_regions; /* what they are (batch.regions when they were made) */
  guint64 image_seq;          /* its job, once its result was queued (0: none); stale once
                               * <= flushed_seq */
  guint64 image_pts, image_latency_ns;
};

void
clip_result_free (ClipResult *result)
{
  if (!result)
    return;
  clip_label_set_unref (result->labels);
  g_free (result->scores);
  g_free (result->image_embedding);
  g_free (result->smoothed);
  if (result->regions) {
    for (guint i = 0; i < result->regions->n_regions; i++)
      clip_result_free (result->region_results[i]);
    g_free (result->region_results);
    clip_region_list_unref (result->regions);
  }
  if (result->prepared_free)
    result->prepared_free (result->prepared);
  g_free (result);
}

static void
clip_worker_job_free (ClipWorker *worker, ClipWorkerJob *job)
{
  if (job->frame)
    worker->frame_free (job->frame);
  g_free (job);
}

ClipWorker *
clip_worker_new (ClipWorkerPrepareFunc prepare, gpointer prepare_data,
                 GDestroyNotify prepare_data_free, GDestroyNotify frame_free)
{
  ClipWorker *worker = g_new0 (ClipWorker, 1);

  worker->prepare = prepare;
  worker->prepare_data = prepare_data;
  worker->prepare_data_free = prepare_data_free;
  worker->frame_free = frame_free;
  g_mutex_init (&worker->lock);
  g_cond_init (&worker->cond);
  g_queue_init (&worker->jobs);
  g_queue_init (&worker->results);
  return worker;
}

void
clip_worker_set_finish (ClipWorker *worker, ClipWorkerFinishFunc finish, gpointer user_data)
{
  g_return_if_fail (worker != NULL && worker->thread == NULL);

  worker->finish = finish;
  worker->finish_data = user_data;
}

void
clip_worker_free (ClipWorker *worker)
{
  if (!worker)
    return;
  clip_worker_stop (worker);
  if (worker->spare)
    worker->frame_free (worker->spare);
  if (worker->prepare_data_free)
    worker->prepare_data_free (worker->prepare_data);
  g_clear_error (&worker->labels_error);
  g_free (worker->labels_text);
  g_free (worker->template_);
  g_free (worker->negative_text);
  g_mutex_clear (&worker->lock);
  g_cond_clear (&worker->cond);
  g_free (worker);
}

/* Called with the lock: keeps frame as the spare (one is enough). */
static void
clip_worker_keep_spare (ClipWorker *worker, gpointer frame)
{
  if (worker->spare)
    worker->frame_free (worker->spare);
  worker->spare = frame;
}

/* Called with the lock. */
static void
clip_worker_drop_rescores (ClipWorker *worker)
{
  GList *l = worker->results.head;

  while (l) {
    GList *next = l->next;
    ClipResult *result = l->data;

    if (result->rescored) {
      clip_result_free (result);
      g_queue_delete_link (&worker->results, l);
    }
    l = next;
  }
}

/* Called with the lock: every job so far is forgotten, with what it has given. */
static void
clip_worker_forget_jobs (ClipWorker *worker)
{
  ClipWorkerJob *job;

  while ((job = g_queue_pop_head (&worker->jobs))) {
    clip_worker_keep_spare (worker, g_steal_pointer (&job->frame));
    clip_worker_job_free (worker, job);
  }
  g_queue_clear_full (&worker->results, (GDestroyNotify) clip_result_free);
  g_clear_error (&worker->job_error);
  worker->flushed_seq = worker->done_seq = worker->next_seq;
}

/* Same labels, same prompts' embeddings (a template change keeps the labels). */
static gboolean
clip_label_set_same (const ClipLabelSet *a, const ClipLabelSet *b)
{
  if (!a || !b)
    return a == b;
  return a->n_labels == b->n_labels && a->n_negative == b->n_negative && a->dim == b->dim
      && g_strv_equal ((const char *const *) a->labels, (const char *const *) b->labels)
      && g_strv_equal ((const char *const *) a->negative_labels,
                       (const char *const *) b->negative_labels)
      && (a->n_labels + a->n_negative == 0
          || memcmp (a->embeddings, b->embeddings,
                     sizeof (float) * (a->n_labels + a->n_negative) * a->dim) == 0);
}

/* probs of one image embedding against labels, as a result (takes the labels reference). */
static ClipResult *
clip_worker_score_image (ClipWorker *worker, ClipLabelSet *labels, const float *image)
{
  ClipResult *result = g_new0 (ClipResult, 1);
  /* labels and negative labels in one softmax */
  guint n = labels->n_labels + labels->n_negative, i;
  float *probs = g_new (float, n);

  clip_score (worker->model, image, labels->embeddings, (int) n, NULL, probs);
  result->labels = labels;
  result->scores = g_new (double, n);
  for (i = 0; i < n; i++)
    result->scores[i] = probs[i];
  result->image_embedding = g_memdup2 (image, sizeof (float) * labels->dim);
  g_free (probs);
  return result;
}

/* The kept embeddings (or those of the frame just analysed) against labels, as a result: the
 * frame's scores from its image when it was analysed, each region's from its own. */
static ClipResult *
clip_worker_make_result (ClipWorker *worker, ClipLabelSet *labels)
{
  const ClipRegionList *regions = worker->image_regions;
  ClipResult *result;
  const float *image = worker->image;

  if (!regions || regions->frame) {
    result = clip_worker_score_image (worker, clip_label_set_ref (labels), image);
    image += labels->dim;
  } else {
    result = g_new0 (ClipResult, 1);
    result->labels = clip_label_set_ref (labels);
  }
  if (regions) {
    result->regions = clip_region_list_ref (worker->image_regions);
    result->region_results = g_new0 (ClipResult *, MAX (regions->n_regions, 1));
    for (guint i = 0; i < regions->n_regions; i++, image += labels->dim)
      result->region_results[i] = clip_worker_score_image (worker, clip_label_set_ref (labels),
                                                           image);
  }
  clip_label_set_unref (labels);
  return result;
}

/* Sub-results of regions carry the frame's analysis fields too. */
static void
clip_worker_stamp_result (ClipResult *result, guint64 pts, guint64 seq, guint64 latency_ns,
                          gboolean rescored)
{
  result->pts = pts;
  result->seq = seq;
  result->latency_ns = latency_ns;
  result->rescored = rescored;
  for (guint i = 0; result->regions && i < result->regions->n_regions; i++)
    clip_worker_stamp_result (result->region_results[i], pts, seq, latency_ns, rescored);
}

/* Called with the lock just after a new label set became current; returns with it. Waiting for
 * the next frame to be analysed would show the new labels an inference or more later; the
 * last frame's embedding is scored against them now. This holds even when a frame waits for
 * this very set: its result is still a whole inference away, and replaces the re-score if that
 * has not been taken by then. */
static void
clip_worker_rescore (ClipWorker *worker)
{
  ClipLabelSet *labels = worker->label_set;
  ClipResult *result;
  guint64 seq = worker->image_seq;

  if (labels->n_labels == 0) {
    /* No results until labels come back: by then this frame may be long past. */
    worker->image_seq = 0;
    return;
  }
  if (!worker->rescore || worker->flushing || seq <= worker->flushed_seq)
    return;
  labels = clip_label_set_ref (labels);
  g_mutex_unlock (&worker->lock);

  /* image and image_* are the worker thread's own: read without the lock */
  result = clip_worker_make_result (worker, labels);
  clip_worker_stamp_result (result, worker->image_pts, seq, worker->image_latency_ns, TRUE);
  if (worker->finish)
    worker->finish (result, worker->finish_data);

  g_mutex_lock (&worker->lock);
  /* A flush or a switch to sync mode meanwhile: nobody wants it. The frame's own result, if
   * still queued, stays ahead of it; an older re-score not taken yet is of an older set. */
  if (seq > worker->flushed_seq && worker->rescore && !worker->flushing) {
    clip_worker_drop_rescores (worker);
    g_queue_push_tail (&worker->results, result);
    g_cond_broadcast (&worker->cond);
  } else {
    clip_result_free (result);
  }
}

/* Called with the lock; returns with it. The lock is dropped while the text tower runs. */
static void
clip_worker_build_labels (ClipWorker *worker)
{
  ClipLabelSet *set, *old = NULL;
  GError *error = NULL;
  gboolean changed = FALSE;
  char *text = g_strdup (worker->labels_text);
  char *negative = g_strdup (worker->negative_text);
  char *template_ = g_strdup (worker->template_);
  guint64 generation = worker->labels_generation;

  worker->labels_built = generation;
  g_mutex_unlock (&worker->lock);

  set = clip_label_set_build_full (worker->ctx, worker->cache, text, negative, template_,
                                   worker->cancellable, &error);
  g_free (text);
  g_free (negative);
  g_free (template_);

  g_mutex_lock (&worker->lock);
  if (set) {
    old = worker->label_set;
    worker->label_set = set;
    changed = !clip_label_set_same (old, set);
  } else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    /* stopping: nothing is wrong with the labels */
    g_clear_error (&error);
  } else {
    g_clear_error (&worker->labels_error);
    worker->labels_error = error;
  }
  g_cond_broadcast (&worker->cond);
  g_mutex_unlock (&worker->lock);

  clip_label_set_unref (old);
  g_mutex_lock (&worker->lock);
  /* The same labels set again would only repeat the last result. */
  if (changed)
    clip_worker_rescore (worker);
}

/* Called with the lock; returns with it. */
static void
clip_worker_analyse (ClipWorker *worker)
{
  ClipWorkerJob *job = g_queue_pop_head (&worker->jobs);
  ClipLabelSet *labels = worker->label_set ? clip_label_set_ref (worker->label_set) : NULL;
  ClipResult *result = NULL;
  GError *error = NULL;
  gint64 start;

  worker->running = job->seq;
  g_mutex_unlock (&worker->lock);

  start = g_get_monotonic_time ();
  if (labels && labels->n_labels > 0) {
    if (worker->prepare (job->frame, worker->model, &worker->batch, worker->prepare_data,
                         &error)) {
      gsize needed = (gsize) worker->batch.n_images * labels->dim;

      /* From here on image is this frame's: the one kept for re-scoring goes. */
      worker->image_seq = 0;
      if (needed > worker->image_capacity) {
        g_free (worker->image);
        worker->image = g_new (float, needed);
        worker->image_capacity = needed;
      }
      g_clear_pointer (&worker->image_regions, clip_region_list_unref);
      if (worker->batch.regions)
        worker->image_regions = clip_region_list_ref (worker->batch.regions);
      /* the frame and its regions in one forward pass */
      if (clip_embed_images (worker->ctx, worker->batch.pixels, (int) worker->batch.n_images,
                             worker->image, &error)) {
        result = clip_worker_make_result (worker, g_steal_pointer (&labels));
        /* monotonic time is in µs: the latency field is ns like every GStreamer duration */
        clip_worker_stamp_result (result, job->pts, job->seq,
                                  (guint64) (g_get_monotonic_time () - start) * 1000, FALSE);
        if (worker->finish)
          worker->finish (result, worker->finish_data);
      }
    }
  }
  clip_label_set_unref (labels);

  g_mutex_lock (&worker->lock);
  worker->running = 0;
  worker->done_seq = MAX (worker->done_seq, job->seq);
  clip_worker_keep_spare (worker, g_steal_pointer (&job->frame));
  if (job->seq > worker->flushed_seq) {
    if (result) {
      worker->image_seq = job->seq;
      worker->image_pts = job->pts;
      worker->image_latency_ns = result->latency_ns;
      /* Newer frame, same or newer set (sets change only between frames, on this thread):
       * a re-score not taken yet is stale. */
      clip_worker_drop_rescores (worker);
      g_queue_push_tail (&worker->results, g_steal_pointer (&result));
    }
    if (error) {
      g_clear_error (&worker->job_error);
      worker->job_error = g_steal_pointer (&error);
    }
  }
  clip_result_free (result);
  g_clear_error (&error);
  clip_worker_job_free (worker, job);
  g_cond_broadcast (&worker->cond);
}

static gpointer
clip_worker_thread (gpointer data)
{
  ClipWorker *worker = data;

  g_mutex_lock (&worker->lock);
  while (!worker->quit) {
    ClipWorkerJob *job = g_queue_peek_head (&worker->jobs);
    /* A frame waits for the vocabulary asked for before it arrived, not for later ones: labels
     * that keep changing faster than a set is built would otherwise starve every frame. */
    gboolean frame_ready = job && worker->labels_built >= job->labels_generation;

    if (!frame_ready && worker->labels_built != worker->labels_generation)
      clip_worker_build_labels (worker);
    else if (job)
      clip_worker_analyse (worker);
    else
      g_cond_wait (&worker->cond, &worker->lock);
  }
  g_mutex_unlock (&worker->lock);
  return NULL;
}

gboolean
clip_worker_start (ClipWorker *worker, ClipModel *model, int n_threads, GError **error)
{
  ClipContextParams params = clip_context_params_default ();
  int size, dim;

  g_return_val_if_fail (worker != NULL && model != NULL, FALSE);
  g_return_val_if_fail (worker->thread == NULL, FALSE);

  params.n_threads = n_threads;
  worker->ctx = clip_context_new (model, &params, error);
  if (!worker->ctx)
    return FALSE;

  size = clip_model_get_image_size (model);
  dim = clip_model_get_embedding_dim (model);
  worker->model = clip_model_ref (model);
  worker->cache = clip_label_cache_new ();
  /* room for the frame alone; regions grow both */
  clip_image_batch_reserve (&worker->batch, 1, (gsize) 3 * size * size);
  worker->image = g_new (float, dim);
  worker->image_capacity = dim;
  worker->cancellable = g_cancellable_new ();

  g_mutex_lock (&worker->lock);
  worker->quit = FALSE;
  worker->flushing = FALSE;
  /* Whatever vocabulary was set before start is built first. */
  worker->labels_built = worker->labels_generation - 1;
  g_mutex_unlock (&worker->lock);

  worker->thread = g_thread_try_new ("clipclassify", clip_worker_thread, worker, error);
  if (!worker->thread) {
    clip_worker_stop (worker);
    return FALSE;
  }
  return TRUE;
}

void
clip_worker_stop (ClipWorker *worker)
{
  g_return_if_fail (worker != NULL);

  g_mutex_lock (&worker->lock);
  worker->quit = TRUE;
  worker->flushing = TRUE;
  g_cond_broadcast (&worker->cond);
  g_mutex_unlock (&worker->lock);
  /* A label build in progress ends at its next batch. */
  g_cancellable_cancel (worker->cancellable);

  if (worker->thread)
    g_thread_join (worker->thread);
  worker->thread = NULL;

  g_mutex_lock (&worker->lock);
  clip_worker_forget_jobs (worker);
  g_clear_error (&worker->labels_error);
  g_clear_pointer (&worker->label_set, clip_label_set_unref);
  worker->image_seq = 0;
  g_mutex_unlock (&worker->lock);

  g_clear_object (&worker->cancellable);
  g_clear_pointer (&worker->cache, clip_label_cache_free);
  g_clear_pointer (&worker->ctx, clip_context_free);
  g_clear_pointer (&worker->model, clip_model_unref);
  clip_image_batch_clear (&worker->batch);
  g_clear_pointer (&worker->image, g_free);
  g_clear_pointer (&worker->image_regions, clip_region_list_unref);
  worker->image_capacity = 0;
}

void
clip_worker_set_labels (ClipWorker *worker, guint64 generation, const char *labels_text,
                        const char *template_)
{
  clip_worker_set_labels_full (worker, generation, labels_text, NULL, template_);
}

void
clip_worker_set_labels_full (ClipWorker *worker, guint64 generation, const char *labels_text,
                             const char *negative_text, const char *template_)
{
  g_return_if_fail (worker != NULL);

  g_mutex_lock (&worker->lock);
  if (generation > worker->labels_generation) {
    worker->labels_generation = generation;
    g_free (worker->labels_text);
    worker->labels_text = g_strdup (labels_text);
    g_free (worker->negative_text);
    worker->negative_text = g_strdup (negative_text);
    g_free (worker->template_);
    worker->template_ = g_strdup (template_);
    g_cond_broadcast (&worker->cond);
  }
  g_mutex_unlock (&worker->lock);
}

void
clip_worker_set_flushing (ClipWorker *worker, gboolean flushing)
{
  g_return_if_fail (worker != NULL);

  g_mutex_lock (&worker->lock);
  worker->flushing = flushing;
  /* The job in progress is forgotten too: its number is now <= flushed_seq. So is the kept
   * embedding, whose image_seq is. */
  if (!flushing)
    clip_worker_forget_jobs (worker);
  g_cond_broadcast (&worker->cond);
  g_mutex_unlock (&worker->lock);
}

void
clip_worker_set_rescore (ClipWorker *worker, gboolean rescore)
{
  g_return_if_fail (worker != NULL);

  g_mutex_lock (&worker->lock);
  worker->rescore = rescore;
  if (!rescore)
    clip_worker_drop_rescores (worker);
  g_mutex_unlock (&worker->lock);
}

/* Called with the lock. */
static gboolean
clip_worker_idle_locked (ClipWorker *worker)
{
  return g_queue_is_empty (&worker->jobs) && !worker->running;
}

gboolean
clip_worker_try_reserve (ClipWorker *worker, gpointer *spare)
{
  gboolean idle;

  g_mutex_lock (&worker->lock);
  idle = clip_worker_idle_locked (worker) && !worker->flushing && worker->thread;
  *spare = idle ? g_steal_pointer (&worker->spare) : NULL;
  g_mutex_unlock (&worker->lock);
  return idle;
}

gboolean
clip_worker_wait_idle (ClipWorker *worker, gpointer *spare)
{
  gboolean idle;

  g_mutex_lock (&worker->lock);
  while (!worker->flushing && !clip_worker_idle_locked (worker))
    g_cond_wait (&worker->cond, &worker->lock);
  idle = !worker->flushing;
  if (spare)
    *spare = idle ? g_steal_pointer (&worker->spare) : NULL;
  g_mutex_unlock (&worker->lock);
  return idle;
}

guint64
clip_worker_submit (ClipWorker *worker, gpointer frame, guint64 pts)
{
  ClipWorkerJob *job = g_new0 (ClipWorkerJob, 1);
  guint64 seq;

  g_mutex_lock (&worker->lock);
  job->frame = frame;
  job->pts = pts;
  job->labels_generation = worker->labels_generation;
  seq = job->seq = ++worker->next_seq;
  g_queue_push_tail (&worker->jobs, job);
  g_cond_broadcast (&worker->cond);
  g_mutex_unlock (&worker->lock);
  return seq;
}

void
clip_worker_return_spare (ClipWorker *worker, gpointer frame)
{
  g_mutex_lock (&worker->lock);
  clip_worker_keep_spare (worker, frame);
  g_mutex_unlock (&worker->lock);
}

/* Called with the lock. */
static gboolean
clip_worker_take_error_locked (ClipWorker *worker, GError **error)
{
  if (!worker->job_error)
    return FALSE;
  g_propagate_error (error, worker->job_error);
  worker->job_error = NULL;
  return TRUE;
}

ClipResult *
clip_worker_take_result (ClipWorker *worker, GError **error)
{
  ClipResult *result = NULL;

  g_mutex_lock (&worker->lock);
  if (!clip_worker_take_error_locked (worker, error))
    result = g_queue_pop_head (&worker->results);
  g_mutex_unlock (&worker->lock);
  return result;
}

ClipResult *
clip_worker_wait_result (ClipWorker *worker, guint64 seq, gboolean *flushing, GError **error)
{
  ClipResult *result = NULL;

  g_mutex_lock (&worker->lock);
  while (!worker->flushing && worker->done_seq < seq)
    g_cond_wait (&worker->cond, &worker->lock);
  *flushing = worker->flushing;
  if (!worker->flushing && !clip_worker_take_error_locked (worker, error)) {
    /* Its own result only: others (older frames', re-scores) stay queued for a take. */
    for (GList *l = worker->results.head; l; l = l->next) {
      ClipResult *queued = l->data;

      if (queued->seq == seq && !queued->rescored) {
        result = queued;
        g_queue_delete_link (&worker->results, l);
        break;
      }
    }
  }
  g_mutex_unlock (&worker->lock);
  return result;
}

GError *
clip_worker_take_labels_error (ClipWorker *worker)
{
  GError *error;

  g_mutex_lock (&worker->lock);
  error = g_steal_pointer (&worker->labels_error);
  g_mutex_unlock (&worker->lock);
  return error;
}
