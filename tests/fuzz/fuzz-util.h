/* fuzz-util.h — what every fuzz target shares: inputs handed to the engine's path-based
 * loaders through memory files, and GLib criticals made fatal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A target defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize when it sets something up
 * once). It is linked either with libFuzzer (-fsanitize=fuzzer, clang: the fuzz-* programs of a
 * -Dfuzzing=true build, scripts/fuzz.sh) or with standalone.c, which runs it once on each file
 * named on its command line: the corpus and the regression cases then run as ordinary tests in
 * every build, gcc's included.
 */
#ifndef CLIP_FUZZ_UTIL_H
#define CLIP_FUZZ_UTIL_H

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* A file in memory, named /proc/self/fd/N, whose contents each input replaces. */
typedef struct {
  int fd;
  char path[64];
} FuzzFile;

static inline void
fuzz_file_init (FuzzFile *file, const char *name)
{
  file->fd = memfd_create (name, MFD_CLOEXEC);
  if (file->fd < 0) {
    perror ("memfd_create");
    abort ();
  }
  snprintf (file->path, sizeof file->path, "/proc/self/fd/%d", file->fd);
}

static inline void
fuzz_file_set (FuzzFile *file, const void *data, size_t size)
{
  const uint8_t *p = data;

  if (ftruncate (file->fd, 0) != 0) {
    perror ("ftruncate");
    abort ();
  }
  for (size_t done = 0; done < size;) {
    ssize_t n = pwrite (file->fd, p + done, size - done, (off_t) done);
    if (n <= 0) {
      perror ("pwrite");
      abort ();
    }
    done += (size_t) n;
  }
}

/* The engine reports bad input with GErrors; a critical (a g_return_if_fail, or a forward pass
 * refusing its arguments) on any input is a bug, and ends the run like a crash. */
static inline void
fuzz_init_glib (void)
{
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
}

/* Splits data at its first NUL byte: [data, *rest) is the first part, NUL-free; *rest points
 * after the NUL (NULL when there is none). */
static inline size_t
fuzz_split (const uint8_t *data, size_t size, const uint8_t **rest, size_t *rest_size)
{
  const uint8_t *nul = size > 0 ? memchr (data, 0, size) : NULL;

  if (nul == NULL) {
    *rest = NULL;
    *rest_size = 0;
    return size;
  }
  *rest = nul + 1;
  *rest_size = size - (size_t) (nul + 1 - data);
  return (size_t) (nul - data);
}

#endif /* CLIP_FUZZ_UTIL_H */
