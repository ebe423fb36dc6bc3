/* clip-test-util.c — helpers shared by the C tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-test-util.h"

void
clip_test_run_python (const char *const *args)
{
  const char *python = g_getenv ("PYTHON");
  GPtrArray *argv = g_ptr_array_new ();
  char *out = NULL, *err = NULL;
  GError *error = NULL;
  int status;

  g_ptr_array_add (argv, (gpointer) (python ? python : "/usr/bin/python3"));
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("python failed:\n%s%s", out, err);
  g_free (out);
  g_free (err);
  g_ptr_array_free (argv, TRUE);
}

void
clip_test_make_checkpoint (const char *dir, const char *const *options)
{
  const char *reference = g_getenv ("CLIP_REFERENCE_DIR");
  g_assert_nonnull (reference);
  char *script = g_build_filename (reference, "make_checkpoint.py", NULL);
  GPtrArray *args = g_ptr_array_new ();

  g_ptr_array_add (args, script);
  g_ptr_array_add (args, (gpointer) dir);
  for (int i = 0; options && options[i]; i++)
    g_ptr_array_add (args, (gpointer) options[i]);
  g_ptr_array_add (args, NULL);
  clip_test_run_python ((const char *const *) args->pdata);
  g_ptr_array_free (args, TRUE);
  g_free (script);
}
