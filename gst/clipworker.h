/* clipworker.h — the inference thread of one clipclassify element, its job queue and results.
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One producer (the streaming thread) submits frames as jobs; the worker owns a ClipContext,
 * builds label sets when asked and turns jobs into results. The worker's mutex + condition
 * variable guard the only state both threads touch: the worker never sees the element, the bus
 * or any GStreamer object, and the streaming thread surfaces results.
 *
 * Jobs are numbered in submission order and the number travels with the job's result: a flush
 * forgets every job numbered up to then (a result that comes later from one is dropped), a sync
 * producer waits for its own number, and results wait in a queue until taken, so no result can
 * be overwritten by a later job. The producer submits only to an idle worker (async: try_reserve;
 * sync: wait_idle), so at most one job is pending or running.
 *
 * Frames are opaque here (the element's ClipFrame): the worker calls the prepare function on
 * its own thread to turn one into the model's pixel tensor, then keeps it as the spare that
 * clip_worker_try_reserve and clip_worker_wait_idle hand back for refilling, so steady-state
 * sampling allocates nothing. GLib only.
 *
 * Re-scoring (clip_worker_set_rescore): the worker keeps the image embedding of the last frame
 * it analysed. When a new label set becomes current it scores that embedding against the set
 * (clip_score: microseconds, no forward pass) and queues the result behind the frame's own,
 * so new labels show up without waiting for the next frame to be handed over and analysed. At
 * most one re-score is queued: a newer one (newer set) or the next frame's own result (newer
 * frame, same or newer set) replaces it if it has not been taken.
 *
 * Lifetime: new/free span the element's life (so set_labels is valid in any state);
 * start/stop span READY->PAUSED..PAUSED->READY.
 */
#ifndef CLIP_WORKER_H
#define CLIP_WORKER_H

#include <glib.h>
#include "clip.h"
#include "cliplabels.h"
#include "clipregions.h"

G_BEGIN_DECLS

#define CLIP_WORKER_NO_PTS G_MAXUINT64

typedef struct _ClipResult ClipResult;

struct _ClipResult {
  ClipLabelSet *labels;       /* the set the frame was scored against (a reference) */
  double *scores;             /* [labels->n_labels + labels->n_negative] probabilities of one
                               * softmax: labels, then negative labels; NULL when the frame
                               * itself was not analysed, only its regions (region=roi) */
  guint64 pts;                /* of the analysed frame, CLIP_WORKER_NO_PTS if it had none */
  guint64 latency_ns;         /* frame taken by the worker -> scores ready (re-score: the same
                               * as the frame's own result) */
  guint64 seq;                /* the job's number, from clip_worker_submit */
  gboolean rescored;          /* an earlier frame's embedding scored against a newer set */
  float *image_embedding;     /* [labels->dim] the analysed image's L2-normalised embedding
                               * (NULL when the frame itself was not analysed) */
  double *smoothed;           /* NULL, or like scores: temporally smoothed (the element's) */
  ClipRegionList *regions;    /* what the frame was analysed for (a reference), NULL: the frame
                               * alone (region=frame) */
  ClipResult **region_results; /* [regions->n_regions]: each region's labels, scores and
                               * embedding (and the frame's pts, latency, seq, rescored) */
  gpointer prepared;          /* what the finish function made of it ahead of delivery */
  GDestroyNotify prepared_free;
};

void clip_result_free (ClipResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipResult, clip_result_free)

/* Runs on the worker thread: writes the [3, S, S] tensors of what frame is analysed for (the
 * frame, its regions: ClipImageBatch) into batch, which the worker keeps from frame to frame. */
typedef gboolean (*ClipWorkerPrepareFunc) (gpointer frame, const ClipModel *model,
                                           ClipImageBatch *batch, gpointer user_data,
                                           GError **error);

/* Runs on the worker thread for every result before it is queued (a frame's own, a re-score):
 * the part of delivering it that needs no buffer is done there, off the streaming thread
 * (result->prepared). */
typedef void (*ClipWorkerFinishFunc) (ClipResult *result, gpointer user_data);

typedef struct _ClipWorker ClipWorker;

ClipWorker *clip_worker_new (ClipWorkerPrepareFunc prepare, gpointer prepare_data,
                             GDestroyNotify prepare_data_free, GDestroyNotify frame_free);
void clip_worker_free (ClipWorker *worker);
/* Before clip_worker_start. user_data must outlive the worker's thread. */
void clip_worker_set_finish (ClipWorker *worker, ClipWorkerFinishFunc finish,
                             gpointer user_data);

/* Creates the context (n_threads, 0 = all cores) on the calling thread, so a failure reaches
 * the caller, then spawns the thread. The first label set is built before any frame. */
gboolean clip_worker_start (ClipWorker *worker, ClipModel *model, int n_threads, GError **error);
/* Quits and joins the thread (an inference in progress completes first; a label build stops
 * at its next batch of CLIP_LABELS_CHUNK prompts), then drops the pending job, the results, the
 * label set and the context. */
void clip_worker_stop (ClipWorker *worker);

/* Newest-generation-wins: a call with a generation not above the last one seen is ignored, so
 * racing property setters cannot leave an old vocabulary in place. Wakes the worker. */
void clip_worker_set_labels (ClipWorker *worker, guint64 generation, const char *labels_text,
                             const char *template_);
/* ... with negative labels (clip_label_set_build_full), scored in the same softmax. */
void clip_worker_set_labels_full (ClipWorker *worker, guint64 generation,
                                  const char *labels_text, const char *negative_text,
                                  const char *template_);

/* TRUE wakes every waiter, which returns at once; FALSE forgets every job submitted so far
 * (a flush): the pending frame, the queued results and the kept embedding go, and the result
 * of the inference in progress will be dropped. */
void clip_worker_set_flushing (ClipWorker *worker, gboolean flushing);

/* Whether a new label set is also applied to the last analysed frame (see the top of this
 * file); off at creation. Async mode only: a sync frame's result must be its own. FALSE also
 * drops a re-score not taken yet, so none is taken after this returns. */
void clip_worker_set_rescore (ClipWorker *worker, gboolean rescore);

/* Async hand-over, step 1: TRUE if no frame is pending or being analysed (the worker may still
 * be building labels). Then *spare is a frame to refill (or NULL: make one). Until step 2 no
 * frame's result can appear, so a take after this call has the newest. */
gboolean clip_worker_try_reserve (ClipWorker *worker, gpointer *spare);
/* Step 2 (after a successful reserve, or in sync mode after clip_worker_wait_idle): takes the
 * frame; returns its job number. The frame is scored once the labels set before this call are
 * built (or failed to build), whatever labels arrive after it. */
guint64 clip_worker_submit (ClipWorker *worker, gpointer frame, guint64 pts);
/* Gives back a frame that was reserved but not submitted. */
void clip_worker_return_spare (ClipWorker *worker, gpointer frame);

/* Waits until no frame is pending or being analysed; FALSE if flushing. *spare as above, if
 * spare is not NULL. */
gboolean clip_worker_wait_idle (ClipWorker *worker, gpointer *spare);

/* The oldest result nobody has taken yet, or NULL: a frame's own result comes before its
 * re-score, so call again for the re-score (or let the next call have it). A failed analysis
 * gives NULL and sets error (the stream should stop). Never blocks. */
ClipResult *clip_worker_take_result (ClipWorker *worker, GError **error);
/* Waits until job seq is finished, then takes its own result (NULL if it gave none: no label
 * set yet, or an empty one); other results (older jobs', re-scores) stay queued for
 * clip_worker_take_result. *flushing is set when the wait was cut short. */
ClipResult *clip_worker_wait_result (ClipWorker *worker, guint64 seq, gboolean *flushing,
                                     GError **error);

/* A failure to build the last requested label set (bad template, invalid text), once. The
 * previous set stays in use. */
GError *clip_worker_take_labels_error (ClipWorker *worker);

G_END_DECLS

#endif /* CLIP_WORKER_H */
