/* test-scoring.c — label lists, template values and prompt ensembles (src/scoring.c), without a
 * model: the pure functions. The numbers against a model are tests/test_scoring.py's, with the
 * numpy reference.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "clip.h"

static void
assert_templates (const char *spec, const char *const *expected)
{
  GError *error = NULL;
  char **got = clip_templates_parse (spec, &error);

  g_assert_no_error (error);
  g_assert_nonnull (got);
  g_assert_cmpuint (g_strv_length (got), ==, g_strv_length ((char **) expected));
  for (guint i = 0; expected[i]; i++)
    g_assert_cmpstr (got[i], ==, expected[i]);
  g_strfreev (got);
}

static void
assert_templates_error (const char *spec, const char *needle)
{
  GError *error = NULL;
  char **got = clip_templates_parse (spec, &error);

  g_assert_null (got);
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT);
  if (needle)
    g_assert_nonnull (strstr (error->message, needle));
  g_error_free (error);
}

static void
test_templates_parse (void)
{
  assert_templates (NULL, (const char *[]) { CLIP_DEFAULT_TEMPLATE, NULL });
  assert_templates ("a photo of a {}.", (const char *[]) { "a photo of a {}.", NULL });
  /* not trimmed inside, trimmed around */
  assert_templates ("  a  {}  ", (const char *[]) { "a  {}", NULL });
  assert_templates ("a {}|b {}", (const char *[]) { "a {}", "b {}", NULL });
  assert_templates (" a {} | b {} ", (const char *[]) { "a {}", "b {}", NULL });
  /* empty members ignored */
  assert_templates ("|a {}||  |b {}|", (const char *[]) { "a {}", "b {}", NULL });
  /* \| is a bar inside a template; other backslashes stay */
  assert_templates ("a \\| {}|x\\y {}", (const char *[]) { "a | {}", "x\\y {}", NULL });
  assert_templates ("{}", (const char *[]) { "{}", NULL });
  /* a member naming a set stands for it */
  {
    GError *error = NULL;
    char **got = clip_templates_parse ("a {} | imagenet-7", &error);

    g_assert_no_error (error);
    g_assert_cmpuint (g_strv_length (got), ==, 8);
    g_assert_cmpstr (got[0], ==, "a {}");
    g_assert_cmpstr (got[1], ==, "itap of a {}.");
    g_strfreev (got);
  }

  assert_templates_error ("a photo", "{}");
  assert_templates_error ("a {}|a photo", "\"a photo\"");
  assert_templates_error ("", NULL);
  assert_templates_error (" | ", NULL);
  assert_templates_error ("a {}|\xff {}", "UTF-8");
  assert_templates_error ("imagenet-81", "{}");
}

static void
test_template_sets (void)
{
  const char *const *sets[] = { clip_template_set ("imagenet-80"),
                                clip_template_set ("imagenet-7") };
  const guint sizes[] = { 80, 7 };
  const char *const *big = sets[0];

  g_assert_null (clip_template_set ("imagenet"));
  g_assert_null (clip_template_set (""));
  for (guint s = 0; s < G_N_ELEMENTS (sets); s++) {
    GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);
    guint n = 0;

    g_assert_nonnull (sets[s]);
    for (const char *const *t = sets[s]; *t; t++, n++) {
      /* one "{}" each, all different */
      g_assert_nonnull (strstr (*t, "{}"));
      g_assert_null (strstr (strstr (*t, "{}") + 2, "{}"));
      g_assert_false (g_hash_table_contains (seen, *t));
      g_hash_table_add (seen, (gpointer) *t);
    }
    g_assert_cmpuint (n, ==, sizes[s]);
    g_hash_table_unref (seen);
  }
  /* the 7 are chosen from the 80 */
  for (const char *const *t = sets[1]; *t; t++)
    g_assert_true (g_strv_contains (big, *t));
  /* spot checks of the notebook's lists */
  g_assert_cmpstr (big[0], ==, "a bad photo of a {}.");
  g_assert_cmpstr (big[79], ==, "a tattoo of the {}.");
  g_assert_true (g_strv_contains (big, "a photo of a {}."));
  g_assert_true (g_strv_contains (big, "a {} in a video game."));
  g_assert_cmpstr (sets[1][0], ==, "itap of a {}.");
  g_assert_cmpstr (sets[1][6], ==, "a photo of the small {}.");

  /* by name through the parser */
  {
    char **got = clip_templates_parse (" imagenet-80 ", NULL);

    g_assert_cmpuint (g_strv_length (got), ==, 80);
    for (guint i = 0; i < 80; i++)
      g_assert_cmpstr (got[i], ==, big[i]);
    g_strfreev (got);
  }
}

static void
test_labels_split (void)
{
  char **labels = clip_labels_split (" cat , dog,,cat, a\\, b ");

  g_assert_cmpuint (g_strv_length (labels), ==, 3);
  g_assert_cmpstr (labels[0], ==, "cat");
  g_assert_cmpstr (labels[1], ==, "dog");
  g_assert_cmpstr (labels[2], ==, "a, b");
  g_strfreev (labels);

  labels = clip_labels_split ("salt, pepper; dog");
  g_assert_cmpuint (g_strv_length (labels), ==, 2);
  g_assert_cmpstr (labels[0], ==, "salt, pepper");
  g_strfreev (labels);

  labels = clip_labels_split (NULL);
  g_assert_cmpuint (g_strv_length (labels), ==, 0);
  g_strfreev (labels);
}

static void
test_negative_labels_split (void)
{
  const char *const labels[] = { "cat", "a, b", NULL };
  const char *const none[] = { NULL };
  char **negatives = clip_negative_labels_split ("dog; cat; a, b ; bird; dog", labels);

  /* separators, escapes and repeats as for labels; a label is never also a negative one */
  g_assert_cmpuint (g_strv_length (negatives), ==, 2);
  g_assert_cmpstr (negatives[0], ==, "dog");
  g_assert_cmpstr (negatives[1], ==, "bird");
  g_strfreev (negatives);

  /* an escaped comma makes the label "a, b", which is a label */
  negatives = clip_negative_labels_split ("a\\, b, x", labels);
  g_assert_cmpuint (g_strv_length (negatives), ==, 1);
  g_assert_cmpstr (negatives[0], ==, "x");
  g_strfreev (negatives);

  negatives = clip_negative_labels_split ("cat, dog", none);
  g_assert_cmpuint (g_strv_length (negatives), ==, 2);
  g_strfreev (negatives);

  negatives = clip_negative_labels_split (NULL, labels);
  g_assert_cmpuint (g_strv_length (negatives), ==, 0);
  g_strfreev (negatives);
}

static void
normalise (float *v, int dim)
{
  double norm = 0;

  for (int d = 0; d < dim; d++)
    norm += (double) v[d] * v[d];
  for (int d = 0; d < dim; d++)
    v[d] = (float) (v[d] / sqrt (norm));
}

static void
test_ensemble_combine (void)
{
  enum { DIM = 5, N = 3 };
  float prompts[N * DIM], out[DIM];
  GRand *rand = g_rand_new_with_seed (7);
  double norm = 0, mean[DIM] = { 0 }, mean_norm = 0;

  for (int i = 0; i < N * DIM; i++)
    prompts[i] = (float) g_rand_double_range (rand, -1, 1);
  for (int t = 0; t < N; t++)
    normalise (prompts + t * DIM, DIM);
  g_rand_free (rand);

  /* one template: unchanged, bit for bit */
  clip_ensemble_combine (prompts, 1, DIM, out);
  g_assert_cmpmem (out, sizeof (float) * DIM, prompts, sizeof (float) * DIM);

  /* normalised mean */
  clip_ensemble_combine (prompts, N, DIM, out);
  for (int d = 0; d < DIM; d++) {
    for (int t = 0; t < N; t++)
      mean[d] += prompts[t * DIM + d] / (double) N;
    mean_norm += mean[d] * mean[d];
    norm += (double) out[d] * out[d];
  }
  g_assert_cmpfloat_with_epsilon (norm, 1.0, 1e-6);
  for (int d = 0; d < DIM; d++)
    g_assert_cmpfloat_with_epsilon (out[d], mean[d] / sqrt (mean_norm), 1e-6);

  /* in place */
  memcpy (out, prompts, sizeof prompts[0] * DIM);
  {
    float copy[N * DIM], expected[DIM];

    memcpy (copy, prompts, sizeof copy);
    clip_ensemble_combine (prompts, N, DIM, expected);
    clip_ensemble_combine (copy, N, DIM, copy);
    g_assert_cmpmem (copy, sizeof (float) * DIM, expected, sizeof (float) * DIM);
  }

  /* opposite embeddings cancel: zero, not NaN */
  {
    float pair[2 * DIM];

    memcpy (pair, prompts, sizeof (float) * DIM);
    for (int d = 0; d < DIM; d++)
      pair[DIM + d] = -prompts[d];
    clip_ensemble_combine (pair, 2, DIM, out);
    for (int d = 0; d < DIM; d++)
      g_assert_cmpfloat (out[d], ==, 0.0f);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scoring/templates/parse", test_templates_parse);
  g_test_add_func ("/scoring/templates/sets", test_template_sets);
  g_test_add_func ("/scoring/labels/split", test_labels_split);
  g_test_add_func ("/scoring/labels/negatives", test_negative_labels_split);
  g_test_add_func ("/scoring/ensemble/combine", test_ensemble_combine);
  return g_test_run ();
}
