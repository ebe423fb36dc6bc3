/* test-labels.c — the element's label sets (gst/cliplabels.c) on a tiny random-weight model:
 * prompt ensembles built from the per-prompt cache, and what relabeling costs.
 *
 * Expected embeddings are the engine's own (clip_embed_labels, itself checked against the numpy
 * reference by tests/test_scoring.py): a set must hold exactly those, whatever the cache held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "clip-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "clip.h"
#include "cliplabels.h"

static ClipModel *model;
static ClipContext *ctx;

static void
assert_set_embeddings (const ClipLabelSet *set, const char *template_)
{
  int dim = clip_model_get_embedding_dim (model);
  float *want = g_new (float, (gsize) MAX (set->n_labels, 1) * dim);
  GError *error = NULL;

  g_assert_true (clip_embed_labels (ctx, template_, (const char *const *) set->labels,
                                    (int) set->n_labels, want, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < set->n_labels * dim; i++)
    g_assert_cmpfloat_with_epsilon (set->embeddings[i], want[i], 1e-6);
  g_free (want);
}

static ClipLabelSet *
build (ClipLabelCache *cache, const char *labels, const char *template_, guint64 *n_computed)
{
  GError *error = NULL;
  guint64 before = clip_label_cache_get_n_computed (cache);
  ClipLabelSet *set = clip_label_set_build (ctx, cache, labels, template_, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (set);
  *n_computed = clip_label_cache_get_n_computed (cache) - before;
  assert_set_embeddings (set, template_);
  return set;
}

static void
test_ensemble_cache (void)
{
  ClipLabelCache *cache = clip_label_cache_new ();
  ClipLabelSet *set;
  guint64 n;
  GError *error = NULL;

  /* 2 labels x 2 templates */
  set = build (cache, "cat, dog", "a photo of a {}. | art of the {}.", &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpuint (set->n_labels, ==, 2);
  clip_label_set_unref (set);

  /* a new label: its 2 prompts only */
  set = build (cache, "cat, dog, bird", "a photo of a {}. | art of the {}.", &n);
  g_assert_cmpuint (n, ==, 2);
  clip_label_set_unref (set);

  /* a label dropped, one back: nothing to compute */
  set = build (cache, "dog, cat", "a photo of a {}.|art of the {}.", &n);
  g_assert_cmpuint (n, ==, 0);
  clip_label_set_unref (set);

  /* a template added: one prompt per label; a single template already seen: none */
  set = build (cache, "cat, dog", "a photo of a {}.|art of the {}.|itap of a {}.", &n);
  g_assert_cmpuint (n, ==, 2);
  clip_label_set_unref (set);
  set = build (cache, "cat, dog", "art of the {}.", &n);
  g_assert_cmpuint (n, ==, 0);
  clip_label_set_unref (set);

  /* a named set: 7 templates, two of them ("itap of a {}.", "art of the {}.") cached already */
  set = build (cache, "cat", "imagenet-7", &n);
  g_assert_cmpuint (n, ==, 5);
  clip_label_set_unref (set);

  /* imagenet-80 over more labels than the cache's soft limit: still exact */
  {
    GString *many = g_string_new (NULL);

    for (int i = 0; i < 14; i++)
      g_string_append_printf (many, "%sthing %d", i ? "," : "", i);
    set = build (cache, many->str, "imagenet-80", &n);
    g_assert_cmpuint (set->n_labels, ==, 14);
    g_assert_cmpuint (n, ==, 14 * 80);
    clip_label_set_unref (set);
    /* and relabeling with one more label costs 80 */
    g_string_append (many, ",thing 14");
    set = build (cache, many->str, "imagenet-80", &n);
    g_assert_cmpuint (n, ==, 80);
    clip_label_set_unref (set);
    g_string_free (many, TRUE);
  }

  /* a bad member: an error, the cache still usable (it keeps the last set's prompts) */
  g_assert_null (clip_label_set_build (ctx, cache, "cat", "a {}|oops", NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  set = build (cache, "thing 3", "art of the {}.", &n);
  g_assert_cmpuint (n, ==, 0);
  clip_label_set_unref (set);

  clip_label_cache_free (cache);
}

/* Negative labels: after the labels in the embeddings, a label never both, cached like labels. */
static void
test_negatives (void)
{
  ClipLabelCache *cache = clip_label_cache_new ();
  int dim = clip_model_get_embedding_dim (model);
  GError *error = NULL;
  ClipLabelSet *set = clip_label_set_build_full (ctx, cache, "cat, dog", " nothing, dog,a wall ",
                                                 "a {}|art of the {}.", NULL, &error);
  const char *all[] = { "cat", "dog", "nothing", "a wall" };
  float want[4 * 64];

  g_assert_no_error (error);
  g_assert_cmpuint (set->n_labels, ==, 2);
  g_assert_cmpuint (set->n_negative, ==, 2);
  g_assert_cmpstr (set->negative_labels[0], ==, "nothing");
  g_assert_cmpstr (set->negative_labels[1], ==, "a wall");
  g_assert_null (set->negative_labels[2]);
  g_assert_cmpuint (clip_label_cache_get_n_computed (cache), ==, 8);
  g_assert_cmpint (dim, <=, 64);
  g_assert_true (clip_embed_labels (ctx, "a {}|art of the {}.", all, 4, want, &error));
  for (int i = 0; i < 4 * dim; i++)
    g_assert_cmpfloat_with_epsilon (set->embeddings[i], want[i], 1e-6);
  clip_label_set_unref (set);

  /* a negative turned label: nothing new to compute */
  set = clip_label_set_build_full (ctx, cache, "cat, dog, nothing", "a wall",
                                   "a {}|art of the {}.", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (set->n_labels, ==, 3);
  g_assert_cmpuint (set->n_negative, ==, 1);
  g_assert_cmpuint (clip_label_cache_get_n_computed (cache), ==, 8);
  clip_label_set_unref (set);
  clip_label_cache_free (cache);
}

int
main (int argc, char **argv)
{
  const char *build_dir = g_getenv ("CLIP_TEST_BUILD_DIR");
  char *dir, *model_dir;
  GError *error = NULL;
  ClipContextParams params = clip_context_params_default ();
  int status;

  g_test_init (&argc, &argv, NULL);

  dir = g_dir_make_tmp ("test-labels-XXXXXX", &error);
  g_assert_no_error (error);
  if (build_dir) {
    g_rmdir (dir);
    g_free (dir);
    dir = g_build_filename (build_dir, "test-labels-XXXXXX", NULL);
    g_assert_nonnull (g_mkdtemp (dir));
  }
  model_dir = g_build_filename (dir, "tiny", NULL);
  clip_test_make_checkpoint (model_dir, (const char *const[]) { "--seed", "4", NULL });
  model = clip_model_load (model_dir, &error);
  g_assert_no_error (error);
  params.n_threads = 1;
  ctx = clip_context_new (model, &params, &error);
  g_assert_no_error (error);

  g_test_add_func ("/labels/ensemble-cache", test_ensemble_cache);
  g_test_add_func ("/labels/negatives", test_negatives);
  status = g_test_run ();

  clip_context_free (ctx);
  clip_model_unref (model);
  {
    char *argv_rm[] = { "rm", "-rf", dir, NULL };

    g_spawn_sync (NULL, argv_rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  g_free (model_dir);
  g_free (dir);
  return status;
}
