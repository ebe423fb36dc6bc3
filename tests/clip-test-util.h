/* clip-test-util.h — helpers shared by the C tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef CLIP_TEST_UTIL_H
#define CLIP_TEST_UTIL_H

#include <glib.h>

/* Runs $PYTHON (Debian's /usr/bin/python3 by default) with args; a failure ends the test with
 * the script's output. */
void clip_test_run_python (const char *const *args);

/* Writes a random-weight HF-layout checkpoint into dir: tests/reference/make_checkpoint.py (found
 * through $CLIP_REFERENCE_DIR) with the given command-line options (NULL-terminated, or NULL). */
void clip_test_make_checkpoint (const char *dir, const char *const *options);

#endif /* CLIP_TEST_UTIL_H */
