/* clip-infer — the engine from the command line: tokenize, preprocess, embed and classify.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Results go to stdout as one JSON object; errors go to stderr with exit status 1. An app of
 * include/clip.h only (plus the image loader next to it), like any other user of the engine.
 *
 *   clip-infer tokenize    --model DIR [--max-length N] TEXT...     {"tokens": [[ids]...]}
 *   clip-infer preprocess  --model DIR --out FILE IMAGE             {"shape": [3, H, W]}
 *   clip-infer embed-text  --model DIR [--template T] TEXT...       {"embeddings": [[...]...]}
 *   clip-infer embed-image --model DIR (IMAGE | --pixels FILE)      {"embedding": [...]}
 *   clip-infer classify    --model DIR [--template T] (IMAGE | --pixels FILE) LABEL...
 *                                                  {"labels": [...], "logits": [...], "probs": [...]}
 *   clip-infer classify    --model DIR --labels L1,L2 IMAGE...   one line per image (clip-catalog.h)
 * plus --threads N and --precision fp32|bf16 for the commands that run the model; classify also
 * takes --negative L1,L2 and --embeddings; --crop center|squash|pad for the commands that
 * preprocess an IMAGE (preprocess, embed-image, classify; see ClipCrop in clip.h). Floats print
 * as %.9g (round-trips).
 */
#include "clip.h"
#include "clip-catalog.h"
#include "image-io.h"
#include "json-out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the command line says, for every command (each accepts a subset of the options). */
typedef struct {
  char *model_dir;
  int n_threads;
  char *precision;
  char *template_;
  char *negative;            /* --negative: comma-separated negative labels */
  char *labels;              /* --labels: the catalog form of classify */
  gboolean embeddings;       /* --embeddings */
  char *pixels_path;
  char *out_path;
  int max_length;
  char *crop_name;           /* --crop */
  ClipCrop crop;
  char **args;               /* the positional arguments */
  int n_args;
} InferArgs;

enum {
  OPT_TEMPLATE = 1 << 0,
  OPT_PIXELS = 1 << 1,
  OPT_OUT = 1 << 2,
  OPT_MAX_LENGTH = 1 << 3,
  OPT_THREADS = 1 << 4,      /* with --precision: the commands that run the model */
  OPT_NEGATIVE = 1 << 5,
  OPT_LABELS = 1 << 6,       /* with --embeddings */
  OPT_CROP = 1 << 7,         /* the commands that preprocess an IMAGE */
};

typedef struct {
  const char *name;
  const char *params;        /* positional arguments, for --help */
  const char *summary;
  guint options;             /* OPT_* it accepts besides --model */
  gboolean (*run) (const InferArgs *args, GString *json, GError **error);
} InferCommand;

/* tokenize truncates as HF's CLIPTokenizer does with truncation=True: to its model_max_length,
 * 77 for every CLIP checkpoint (the text tower's context). */
#define TOKENIZE_DEFAULT_MAX_LENGTH 77

/* Usage errors: the message is followed by a pointer to --help. */
#define INFER_USAGE_ERROR (g_quark_from_static_string ("clip-infer-usage"))

/* ------------------------------------------------------------------------------------------ */
/* Inputs */

static gboolean
check_utf8 (const char *what, const char *s, GError **error)
{
  if (!g_utf8_validate (s, -1, NULL)) {
    g_set_error (error, INFER_USAGE_ERROR, 0, "%s is not valid UTF-8", what);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_model_dir (const char *dir, GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FOUND,
                 "model directory %s does not exist (expected a HuggingFace CLIP checkpoint: "
                 "config.json, model.safetensors, vocab.json, merges.txt, "
                 "preprocessor_config.json)", dir);
    return FALSE;
  }
  return TRUE;
}

static ClipContext *
load_context (const InferArgs *args, GError **error)
{
  ClipModel *model;
  ClipContext *ctx;
  ClipContextParams params = clip_context_params_default ();

  ClipModelParams model_params = clip_model_params_default ();

  if (!check_model_dir (args->model_dir, error))
    return NULL;
  if (args->precision
      && !clip_precision_from_string (args->precision, &model_params.precision, error))
    return NULL;
  model = clip_model_load_with_params (args->model_dir, &model_params, error);
  if (!model)
    return NULL;
  if (clip_model_get_precision_note (model))
    fprintf (stderr, "clip-infer: warning: %s\n", clip_model_get_precision_note (model));
  params.n_threads = args->n_threads;
  ctx = clip_context_new (model, &params, error);
  clip_model_unref (model);          /* the context keeps its own reference */
  return ctx;
}

static void
free_context (ClipContext *ctx)
{
  if (ctx)
    clip_context_free (ctx);
}

/* The [3, S, S] pixel tensor of the model: from --pixels (raw float32, little-endian) or from
 * an image file preprocessed with the model's preprocessor_config.json. */
static float *
load_pixels (ClipContext *ctx, const char *pixels_path, const char *image_path, ClipCrop crop,
             GError **error)
{
  ClipModel *model = clip_context_get_model (ctx);
  int size = clip_model_get_image_size (model);
  gsize n = (gsize) 3 * size * size;
  float *pixels = NULL;

  if (pixels_path) {
    char *contents;
    gsize length;
    GError *local = NULL;

    if (!g_file_get_contents (pixels_path, &contents, &length, &local)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "cannot read pixels %s: %s", pixels_path,
                   local->message);
      g_error_free (local);
      return NULL;
    }
    if (length != n * sizeof (float)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                   "pixels %s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT
                   " (float32 [3, %d, %d] for this model)", pixels_path, length,
                   n * sizeof (float), size, size);
      g_free (contents);
      return NULL;
    }
    pixels = g_new (float, n);
    for (gsize i = 0; i < n; i++) {
      guint32 bits;

      memcpy (&bits, contents + 4 * i, 4);
      bits = GUINT32_FROM_LE (bits);
      memcpy (pixels + i, &bits, 4);
    }
    g_free (contents);
  } else {
    const ClipPreprocessConfig *config = clip_model_get_preprocess_config (model);
    ClipImage image;
    int w, h;

    if (!clip_image_load (image_path, &image, error))
      return NULL;
    clip_preprocess_output_size_with_crop (config, crop, image.width, image.height, &w, &h);
    if (w != size || h != size) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                   "%s: preprocessing gives %dx%d pixels but the model takes %dx%d (check "
                   "crop_size / do_center_crop in preprocessor_config.json)", image_path, w, h,
                   size, size);
      clip_image_clear (&image);
      return NULL;
    }
    pixels = g_new (float, n);
    if (!clip_preprocess_rgb8_with_crop (config, crop, image.rgb, image.width, image.height,
                                         3 * image.width, pixels, error))
      g_clear_pointer (&pixels, g_free);
    clip_image_clear (&image);
  }
  return pixels;
}

/* Fails early, before the model loads, on a template value clip_embed_labels would refuse. */
static gboolean
check_templates (const char *template_, GError **error)
{
  char **templates = clip_templates_parse (template_, error);

  g_strfreev (templates);
  return templates != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Commands */

static gboolean
run_tokenize (const InferArgs *args, GString *json, GError **error)
{
  ClipTokenizer *tokenizer;
  char *vocab, *merges;
  gboolean ok = FALSE;

  if (!check_model_dir (args->model_dir, error))
    return FALSE;
  /* Only the tokenizer files: no weights needed to tokenize. */
  vocab = g_build_filename (args->model_dir, "vocab.json", NULL);
  merges = g_build_filename (args->model_dir, "merges.txt", NULL);
  tokenizer = clip_tokenizer_load (vocab, merges, error);
  g_free (vocab);
  g_free (merges);
  if (!tokenizer)
    return FALSE;

  g_string_append (json, "{\"tokens\": [");
  for (int i = 0; i < args->n_args; i++) {
    int max_ids = args->max_length > 0 ? args->max_length : TOKENIZE_DEFAULT_MAX_LENGTH;
    int32_t *ids = g_new (int32_t, max_ids);
    int n = clip_tokenizer_encode (tokenizer, args->args[i], ids, max_ids, error);

    if (n < 0) {
      g_free (ids);
      goto out;
    }
    g_string_append (json, i > 0 ? ", [" : "[");
    for (int j = 0; j < n; j++)
      g_string_append_printf (json, j > 0 ? ", %" G_GINT32_FORMAT : "%" G_GINT32_FORMAT,
                              ids[j]);
    g_string_append_c (json, ']');
    g_free (ids);
  }
  g_string_append (json, "]}");
  ok = TRUE;

out:
  clip_tokenizer_free (tokenizer);
  return ok;
}

static gboolean
run_preprocess (const InferArgs *args, GString *json, GError **error)
{
  ClipPreprocessConfig config;
  ClipImage image;
  int w, h;
  gsize n;
  float *pixels;
  gboolean ok;

  if (!check_model_dir (args->model_dir, error))
    return FALSE;
  if (!clip_preprocess_config_load_dir (args->model_dir, &config, error))
    return FALSE;
  if (!clip_image_load (args->args[0], &image, error))
    return FALSE;

  clip_preprocess_output_size_with_crop (&config, args->crop, image.width, image.height, &w, &h);
  n = (gsize) 3 * w * h;
  pixels = g_new (float, n);
  ok = clip_preprocess_rgb8_with_crop (&config, args->crop, image.rgb, image.width, image.height,
                                       3 * image.width, pixels, error);
  clip_image_clear (&image);
  if (ok) {
    GError *local = NULL;

    for (gsize i = 0; i < n; i++) {
      guint32 bits;

      memcpy (&bits, pixels + i, 4);
      bits = GUINT32_TO_LE (bits);
      memcpy (pixels + i, &bits, 4);
    }
    ok = g_file_set_contents (args->out_path, (const char *) pixels, n * sizeof (float), &local);
    if (!ok) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "cannot write %s: %s", args->out_path,
                   local->message);
      g_error_free (local);
    }
  }
  g_free (pixels);
  if (ok)
    g_string_append_printf (json, "{\"shape\": [3, %d, %d]}", h, w);
  return ok;
}

static gboolean
run_embed_text (const InferArgs *args, GString *json, GError **error)
{
  ClipContext *ctx;
  float *embeddings = NULL;
  int dim;
  gboolean ok = FALSE;

  if (args->template_ && !check_templates (args->template_, error))
    return FALSE;
  ctx = load_context (args, error);
  if (!ctx)
    goto out;
  dim = clip_model_get_embedding_dim (clip_context_get_model (ctx));
  embeddings = g_new (float, (gsize) args->n_args * dim);
  /* With --template, each text's embedding is the ensemble of its prompts (one per template);
   * without, the texts themselves. */
  if (args->template_ ? !clip_embed_labels (ctx, args->template_,
                                            (const char *const *) args->args, args->n_args,
                                            embeddings, error)
      : !clip_embed_text_batched (ctx, (const char *const *) args->args, args->n_args,
                                  embeddings, error))
    goto out;

  g_string_append (json, "{\"embeddings\": [");
  for (int i = 0; i < args->n_args; i++) {
    if (i > 0)
      g_string_append (json, ", ");
    json_append_floats (json, embeddings + (gsize) i * dim, dim);
  }
  g_string_append (json, "]}");
  ok = TRUE;

out:
  g_free (embeddings);
  free_context (ctx);
  return ok;
}

static gboolean
run_embed_image (const InferArgs *args, GString *json, GError **error)
{
  ClipContext *ctx;
  float *pixels, *embedding;
  int dim;

  ctx = load_context (args, error);
  if (!ctx)
    return FALSE;
  pixels = load_pixels (ctx, args->pixels_path, args->pixels_path ? NULL : args->args[0],
                        args->crop, error);
  if (!pixels) {
    clip_context_free (ctx);
    return FALSE;
  }
  dim = clip_model_get_embedding_dim (clip_context_get_model (ctx));
  embedding = g_new (float, dim);
  if (!clip_embed_image (ctx, pixels, embedding, error)) {
    g_free (embedding);
    g_free (pixels);
    clip_context_free (ctx);
    return FALSE;
  }

  g_string_append (json, "{\"embedding\": ");
  json_append_floats (json, embedding, dim);
  g_string_append_c (json, '}');

  g_free (embedding);
  g_free (pixels);
  clip_context_free (ctx);
  return TRUE;
}

static gboolean
run_classify (const InferArgs *args, GString *json, GError **error)
{
  /* With --pixels every positional argument is a label; otherwise the first is the image. (Both
   * NULL-terminated: the tail of GOption's remaining arguments.) */
  char *const *labels = args->pixels_path ? args->args : args->args + 1;
  int n_labels = args->pixels_path ? args->n_args : args->n_args - 1;
  const char *template_ = args->template_ ? args->template_ : CLIP_DEFAULT_TEMPLATE;
  ClipContext *ctx = NULL;
  ClipModel *model;
  float *pixels = NULL, *image = NULL, *texts = NULL, *logits = NULL, *probs = NULL;
  char **negatives, **all;
  int dim, n_negative, n_all;
  gboolean ok = FALSE;

  if (!check_templates (template_, error))
    return FALSE;
  /* labels then negative labels, in one softmax */
  negatives = clip_negative_labels_split (args->negative, (const char *const *) labels);
  n_negative = (int) g_strv_length (negatives);
  n_all = n_labels + n_negative;
  all = g_new0 (char *, n_all + 1);
  for (int i = 0; i < n_all; i++)
    all[i] = i < n_labels ? labels[i] : negatives[i - n_labels];
  ctx = load_context (args, error);
  if (!ctx)
    goto out;
  model = clip_context_get_model (ctx);
  pixels = load_pixels (ctx, args->pixels_path, args->pixels_path ? NULL : args->args[0],
                        args->crop, error);
  if (!pixels)
    goto out;

  dim = clip_model_get_embedding_dim (model);
  image = g_new (float, dim);
  texts = g_new (float, (gsize) n_all * dim);
  logits = g_new (float, n_all);
  probs = g_new (float, n_all);
  if (!clip_embed_labels (ctx, template_, (const char *const *) all, n_all, texts, error))
    goto out;
  if (!clip_embed_image (ctx, pixels, image, error))
    goto out;
  clip_score (model, image, texts, n_all, logits, probs);

  g_string_append (json, "{\"labels\": ");
  json_append_strings (json, labels, n_labels);
  g_string_append (json, ", \"logits\": ");
  json_append_floats (json, logits, n_labels);
  g_string_append (json, ", \"probs\": ");
  json_append_floats (json, probs, n_labels);
  if (args->embeddings) {
    g_string_append (json, ", \"image-embedding\": ");
    json_append_floats (json, image, dim);
  }
  if (n_negative > 0) {
    g_string_append (json, ", \"negative-labels\": ");
    json_append_strings (json, negatives, n_negative);
    g_string_append (json, ", \"negative-logits\": ");
    json_append_floats (json, logits + n_labels, n_negative);
    g_string_append (json, ", \"negative-probs\": ");
    json_append_floats (json, probs + n_labels, n_negative);
  }
  g_string_append_c (json, '}');
  ok = TRUE;

out:
  g_free (all);
  g_strfreev (negatives);
  g_free (probs);
  g_free (logits);
  g_free (texts);
  g_free (image);
  g_free (pixels);
  free_context (ctx);
  return ok;
}

static const InferCommand commands[] = {
  { "tokenize", "TEXT...",
    "Token ids of each TEXT (BOS ... EOS, unpadded, truncated to --max-length), with DIR's "
    "vocab.json and merges.txt.",
    OPT_MAX_LENGTH, run_tokenize },
  { "preprocess", "IMAGE",
    "Writes IMAGE preprocessed as DIR's preprocessor_config.json says (the only file it needs) "
    "to --out as raw float32 little-endian [3, H, W], and prints the shape.",
    OPT_OUT | OPT_CROP, run_preprocess },
  { "embed-text", "TEXT...",
    "L2-normalised text embedding of each TEXT; with --template, the ensemble of its prompts "
    "(the L2-normalised mean of each template's normalised embedding).",
    OPT_TEMPLATE | OPT_THREADS, run_embed_text },
  { "embed-image", "IMAGE",
    "L2-normalised image embedding of IMAGE (or of the tensor in --pixels).",
    OPT_PIXELS | OPT_THREADS | OPT_CROP, run_embed_image },
  { "classify", "IMAGE LABEL...  |  --labels L1,L2 IMAGE...",
    "Zero-shot scores of IMAGE (or --pixels) against each LABEL, in the order given; each label "
    "becomes a prompt through --template (default \"" CLIP_DEFAULT_TEMPLATE "\"). --negative "
    "labels share the softmax and are printed as negative-labels, negative-logits and "
    "negative-probs.\n\n"
    "With --labels, every IMAGE is an image to classify (a directory: its regular files, sorted "
    "by name; @FILE: the paths in FILE, one per line) and each gets one JSON line on stdout: "
    "path, labels, scores, top-label, top-score (negative-labels and negative-scores with "
    "--negative, image-embedding with --embeddings), or path and error when it cannot be read. "
    "The model loads once and a thread decodes the next images while one is classified. A "
    "progress bar goes to stderr when it is a terminal. Exit status 0 when every image was "
    "classified, 1 otherwise.",
    OPT_TEMPLATE | OPT_PIXELS | OPT_THREADS | OPT_NEGATIVE | OPT_LABELS | OPT_CROP,
    run_classify },
};

/* ------------------------------------------------------------------------------------------ */
/* Command line */

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: clip-infer COMMAND --model DIR [OPTION...] ARGS...\n\n"
           "CLIP zero-shot inference on the CPU. Prints JSON on stdout.\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-12s %s\n", commands[i].name, commands[i].params);
  fprintf (out, "\nRun 'clip-infer COMMAND --help' for a command's options.\n");
}

/* Positional-argument rules of each command; also turns --crop into args->crop. */
static gboolean
check_args (const InferCommand *cmd, InferArgs *args, GError **error)
{
  if (!args->model_dir) {
    g_set_error (error, INFER_USAGE_ERROR, 0, "--model DIR is required");
    return FALSE;
  }
  if (args->n_threads < 0) {
    g_set_error (error, INFER_USAGE_ERROR, 0, "--threads must be >= 0 (0 = every core), not %d",
                 args->n_threads);
    return FALSE;
  }
  if (args->max_length != 0 && args->max_length < 2) {
    g_set_error (error, INFER_USAGE_ERROR, 0,
                 "--max-length must be at least 2 (BOS and EOS), not %d", args->max_length);
    return FALSE;
  }
  if (args->template_ && !check_utf8 ("--template", args->template_, error))
    return FALSE;
  if (args->negative && !check_utf8 ("--negative", args->negative, error))
    return FALSE;
  if (args->labels && !check_utf8 ("--labels", args->labels, error))
    return FALSE;
  if (args->crop_name) {
    GError *local = NULL;

    /* a usage error: the message points at --help */
    if (!clip_crop_from_string (args->crop_name, &args->crop, &local)) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "--crop: %s", local->message);
      g_error_free (local);
      return FALSE;
    }
    if (args->pixels_path) {
      g_set_error (error, INFER_USAGE_ERROR, 0,
                   "--crop applies to an IMAGE; --pixels is already preprocessed");
      return FALSE;
    }
  }

  if (g_str_equal (cmd->name, "preprocess")) {
    if (!args->out_path) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "--out FILE is required");
      return FALSE;
    }
    if (args->n_args != 1) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "expected one IMAGE, got %d arguments",
                   args->n_args);
      return FALSE;
    }
  } else if (g_str_equal (cmd->name, "embed-image")) {
    if (args->n_args != (args->pixels_path ? 0 : 1)) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "expected either one IMAGE or --pixels FILE");
      return FALSE;
    }
  } else if (g_str_equal (cmd->name, "classify") && args->labels) {
    if (args->pixels_path) {
      g_set_error (error, INFER_USAGE_ERROR, 0,
                   "--labels takes image files, not --pixels (use the one-image form: "
                   "classify --pixels FILE LABEL...)");
      return FALSE;
    }
    if (args->n_args < 1) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "expected at least one IMAGE after --labels");
      return FALSE;
    }
    /* IMAGEs are paths: bytes, whatever their encoding */
    return TRUE;
  } else if (g_str_equal (cmd->name, "classify")) {
    if (args->n_args < (args->pixels_path ? 1 : 2)) {
      g_set_error (error, INFER_USAGE_ERROR, 0, "expected %s and at least one LABEL",
                   args->pixels_path ? "--pixels FILE" : "an IMAGE");
      return FALSE;
    }
  } else if (args->n_args < 1) {
    g_set_error (error, INFER_USAGE_ERROR, 0, "expected at least one TEXT");
    return FALSE;
  }

  /* Texts and labels reach the tokenizer and the JSON output. */
  if (!g_str_equal (cmd->name, "preprocess") && !g_str_equal (cmd->name, "embed-image")) {
    int first = g_str_equal (cmd->name, "classify") && !args->pixels_path ? 1 : 0;

    for (int i = first; i < args->n_args; i++) {
      char *what = g_strdup_printf ("argument %d", i + 1);
      gboolean valid = check_utf8 (what, args->args[i], error);

      g_free (what);
      if (!valid)
        return FALSE;
    }
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  const InferCommand *cmd = NULL;
  InferArgs args = { 0 };
  GOptionContext *context;
  GString *json = NULL;
  GError *error = NULL;
  int status = 1;

  if (argc < 2) {
    print_usage (stderr);
    return 1;
  }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")
      || g_str_equal (argv[1], "help")) {
    print_usage (stdout);
    return 0;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      cmd = &commands[i];
  if (!cmd) {
    fprintf (stderr, "clip-infer: unknown command '%s'\n\n", argv[1]);
    print_usage (stderr);
    return 1;
  }

  {
    /* Texts, labels and templates are FILENAME options: bytes, unconverted whatever the
     * locale; check_args checks their UTF-8. */
    GOptionEntry entries[] = {
      { "model", 'm', 0, G_OPTION_ARG_FILENAME, &args.model_dir,
        "HuggingFace CLIP checkpoint directory", "DIR" },
      { "threads", 't', 0, G_OPTION_ARG_INT, &args.n_threads,
        "Threads for the forward passes (default 0: every core)", "N" },
      { "precision", 0, 0, G_OPTION_ARG_STRING, &args.precision,
        "GEMM arithmetic: fp32 (default) or bf16 (AVX512_BF16 CPUs; fp32 with a warning "
        "elsewhere)", "P" },
      { "template", 0, 0, G_OPTION_ARG_FILENAME, &args.template_,
        "Prompt template: \"{}\" is replaced by the text. Several separated by \"|\" (\"\\|\" for "
        "a literal bar) make an ensemble; \"imagenet-80\" and \"imagenet-7\" name CLIP's "
        "ImageNet ensembles", "T" },
      { "negative", 0, 0, G_OPTION_ARG_FILENAME, &args.negative,
        "Negative (\"none of these\") labels, comma-separated (semicolons if there is one; "
        "\\, escapes), scored in the same softmax as the labels", "L1,L2" },
      { "labels", 'l', 0, G_OPTION_ARG_FILENAME, &args.labels,
        "Classify every IMAGE (directories, @lists) against these labels, one JSON line each",
        "L1,L2" },
      { "embeddings", 0, 0, G_OPTION_ARG_NONE, &args.embeddings,
        "Add image-embedding (the L2-normalised image embedding) to the output", NULL },
      { "pixels", 0, 0, G_OPTION_ARG_FILENAME, &args.pixels_path,
        "Preprocessed image: raw float32 little-endian [3, S, S]", "FILE" },
      { "out", 'o', 0, G_OPTION_ARG_FILENAME, &args.out_path, "Output file", "FILE" },
      { "max-length", 0, 0, G_OPTION_ARG_INT, &args.max_length,
        "Truncate to N ids, EOS kept last (default 77, CLIP's context)", "N" },
      { "crop", 0, 0, G_OPTION_ARG_STRING, &args.crop_name,
        "What of the image the model sees: center (default: HF's shortest-edge resize and "
        "centre crop), squash (the whole image resized to the crop size) or pad (the image "
        "padded to a square with the mean colour, then as center)", "POLICY" },
      { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &args.args, NULL, NULL },
      { NULL },
    };
    const guint needs[] = { 0, OPT_THREADS, OPT_THREADS, OPT_TEMPLATE, OPT_NEGATIVE,
                            OPT_LABELS, OPT_LABELS, OPT_PIXELS, OPT_OUT, OPT_MAX_LENGTH,
                            OPT_CROP, 0, 0 };
    GOptionEntry used[G_N_ELEMENTS (entries)];
    int n_used = 0;
    /* "clip-infer CMD" as the program name of --help and messages, then CMD's arguments */
    char *prgname = g_strdup_printf ("clip-infer %s", cmd->name);
    int cmd_argc = argc - 1;
    char **cmd_argv = g_new0 (char *, argc);
    gboolean parsed;

    /* --model and the positional arguments always; the rest where the command takes them. */
    for (gsize i = 0; i < G_N_ELEMENTS (entries); i++)
      if (needs[i] == 0 || (cmd->options & needs[i]))
        used[n_used++] = entries[i];

    cmd_argv[0] = prgname;
    for (int i = 2; i < argc; i++)
      cmd_argv[i - 1] = argv[i];
    g_set_prgname (prgname);

    context = g_option_context_new (cmd->params);
    g_option_context_set_summary (context, cmd->summary);
    g_option_context_add_main_entries (context, used, NULL);
    parsed = g_option_context_parse (context, &cmd_argc, &cmd_argv, &error);
    g_option_context_free (context);
    g_free (cmd_argv);
    g_free (prgname);
    if (!parsed) {
      fprintf (stderr, "clip-infer %s: %s\nRun 'clip-infer %s --help' for usage.\n", cmd->name,
               error->message, cmd->name);
      g_error_free (error);
      return 1;
    }
  }
  args.n_args = args.args ? g_strv_length (args.args) : 0;

  if (!check_args (cmd, &args, &error)) {
    fprintf (stderr, "clip-infer %s: %s\nRun 'clip-infer %s --help' for usage.\n", cmd->name,
             error->message, cmd->name);
    goto out;
  }

  /* The catalog form writes its lines as it goes and has its own exit status. */
  if (cmd->run == run_classify && args.labels) {
    ClipCatalogOptions options = {
      .model_dir = args.model_dir,
      .model_params = clip_model_params_default (),
      .n_threads = args.n_threads,
      .template_ = args.template_,
      .labels = args.labels,
      .negative = args.negative,
      .embeddings = args.embeddings,
      .progress = -1,
      .crop = args.crop,
    };

    if (args.precision
        && !clip_precision_from_string (args.precision, &options.model_params.precision,
                                        &error)) {
      fprintf (stderr, "clip-infer %s: %s\n", cmd->name, error->message);
      goto out;
    }
    status = clip_catalog_classify (&options, args.args, args.n_args, stdout);
    goto out;
  }

  json = g_string_new (NULL);
  if (!cmd->run (&args, json, &error)) {
    fprintf (stderr, "clip-infer %s: %s\n", cmd->name, error->message);
    goto out;
  }
  g_string_append_c (json, '\n');
  if (fwrite (json->str, 1, json->len, stdout) != json->len || fflush (stdout) != 0) {
    fprintf (stderr, "clip-infer %s: cannot write the result to stdout\n", cmd->name);
    goto out;
  }
  status = 0;

out:
  if (json)
    g_string_free (json, TRUE);
  g_clear_error (&error);
  g_free (args.model_dir);
  g_free (args.template_);
  g_free (args.negative);
  g_free (args.labels);
  g_free (args.precision);
  g_free (args.pixels_path);
  g_free (args.out_path);
  g_free (args.crop_name);
  g_strfreev (args.args);
  return status;
}
