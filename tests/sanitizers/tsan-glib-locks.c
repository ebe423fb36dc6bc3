/* tsan-glib-locks.c — GMutex and GCond on pthreads, for ThreadSanitizer runs only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib implements GMutex and GCond with futexes on Linux, which ThreadSanitizer does not see:
 * every access made under a GMutex would be reported as a race. Preloaded by the tests of a
 * -Db_sanitize=thread build (scripts/test.sh --sanitize=thread), this library defines the
 * GMutex and GCond functions on pthread mutexes and condition variables, which it intercepts,
 * as GLib itself does on systems without futexes (a pthread object allocated at first use, its
 * address stored in the GMutex or GCond, so that zero-initialised statics work).
 *
 * Every call from our code, GStreamer and GObject goes through the PLT and lands here. GLib's
 * calls to its own functions do not (they are bound inside libglib), so GLib's internal locks
 * keep GLib's implementation: consistent, since no GMutex or GCond is used from both sides
 * (GLib's public functions that take one, g_cond_wait and g_cond_wait_until, are defined
 * here). GRecMutex and GRWLock are pthread objects in GLib already.
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void
fail (const char *what, int err)
{
  fprintf (stderr, "tsan-glib-locks: %s: error %d\n", what, err);
  abort ();
}

static pthread_mutex_t *
mutex_impl (GMutex *mutex)
{
  pthread_mutex_t *impl = __atomic_load_n ((pthread_mutex_t **) &mutex->p, __ATOMIC_ACQUIRE);

  if (impl == NULL) {
    pthread_mutex_t *fresh = malloc (sizeof *fresh);
    pthread_mutex_t *expected = NULL;
    int err;

    if (fresh == NULL)
      fail ("malloc", ENOMEM);
    if ((err = pthread_mutex_init (fresh, NULL)) != 0)
      fail ("pthread_mutex_init", err);
    if (__atomic_compare_exchange_n ((pthread_mutex_t **) &mutex->p, &expected, fresh, FALSE,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      impl = fresh;
    } else {
      pthread_mutex_destroy (fresh);
      free (fresh);
      impl = expected;
    }
  }
  return impl;
}

void
g_mutex_init (GMutex *mutex)
{
  mutex->p = NULL;
  mutex_impl (mutex);
}

void
g_mutex_clear (GMutex *mutex)
{
  pthread_mutex_t *impl = mutex->p;

  if (impl != NULL) {
    pthread_mutex_destroy (impl);
    free (impl);
    mutex->p = NULL;
  }
}

void
g_mutex_lock (GMutex *mutex)
{
  int err = pthread_mutex_lock (mutex_impl (mutex));

  if (err != 0)
    fail ("pthread_mutex_lock", err);
}

void
g_mutex_unlock (GMutex *mutex)
{
  int err = pthread_mutex_unlock (mutex_impl (mutex));

  if (err != 0)
    fail ("pthread_mutex_unlock", err);
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  int err = pthread_mutex_trylock (mutex_impl (mutex));

  if (err != 0 && err != EBUSY)
    fail ("pthread_mutex_trylock", err);
  return err == 0;
}

static pthread_cond_t *
cond_impl (GCond *cond)
{
  pthread_cond_t *impl = __atomic_load_n ((pthread_cond_t **) &cond->p, __ATOMIC_ACQUIRE);

  if (impl == NULL) {
    pthread_cond_t *fresh = malloc (sizeof *fresh), *expected = NULL;
    pthread_condattr_t attr;

    if (fresh == NULL)
      fail ("malloc", ENOMEM);
    /* g_cond_wait_until's end time is on the monotonic clock */
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (fresh, &attr);
    pthread_condattr_destroy (&attr);
    if (__atomic_compare_exchange_n ((pthread_cond_t **) &cond->p, &expected, fresh, FALSE,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      impl = fresh;
    } else {
      pthread_cond_destroy (fresh);
      free (fresh);
      impl = expected;
    }
  }
  return impl;
}

void
g_cond_init (GCond *cond)
{
  cond->p = NULL;
  cond_impl (cond);
}

void
g_cond_clear (GCond *cond)
{
  pthread_cond_t *impl = cond->p;

  if (impl != NULL) {
    pthread_cond_destroy (impl);
    free (impl);
    cond->p = NULL;
  }
}

void
g_cond_wait (GCond *cond, GMutex *mutex)
{
  int err = pthread_cond_wait (cond_impl (cond), mutex_impl (mutex));

  if (err != 0)
    fail ("pthread_cond_wait", err);
}

gboolean
g_cond_wait_until (GCond *cond, GMutex *mutex, gint64 end_time)
{
  struct timespec ts = { end_time / G_USEC_PER_SEC, (end_time % G_USEC_PER_SEC) * 1000 };
  int err = pthread_cond_timedwait (cond_impl (cond), mutex_impl (mutex), &ts);

  if (err != 0 && err != ETIMEDOUT)
    fail ("pthread_cond_timedwait", err);
  return err == 0;
}

void
g_cond_signal (GCond *cond)
{
  pthread_cond_signal (cond_impl (cond));
}

void
g_cond_broadcast (GCond *cond)
{
  pthread_cond_broadcast (cond_impl (cond));
}
