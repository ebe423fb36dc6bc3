/* clip.h — CLIP zero-shot inference on the CPU (plain C11 + GLib; own AVX-512/AVX2 kernels, OpenBLAS elsewhere).
 *
 * Copyright (C) 2026 clipclassify developers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage:
 *
 *   GError *error = NULL;
 *   ClipModel *model = clip_model_load ("models/clip-vit-base-patch16", &error);
 *   if (!model) { g_printerr ("%s\n", error->message); ... }
 *   ClipContextParams params = clip_context_params_default ();
 *   params.n_threads = 2;
 *   ClipContext *ctx = clip_context_new (model, &params, &error);
 *
 *   int S = clip_model_get_image_size (model), D = clip_model_get_embedding_dim (model);
 *   float *pixels = g_new (float, 3 * S * S), *image = g_new (float, D);
 *   clip_preprocess_rgb8 (clip_model_get_preprocess_config (model), rgb, w, h, stride, pixels, &error);
 *   clip_embed_image (ctx, pixels, image, &error);
 *
 *   const char *prompts[] = { "a photo of a cat.", "a photo of a dog." };
 *   float *texts = g_new (float, 2 * D), logits[2], probs[2];
 *   clip_embed_text (ctx, prompts, 2, texts, &error);
 *   clip_score (model, image, texts, 2, logits, probs);
 *
 *   clip_context_free (ctx);
 *   clip_model_unref (model);
 *
 * Thread safety:
 * - A ClipModel is immutable once loaded; any number of threads and contexts may share it.
 *   clip_model_ref/unref are atomic.
 * - A ClipContext is a workspace plus a thread count: use one context from one thread at a time.
 *   Two contexts (in one thread each) run concurrently without disturbing each other: each runs
 *   exactly n_threads threads of its own and never changes OpenBLAS's process-wide settings.
 * - The tokenizer and the preprocessing functions are pure and thread-safe.
 *
 * Errors: calls that read files or user input return NULL/FALSE and set a GError in CLIP_ERROR
 * whose message names the file, tensor or field at fault. Forward passes fail only on input
 * they refuse (token ids) or when their workspace, sized by the model and the thread count,
 * cannot be allocated; they then write no output. Embeddings are always L2-normalised.
 */
#ifndef CLIP_H
#define CLIP_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define CLIP_ERROR (clip_error_quark ())
GQuark clip_error_quark (void);

typedef enum {
  CLIP_ERROR_NOT_FOUND,      /* a file or a required tensor/field is missing */
  CLIP_ERROR_IO,             /* a file exists but cannot be opened/read/mapped */
  CLIP_ERROR_CORRUPT,        /* malformed file: bad JSON, bad header, offsets out of range... */
  CLIP_ERROR_SHAPE,          /* a tensor's shape or dtype disagrees with config.json */
  CLIP_ERROR_UNSUPPORTED,    /* a valid but unsupported setting (dtype, activation...) */
  CLIP_ERROR_INVALID_ARGUMENT, /* bad user input: invalid UTF-8, bad template, bad size... */
  CLIP_ERROR_NO_MEMORY,      /* a forward pass's workspace could not be allocated */
} ClipError;

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer: CLIP byte-level BPE, as HF CLIPTokenizerFast. Immutable after load. */

typedef struct _ClipTokenizer ClipTokenizer;

/* vocab.json + merges.txt of a HuggingFace CLIP checkpoint. */
ClipTokenizer *clip_tokenizer_load (const char *vocab_json_path, const char *merges_txt_path,
                                    GError **error);
void clip_tokenizer_free (ClipTokenizer *tokenizer);

/* Encodes UTF-8 text to BOS, tokens..., EOS (unpadded). At most max_ids ids are written; longer
 * text is truncated keeping EOS last. Returns the number of ids written (>= 2), or -1 with an
 * error if text is not valid UTF-8 or max_ids < 2. */
int clip_tokenizer_encode (const ClipTokenizer *tokenizer, const char *text, int32_t *ids,
                           int max_ids, GError **error);

int32_t clip_tokenizer_get_bos_id (const ClipTokenizer *tokenizer);
int32_t clip_tokenizer_get_eos_id (const ClipTokenizer *tokenizer);
int clip_tokenizer_get_vocab_size (const ClipTokenizer *tokenizer);

/* ------------------------------------------------------------------------------------------ */
/* Preprocessing: CLIPImageProcessor with Pillow (BICUBIC shortest-edge resize, centre crop,
 * rescale, normalise), from interleaved RGB8 to a CHW float tensor. */

typedef struct {
  gboolean do_resize;
  int shortest_edge;         /* resize target of the shorter side (size / size.shortest_edge) */
  gboolean do_center_crop;
  int crop_height, crop_width;
  gboolean do_rescale;
  double rescale_factor;     /* 1/255 */
  gboolean do_normalize;
  float image_mean[3], image_std[3];
} ClipPreprocessConfig;

/* Output tensor size in floats: 3 * out_height * out_width, where the output is the crop size
 * when do_center_crop, else the resized size (which depends on the input aspect ratio). */
void clip_preprocess_output_size (const ClipPreprocessConfig *config, int width, int height,
                                  int *out_width, int *out_height);

/* rgb: height rows of width RGB triplets, rows stride bytes apart. out: 3*out_h*out_w floats,
 * channel-major (CHW). Fails only on bad arguments (zero size, stride too small). */
gboolean clip_preprocess_rgb8 (const ClipPreprocessConfig *config, const uint8_t *rgb, int width,
                               int height, int stride, float *out, GError **error);

/* Crop policy: what part of an image the model sees.
 * - CLIP_CROP_CENTER: HF's CLIPImageProcessor as configured (shortest edge resized, centre crop):
 *   exactly clip_preprocess_rgb8. A 16:9 frame loses its left and right 7/32.
 * - CLIP_CROP_SQUASH: the whole image resized straight to crop_height x crop_width with the same
 *   Pillow-exact bicubic filter (aspect ratio not kept), then rescale and normalise; no crop.
 *   Uses crop_size whatever do_center_crop and do_resize say.
 * - CLIP_CROP_PAD: the image placed on a square canvas of side max(w, h) at offset
 *   ((side - w) / 2, (side - h) / 2) (rounded down), the rest filled per channel with
 *   round(255 * image_mean) (Python's round: half to even, clamped to 0..255); then the
 *   configured processor, as CLIP_CROP_CENTER, on the canvas: nothing is cut off. */
typedef enum {
  CLIP_CROP_CENTER,
  CLIP_CROP_SQUASH,
  CLIP_CROP_PAD,
} ClipCrop;

/* "center" / "squash" / "pad" to a policy; FALSE with an error for anything else. */
gboolean clip_crop_from_string (const char *name, ClipCrop *crop, GError **error);
const char *clip_crop_name (ClipCrop crop);

/* clip_preprocess_output_size and clip_preprocess_rgb8 with a crop policy. CLIP_CROP_CENTER
 * gives exactly what those give. The padded canvas is never allocated whole: only the rows and
 * columns the resampler reads are materialised. */
void clip_preprocess_output_size_with_crop (const ClipPreprocessConfig *config, ClipCrop crop,
                                            int width, int height, int *out_width,
                                            int *out_height);
gboolean clip_preprocess_rgb8_with_crop (const ClipPreprocessConfig *config, ClipCrop crop,
                                         const uint8_t *rgb, int width, int height, int stride,
                                         float *out, GError **error);

/* Reads model_dir/preprocessor_config.json alone, for tools that preprocess images without
 * loading the weights. Absent fields (or an absent file) take CLIPImageProcessor's defaults. */
gboolean clip_preprocess_config_load_dir (const char *model_dir, ClipPreprocessConfig *config,
                                          GError **error);

/* ------------------------------------------------------------------------------------------ */
/* Model: a HuggingFace CLIPModel directory (config.json, model.safetensors, vocab.json,
 * merges.txt, preprocessor_config.json). Immutable and refcounted. */

typedef struct _ClipModel ClipModel;

/* Arithmetic of the GEMMs. bf16 packs the weights as bfloat16 and multiplies with AVX512_BF16's
 * vdpbf16ps, accumulating in fp32: about half the time and memory of fp32, at a cost in accuracy
 * README states (cosine of bf16 to fp32 embeddings). Without AVX512_BF16 (or with another ISA
 * forced) the model runs fp32 and clip_model_get_precision_note says why. */
typedef enum {
  CLIP_PRECISION_FP32,
  CLIP_PRECISION_BF16,
} ClipPrecision;

typedef struct {
  ClipPrecision precision;   /* default CLIP_PRECISION_FP32 */
} ClipModelParams;

ClipModelParams clip_model_params_default (void);
/* "fp32" / "bf16" to a precision; FALSE with an error for anything else. */
gboolean clip_precision_from_string (const char *name, ClipPrecision *precision, GError **error);
const char *clip_precision_name (ClipPrecision precision);

/* Loads with the default parameters. */
ClipModel *clip_model_load (const char *model_dir, GError **error);
/* The weights are packed at load for the kernels of this CPU (AVX-512F, AVX2+FMA, or OpenBLAS
 * where neither is present; CLIPCLASSIFY_ISA=avx512|avx2|blas forces one, and a path this CPU
 * cannot run is an error), in the precision asked for where the CPU has it. */
ClipModel *clip_model_load_with_params (const char *model_dir, const ClipModelParams *params,
                                        GError **error);
ClipModel *clip_model_ref (ClipModel *model);
void clip_model_unref (ClipModel *model);

const char *clip_model_get_path (const ClipModel *model);
/* Side of the square pixel tensor the image tower takes (vision_config.image_size). */
int clip_model_get_image_size (const ClipModel *model);
/* Length of an embedding (projection_dim). */
int clip_model_get_embedding_dim (const ClipModel *model);
/* Longest token sequence the text tower takes (text_config.max_position_embeddings). */
int clip_model_get_context_length (const ClipModel *model);
/* exp(logit_scale): the factor from cosine similarity to logits. */
float clip_model_get_logit_scale (const ClipModel *model);
const ClipTokenizer *clip_model_get_tokenizer (const ClipModel *model);
const ClipPreprocessConfig *clip_model_get_preprocess_config (const ClipModel *model);
/* Bytes of weights converted at load (f16/bf16 -> f32); 0 for an f32 checkpoint. */
size_t clip_model_get_converted_bytes (const ClipModel *model);
/* Bytes of the packed GEMM weights. */
size_t clip_model_get_packed_bytes (const ClipModel *model);
/* The kernel path the model was packed for: "avx512", "avx2" or "blas". */
const char *clip_model_get_isa (const ClipModel *model);
/* The precision the model runs in (fp32 when bf16 was asked for but is unavailable). */
ClipPrecision clip_model_get_precision (const ClipModel *model);
/* Why the precision asked for is not the one in use ("bf16 is unavailable: ..."), or NULL. */
const char *clip_model_get_precision_note (const ClipModel *model);

/* ------------------------------------------------------------------------------------------ */
/* Context: workspace and threads for forward passes. */

typedef struct _ClipContext ClipContext;

typedef struct {
  int n_threads;             /* 0 = every online core */
} ClipContextParams;

ClipContextParams clip_context_params_default (void);
ClipContext *clip_context_new (ClipModel *model, const ClipContextParams *params, GError **error);
void clip_context_free (ClipContext *ctx);
int clip_context_get_n_threads (const ClipContext *ctx);

/* The BLAS in use, e.g. "OpenBLAS 0.3.21 (OpenMP build), core Haswell", for logs and benchmarks. */
const char *clip_blas_describe (void);
/* A hint when OpenBLAS runs kernels far below what this CPU can do (Debian's 0.3.21 does not
 * recognise some recent CPUs and falls back to SSE3 "Prescott" kernels, 3-4x slower), naming
 * the OPENBLAS_CORETYPE setting that fixes it; NULL when all is well. */
const char *clip_blas_performance_hint (void);
ClipModel *clip_context_get_model (const ClipContext *ctx);

/* pixels: [3, S, S] as clip_preprocess_rgb8 writes it, S = clip_model_get_image_size.
 * embedding: clip_model_get_embedding_dim floats, L2-normalised. FALSE with
 * CLIP_ERROR_NO_MEMORY (embedding unwritten) when the workspace cannot be allocated. */
gboolean clip_embed_image (ClipContext *ctx, const float *pixels, float *embedding,
                           GError **error);

/* Most images clip_embed_images puts through the tower in one forward pass: a batch makes
 * every GEMM taller (fewer passes over the weights, fewer synchronisations) at about 8 MB of
 * workspace per image for ViT-B/16; more images run in several passes. */
#define CLIP_EMBED_IMAGES_BATCH 32

/* n_images tensors of [3, S, S] floats back to back (as clip_preprocess_rgb8 writes each) to
 * n_images L2-normalised embeddings of clip_model_get_embedding_dim floats, in batched forward
 * passes. Each embedding is the one clip_embed_image gives for its tensor alone (the same
 * arithmetic per row; the GEMMs and attention never mix images). FALSE with
 * CLIP_ERROR_NO_MEMORY when the batch's workspace cannot be allocated (earlier batches' outputs
 * are then written, later ones not). */
gboolean clip_embed_images (ClipContext *ctx, const float *pixels, int n_images,
                            float *embeddings, GError **error);

/* Token sequences as clip_tokenizer_encode writes them. Only the positions up to the pooled
 * (EOS) token are computed. embeddings: n_texts rows of clip_model_get_embedding_dim floats,
 * L2-normalised. FALSE, with embeddings unwritten, on CLIP_ERROR_INVALID_ARGUMENT (a text with
 * no ids or more than the context length, an id outside the vocabulary; checked before anything
 * is computed) or CLIP_ERROR_NO_MEMORY (the workspace cannot be allocated). */
gboolean clip_embed_tokens (ClipContext *ctx, const int32_t *const *ids, const int *n_ids,
                            int n_texts, float *embeddings, GError **error);

/* Tokenizes with the model's tokenizer, then clip_embed_tokens. Fails on invalid UTF-8 and as
 * clip_embed_tokens does. */
gboolean clip_embed_text (ClipContext *ctx, const char *const *texts, int n_texts,
                          float *embeddings, GError **error);

/* logits[i] = exp(logit_scale) * <image, text_i>; probs = softmax(logits). Either output may be
 * NULL. Embeddings must be L2-normalised (as the embed calls return them). */
void clip_score (const ClipModel *model, const float *image_embedding,
                 const float *text_embeddings, int n_labels, float *logits, float *probs);

/* ------------------------------------------------------------------------------------------ */
/* Prompts */

#define CLIP_DEFAULT_TEMPLATE "a photo of a {}."

/* Replaces every "{}" in template with label; a template without "{}" is refused. "{}" alone
 * uses the label verbatim. Returns a newly allocated string, or NULL with an error. */
char *clip_format_prompt (const char *template_, const char *label, GError **error);

/* ------------------------------------------------------------------------------------------ */
/* Label lists and prompt ensembles (src/scoring.c) */

/* Splits a label list: labels are separated by commas, or by semicolons when the text has an
 * unescaped one ("salt, pepper; dog" is two labels); a backslash escapes a separator or itself
 * ("\,", "\;", "\\"), any other backslash is kept. Labels are trimmed of surrounding whitespace;
 * empty labels and repeats of an earlier label are dropped. NULL gives an empty vector. */
char **clip_labels_split (const char *text);

/* Splits a negative-label list as clip_labels_split does, less every label that is also in
 * labels (NULL-terminated): a label cannot be both a label and a negative one. */
char **clip_negative_labels_split (const char *text, const char *const *labels);

/* The templates of a named set: "imagenet-80" (the 80 ImageNet templates of CLIP's prompt
 * engineering notebook) or "imagenet-7" (the 7 it selects from them); NULL for any other name. */
const char *const *clip_template_set (const char *name);

/* Parses a template value: one or more templates separated by "|" ("\|" is a literal bar), each
 * trimmed of surrounding whitespace, empty members ignored; a member that names a set
 * (clip_template_set) stands for its templates. Every template must contain "{}". NULL means
 * CLIP_DEFAULT_TEMPLATE. Returns a NULL-terminated vector of at least one template, or NULL with
 * an error. */
char **clip_templates_parse (const char *spec, GError **error);

/* The ensembled embedding of one label from the embeddings of its prompts (n_templates rows of
 * dim floats, each L2-normalised): the L2-normalised mean. One template gives its embedding
 * unchanged. out may be prompt_embeddings. */
void clip_ensemble_combine (const float *prompt_embeddings, int n_templates, int dim, float *out);

/* clip_embed_text in batches of a bounded size (the workspace grows with a batch's rows), for
 * any number of texts. */
gboolean clip_embed_text_batched (ClipContext *ctx, const char *const *texts, int n_texts,
                                  float *embeddings, GError **error);

/* The text embedding of each label under template_ (clip_templates_parse: one template, several
 * separated by "|", or a named set), ensembled over the templates (clip_ensemble_combine).
 * embeddings: n_labels rows of clip_model_get_embedding_dim floats, L2-normalised. */
gboolean clip_embed_labels (ClipContext *ctx, const char *template_, const char *const *labels,
                            int n_labels, float *embeddings, GError **error);

G_END_DECLS

#endif /* CLIP_H */
