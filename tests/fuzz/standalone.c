/* standalone.c — runs a fuzz target once on each file (or each file of each directory) named
 * on the command line (a path that does not exist is skipped), without libFuzzer: how the seed corpora and the regression cases run as
 * ordinary tests with any compiler (and under the sanitizers of scripts/test.sh --sanitize).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-util.h"

#include <glib/gstdio.h>

__attribute__ ((weak)) int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  return 0;
}

static int n_run;

static void
run_file (const char *path)
{
  char *contents;
  gsize length;
  GError *error = NULL;

  if (!g_file_get_contents (path, &contents, &length, &error)) {
    g_printerr ("%s\n", error->message);
    exit (2);
  }
  /* A copy of exactly the input's size, as libFuzzer passes it: a read past the end is caught
   * under AddressSanitizer. */
  uint8_t *copy = g_memdup2 (contents, length);
  LLVMFuzzerTestOneInput (copy, length);
  g_free (copy);
  g_free (contents);
  n_run++;
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
run_path (const char *path)
{
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    printf ("%s: none\n", path);
    return;
  }
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    GDir *dir = g_dir_open (path, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
    const char *name;

    while (dir && (name = g_dir_read_name (dir)) != NULL)
      if (name[0] != '.')
        g_ptr_array_add (names, g_build_filename (path, name, NULL));
    if (dir)
      g_dir_close (dir);
    g_ptr_array_sort (names, compare_paths);
    for (guint i = 0; i < names->len; i++)
      run_path (names->pdata[i]);
    g_ptr_array_unref (names);
  } else {
    run_file (path);
  }
}

int
main (int argc, char **argv)
{
  LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++)
    run_path (argv[i]);
  printf ("%d inputs run\n", n_run);
  return 0;
}
