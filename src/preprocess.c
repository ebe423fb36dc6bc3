/* preprocess.c — HF CLIPImageProcessor (the Pillow-based one), RGB8 -> CHW float.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The pipeline is HF's: resize the shortest edge with Pillow's Image.resize (BICUBIC,
 * reducing_gap=None), centre-crop (zero-padding an image smaller than the crop), rescale, then
 * normalise. The resize reproduces Pillow's separable resampler to the bit: the same bicubic
 * kernel (a = -0.5) widened by the downscale factor, the same coefficient rounding to 22-bit
 * fixed point, a horizontal pass then a vertical one, each rounding and clamping to 8 bits.
 * A pass over an unchanged dimension is skipped, as Pillow does (it would be the identity).
 *
 * Only the pixels that survive the crop are computed: every resized pixel depends on its own
 * coefficients alone, so computing a window of the resized image gives the same values as
 * resizing everything and cropping afterwards.
 *
 * Crop policies (ClipCrop) change only what is resized to what: `squash` resizes the whole image
 * to the crop size, `pad` resizes a square canvas the image sits on. The canvas is virtual: the
 * copies the resampler makes of its input window anyway (the transposition, or a window copy
 * when no horizontal pass runs) write the fill colour where the canvas has no image, so padding
 * costs no canvas-sized allocation of its own.
 */
#include "clip-private.h"

#include <math.h>
#include <string.h>

/* Pillow's 8-bit resampler: 32-bit accumulators, 8 bits of result, 2 bits of headroom for the
 * kernel's negative lobes (coefficient sums can leave [0, 1] mid-way). */
#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0

/* The resampling kernel is integer arithmetic, exact at any vector width; where the toolchain
 * can dispatch at run time, also build it for AVX2 (8 x 32-bit multiplies per instruction
 * instead of SSE2's emulated ones): about twice as fast. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
/* (not under ThreadSanitizer: the clones' resolver runs while the program is relocated, before
 * the ThreadSanitizer runtime is initialised, and its instrumentation crashes there) */
#if __has_attribute (target_clones) && defined(__gnu_linux__) && !defined(__SANITIZE_THREAD__)
#define CLIP_VECTOR_CLONES __attribute__ ((target_clones ("avx2", "default")))
#endif
#endif
#ifndef CLIP_VECTOR_CLONES
#define CLIP_VECTOR_CLONES
#endif

/* Coefficients of one resampling pass, restricted to a window of output positions. */
typedef struct {
  int ksize;                 /* stride between the coefficient rows of two outputs */
  int *first;                /* per output: first input index used */
  int *count;                /* per output: number of input indices used */
  int32_t *coeffs;           /* per output: ksize fixed-point weights (count of them used) */
} ClipResamplePlan;

static double
bicubic (double x)
{
  const double a = -0.5;

  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0)
    return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

static inline uint8_t
clamp8 (int32_t acc)
{
  /* Arithmetic shift, as Pillow's table lookup on (acc >> PRECISION_BITS). */
  int32_t v = acc >> PRECISION_BITS;

  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t) v;
}

/* Coefficients for outputs [out_first, out_first + n_out) of a resize from in_size to out_size.
 * The arithmetic (double precision, rounding, normalisation) is Pillow's, so the fixed-point
 * weights come out identical. */
static void
resample_plan_init (ClipResamplePlan *plan, int in_size, int out_size, int out_first, int n_out)
{
  double scale = (double) in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = BICUBIC_SUPPORT * filterscale;
  /* Pillow multiplies by the reciprocal rather than dividing: the two can differ in the last
   * bit, which can move a fixed-point weight. */
  double inv_filterscale = 1.0 / filterscale;
  double *weights;

  plan->ksize = (int) ceil (support) * 2 + 1;
  plan->first = g_new (int, n_out);
  plan->count = g_new (int, n_out);
  plan->coeffs = g_new0 (int32_t, (gsize) n_out * plan->ksize);
  weights = g_new (double, plan->ksize);

  for (int i = 0; i < n_out; i++) {
    double center = (out_first + i + 0.5) * scale;
    double sum = 0.0;
    int32_t *k = plan->coeffs + (gsize) i * plan->ksize;
    /* (int) truncates toward zero like Pillow's "round the value" casts */
    int lo = (int) (center - support + 0.5);
    int hi = (int) (center + support + 0.5);
    int n;

    if (lo < 0)
      lo = 0;
    if (hi > in_size)
      hi = in_size;
    n = hi - lo;

    for (int j = 0; j < n; j++) {
      weights[j] = bicubic ((j + lo - center + 0.5) * inv_filterscale);
      sum += weights[j];
    }
    for (int j = 0; j < n; j++) {
      double w = sum != 0.0 ? weights[j] / sum : weights[j];

      k[j] = (int32_t) (w < 0 ? -0.5 + w * (1 << PRECISION_BITS)
                              : 0.5 + w * (1 << PRECISION_BITS));
    }
    plan->first[i] = lo;
    plan->count[i] = n;
  }
  g_free (weights);
}

static void
resample_plan_clear (ClipResamplePlan *plan)
{
  g_free (plan->first);
  g_free (plan->count);
  g_free (plan->coeffs);
}

/* The kernel of both passes: out[i] = clamp8 (sum_j k[j] * in[j * in_stride + i]) for i < n,
 * i.e. n independent lanes that each combine the same taps. Written so that the compiler
 * vectorises the inner loop. */
CLIP_VECTOR_CLONES static void
resample_lanes (const int32_t *restrict k, int taps, const uint8_t *restrict in, gsize in_stride,
                int n, int32_t *restrict acc, uint8_t *restrict out)
{
  for (int i = 0; i < n; i++)
    acc[i] = 1 << (PRECISION_BITS - 1);     /* rounds the final shift to nearest */
  for (int j = 0; j < taps; j++, in += in_stride) {
    int32_t kj = k[j];

    for (int i = 0; i < n; i++)
      acc[i] += in[i] * kj;
  }
  for (int i = 0; i < n; i++)
    out[i] = clamp8 (acc[i]);
}

/* dst row x = column x of src, for n_rows x n_cols RGB pixels: the horizontal pass runs on the
 * transposed image so that it, too, combines whole rows (vectorisable) instead of gathering
 * a few pixels per output. */
static void
transpose_rgb8 (const uint8_t *src, gsize src_stride, int n_rows, int n_cols, uint8_t *dst,
                gsize dst_stride)
{
  const int tile = 32;

  for (int y0 = 0; y0 < n_rows; y0 += tile) {
    for (int x0 = 0; x0 < n_cols; x0 += tile) {
      int y1 = MIN (y0 + tile, n_rows), x1 = MIN (x0 + tile, n_cols);

      for (int y = y0; y < y1; y++) {
        const uint8_t *s = src + (gsize) y * src_stride;

        for (int x = x0; x < x1; x++) {
          uint8_t *d = dst + (gsize) x * dst_stride + (gsize) y * 3;

          d[0] = s[3 * x + 0];
          d[1] = s[3 * x + 1];
          d[2] = s[3 * x + 2];
        }
      }
    }
  }
}

/* The image on the canvas the resampler reads: canvas pixel (x, y) is image pixel
 * (x - left, y - top) where that lies inside the image, else the fill colour. Without padding the
 * canvas is the image itself (left = top = 0, same size). */
typedef struct {
  const uint8_t *rgb;
  int width, height;         /* the image */
  gsize stride;
  int left, top;             /* where the image sits on the canvas */
  int canvas_width, canvas_height;
  uint8_t fill[3];
} ClipCanvas;

static const uint8_t *
canvas_pixel (const ClipCanvas *canvas, int x, int y)
{
  return canvas->rgb + (gsize) (y - canvas->top) * canvas->stride + (gsize) (x - canvas->left) * 3;
}

static gboolean
canvas_window_is_image (const ClipCanvas *canvas, int x0, int y0, int n_cols, int n_rows)
{
  return x0 >= canvas->left && y0 >= canvas->top
      && x0 + n_cols <= canvas->left + canvas->width && y0 + n_rows <= canvas->top + canvas->height;
}

/* Copies the canvas window of n_cols x n_rows pixels at (x0, y0) to dst, transposed (dst row i =
 * window column i) when transpose is set. Where the window leaves the image the fill colour is
 * written first, then the part that is image is copied over it. */
static void
canvas_copy (const ClipCanvas *canvas, int x0, int y0, int n_cols, int n_rows, uint8_t *dst,
             gsize dst_stride, gboolean transpose)
{
  int ix0 = MAX (x0, canvas->left), iy0 = MAX (y0, canvas->top);
  int ix1 = MIN (x0 + n_cols, canvas->left + canvas->width);
  int iy1 = MIN (y0 + n_rows, canvas->top + canvas->height);
  int lines = transpose ? n_cols : n_rows, per_line = transpose ? n_rows : n_cols;
  uint8_t *corner;

  if (!canvas_window_is_image (canvas, x0, y0, n_cols, n_rows)) {
    for (int i = 0; i < lines; i++) {
      uint8_t *d = dst + (gsize) i * dst_stride;

      for (int j = 0; j < per_line; j++)
        memcpy (d + 3 * j, canvas->fill, 3);
    }
  }
  if (ix0 >= ix1 || iy0 >= iy1)
    return;
  corner = transpose ? dst + (gsize) (ix0 - x0) * dst_stride + (gsize) (iy0 - y0) * 3
                     : dst + (gsize) (iy0 - y0) * dst_stride + (gsize) (ix0 - x0) * 3;
  if (transpose) {
    transpose_rgb8 (canvas_pixel (canvas, ix0, iy0), canvas->stride, iy1 - iy0, ix1 - ix0,
                    corner, dst_stride);
  } else {
    for (int y = iy0; y < iy1; y++)
      memcpy (corner + (gsize) (y - iy0) * dst_stride, canvas_pixel (canvas, ix0, y),
              (gsize) (ix1 - ix0) * 3);
  }
}

static gboolean
check_config (const ClipPreprocessConfig *config, GError **error)
{
  if (config->do_resize && config->shortest_edge <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess config: shortest_edge must be positive when do_resize is set "
                 "(got %d)", config->shortest_edge);
    return FALSE;
  }
  if (config->do_center_crop && (config->crop_width <= 0 || config->crop_height <= 0)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess config: crop size must be positive when do_center_crop is set "
                 "(got %dx%d)", config->crop_width, config->crop_height);
    return FALSE;
  }
  if (config->do_normalize) {
    for (int c = 0; c < 3; c++) {
      if (config->image_std[c] == 0.0f) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                     "preprocess config: image_std[%d] is zero", c);
        return FALSE;
      }
    }
  }
  return TRUE;
}

/* HF get_resize_output_image_size (default_to_square=False): the short side becomes
 * shortest_edge and the long side int(shortest_edge * long / short). Python's true division of
 * two exact integers is correctly rounded, as is the double division here. FALSE if the result
 * does not fit an int. */
static gboolean
resized_size (const ClipPreprocessConfig *config, int width, int height, int *rw, int *rh)
{
  int64_t se = config->shortest_edge;
  int shorter = MIN (width, height), longer = MAX (width, height);
  double l;

  if (!config->do_resize) {
    *rw = width;
    *rh = height;
    return TRUE;
  }
  l = (double) (se * longer) / shorter;
  if (l >= G_MAXINT)
    return FALSE;
  if (width <= height) {
    *rw = (int) se;
    *rh = (int) l;
  } else {
    *rw = (int) l;
    *rh = (int) se;
  }
  return TRUE;
}

gboolean
clip_crop_from_string (const char *name, ClipCrop *crop, GError **error)
{
  g_return_val_if_fail (crop != NULL, FALSE);

  if (g_strcmp0 (name, "center") == 0)
    *crop = CLIP_CROP_CENTER;
  else if (g_strcmp0 (name, "squash") == 0)
    *crop = CLIP_CROP_SQUASH;
  else if (g_strcmp0 (name, "pad") == 0)
    *crop = CLIP_CROP_PAD;
  else {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "unknown crop policy \"%s\" (expected center, squash or pad)",
                 name ? name : "(null)");
    return FALSE;
  }
  return TRUE;
}

const char *
clip_crop_name (ClipCrop crop)
{
  switch (crop) {
    case CLIP_CROP_CENTER:
      return "center";
    case CLIP_CROP_SQUASH:
      return "squash";
    case CLIP_CROP_PAD:
      return "pad";
  }
  return "unknown";
}

/* What the resampler does for a crop policy: the canvas (the image, or the padded square) is
 * resized to rw x rh, then centre-cropped to out_w x out_h when crop is set (else out = the
 * resized size). FALSE with an error when the sizes are unusable. */
typedef struct {
  int rw, rh;
  gboolean crop;
  int out_w, out_h;
} ClipResizePlan;

/* The side of pad's square canvas and the image's offset on it. */
static void
pad_geometry (int width, int height, int *side, int *left, int *top)
{
  *side = MAX (width, height);
  *left = (*side - width) / 2;
  *top = (*side - height) / 2;
}

static gboolean
resize_plan (const ClipPreprocessConfig *config, ClipCrop crop, int width, int height,
             ClipResizePlan *plan, GError **error)
{
  if (crop == CLIP_CROP_SQUASH) {
    if (config->crop_width <= 0 || config->crop_height <= 0) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                   "preprocess config: the squash crop policy needs a positive crop size "
                   "(got %dx%d)", config->crop_width, config->crop_height);
      return FALSE;
    }
    plan->rw = plan->out_w = config->crop_width;
    plan->rh = plan->out_h = config->crop_height;
    plan->crop = FALSE;
    return TRUE;
  }
  if (crop == CLIP_CROP_PAD) {
    int left, top;

    pad_geometry (width, height, &width, &left, &top);
    height = width;
  }
  if (!resized_size (config, width, height, &plan->rw, &plan->rh)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess: resizing %dx%d to a shortest edge of %d is too large",
                 width, height, config->shortest_edge);
    return FALSE;
  }
  plan->crop = config->do_center_crop;
  plan->out_w = plan->crop ? config->crop_width : plan->rw;
  plan->out_h = plan->crop ? config->crop_height : plan->rh;
  return TRUE;
}

void
clip_preprocess_output_size_with_crop (const ClipPreprocessConfig *config, ClipCrop crop,
                                       int width, int height, int *out_width, int *out_height)
{
  ClipResizePlan plan;

  g_return_if_fail (config != NULL && out_width != NULL && out_height != NULL);

  /* The crop size does not depend on the input (and is reported as configured, as before);
   * without a crop the resized size does. */
  if (crop == CLIP_CROP_SQUASH || config->do_center_crop) {
    *out_width = config->crop_width;
    *out_height = config->crop_height;
    return;
  }
  if (width <= 0 || height <= 0 || !resize_plan (config, crop, width, height, &plan, NULL)) {
    *out_width = *out_height = 0;
    return;
  }
  *out_width = plan.out_w;
  *out_height = plan.out_h;
}

void
clip_preprocess_output_size (const ClipPreprocessConfig *config, int width, int height,
                             int *out_width, int *out_height)
{
  clip_preprocess_output_size_with_crop (config, CLIP_CROP_CENTER, width, height, out_width,
                                         out_height);
}

/* Centre crop along one axis, as HF's center_crop: a resized extent of `size` cropped to `crop`
 * gives `n` pixels taken from resized position `src` and written at output position `dst`;
 * the rest of the output is zero padding (only when size < crop). */
static void
crop_axis (int size, int crop, int *src, int *dst, int *n)
{
  if (size >= crop) {
    *src = (size - crop) / 2;
    *dst = 0;
    *n = crop;
  } else {
    *src = 0;
    *dst = (crop - size + 1) / 2;  /* ceil ((crop - size) / 2) */
    *n = size;
  }
}

/* The resampler proper: canvas resized and cropped as plan says, rescaled and normalised into
 * out. */
static void
preprocess_canvas (const ClipPreprocessConfig *config, const ClipCanvas *canvas,
                   const ClipResizePlan *plan, float *out)
{
  ClipResamplePlan hplan = { 0 }, vplan = { 0 };
  float lut[3][256];
  int width = canvas->canvas_width, height = canvas->canvas_height;
  int rw = plan->rw, rh = plan->rh, out_w = plan->out_w, out_h = plan->out_h;
  int src_x, dst_x, n_x, src_y, dst_y, n_y;
  gboolean need_h, need_v;
  int row_first = 0, n_rows = 0;
  uint8_t *tbuf = NULL, *htbuf = NULL, *hbuf = NULL, *row = NULL, *wbuf = NULL;
  int32_t *acc = NULL;
  const uint8_t *vin;        /* input of the vertical pass: n_rows rows of n_x pixels... */
  gsize vin_stride;          /* ...this many bytes apart */

  if (plan->crop) {
    crop_axis (rw, out_w, &src_x, &dst_x, &n_x);
    crop_axis (rh, out_h, &src_y, &dst_y, &n_y);
  } else {
    src_x = dst_x = src_y = dst_y = 0;
    n_x = rw;
    n_y = rh;
  }

  /* HF: rescale in float64 then cast to float32; normalise in float32. A table per channel
   * keeps the arithmetic (and thus the rounding) exactly that, once per grey level. */
  for (int c = 0; c < 3; c++) {
    for (int v = 0; v < 256; v++) {
      float x = config->do_rescale ? (float) (v * config->rescale_factor) : (float) v;

      if (config->do_normalize)
        x = (x - config->image_mean[c]) / config->image_std[c];
      lut[c][v] = x;
    }
  }

  need_h = rw != width;
  need_v = rh != height;

  /* Horizontal pass over the source rows the vertical pass will read. */
  if (need_v) {
    resample_plan_init (&vplan, height, rh, src_y, n_y);
    row_first = vplan.first[0];
    n_rows = vplan.first[n_y - 1] + vplan.count[n_y - 1] - row_first;
  } else {
    row_first = src_y;
    n_rows = n_y;
  }
  if (need_h) {
    /* Transpose the source columns the plan reads, resample whole transposed rows, and
     * transpose the result back. */
    int col_first, n_cols;
    gsize t_stride = (gsize) n_rows * 3;

    resample_plan_init (&hplan, width, rw, src_x, n_x);
    col_first = hplan.first[0];
    n_cols = hplan.first[n_x - 1] + hplan.count[n_x - 1] - col_first;
    tbuf = g_malloc ((gsize) n_cols * t_stride);
    htbuf = g_malloc ((gsize) n_x * t_stride);
    hbuf = g_malloc ((gsize) n_rows * n_x * 3);
    acc = g_new (int32_t, MAX (t_stride, (gsize) n_x * 3));

    canvas_copy (canvas, col_first, row_first, n_cols, n_rows, tbuf, t_stride, TRUE);
    for (int x = 0; x < n_x; x++)
      resample_lanes (hplan.coeffs + (gsize) x * hplan.ksize, hplan.count[x],
                      tbuf + (gsize) (hplan.first[x] - col_first) * t_stride, t_stride,
                      (int) t_stride, acc, htbuf + (gsize) x * t_stride);
    transpose_rgb8 (htbuf, t_stride, n_x, n_rows, hbuf, (gsize) n_x * 3);
    vin = hbuf;
    vin_stride = (gsize) n_x * 3;
  } else if (canvas_window_is_image (canvas, src_x, row_first, n_x, n_rows)) {
    vin = canvas_pixel (canvas, src_x, row_first);
    vin_stride = canvas->stride;
  } else {
    /* pad without a horizontal pass (the canvas is already as wide as the resize asks) */
    vin_stride = (gsize) n_x * 3;
    wbuf = g_malloc ((gsize) n_rows * vin_stride);
    canvas_copy (canvas, src_x, row_first, n_x, n_rows, wbuf, vin_stride, FALSE);
    vin = wbuf;
  }

  /* Padding (an image smaller than the crop) is a zero pixel before rescale/normalise. */
  if (n_x < out_w || n_y < out_h) {
    for (int c = 0; c < 3; c++) {
      float pad = lut[c][0];
      float *plane = out + (gsize) c * out_w * out_h;

      for (gsize i = 0; i < (gsize) out_w * out_h; i++)
        plane[i] = pad;
    }
  }

  /* Vertical pass, one output row at a time, straight into the CHW planes. */
  if (need_v) {
    row = g_malloc ((gsize) n_x * 3);
    if (!acc)
      acc = g_new (int32_t, (gsize) n_x * 3);
  }
  for (int y = 0; y < n_y; y++) {
    const uint8_t *src_row;
    gsize plane = (gsize) out_w * out_h;
    float *o = out + (gsize) (dst_y + y) * out_w + dst_x;

    if (need_v) {
      resample_lanes (vplan.coeffs + (gsize) y * vplan.ksize, vplan.count[y],
                      vin + (gsize) (vplan.first[y] - row_first) * vin_stride, vin_stride,
                      n_x * 3, acc, row);
      src_row = row;
    } else {
      src_row = vin + (gsize) y * vin_stride;
    }

    for (int x = 0; x < n_x; x++) {
      o[x] = lut[0][src_row[3 * x + 0]];
      o[plane + x] = lut[1][src_row[3 * x + 1]];
      o[2 * plane + x] = lut[2][src_row[3 * x + 2]];
    }
  }

  g_free (acc);
  g_free (row);
  g_free (wbuf);
  g_free (hbuf);
  g_free (htbuf);
  g_free (tbuf);
  resample_plan_clear (&hplan);
  resample_plan_clear (&vplan);
}

/* pad's fill: round(255 * mean) as Python rounds (half to even: nearbyint in the default
 * rounding mode), clamped to a grey level. */
static uint8_t
pad_fill (float mean)
{
  double v = nearbyint (255.0 * (double) mean);

  return (uint8_t) (v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
}

gboolean
clip_preprocess_rgb8_with_crop (const ClipPreprocessConfig *config, ClipCrop crop,
                                const uint8_t *rgb, int width, int height, int stride,
                                float *out, GError **error)
{
  ClipCanvas canvas = { 0 };
  ClipResizePlan plan;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (rgb != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (crop != CLIP_CROP_CENTER && crop != CLIP_CROP_SQUASH && crop != CLIP_CROP_PAD) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess: unknown crop policy %d", (int) crop);
    return FALSE;
  }
  if (width <= 0 || height <= 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess: image size %dx%d is empty", width, height);
    return FALSE;
  }
  if (stride / 3 < width) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
                 "preprocess: stride %d is too small for %d RGB pixels (needs %d bytes)",
                 stride, width, 3 * width);
    return FALSE;
  }
  if (!check_config (config, error))
    return FALSE;
  if (!resize_plan (config, crop, width, height, &plan, error))
    return FALSE;

  canvas.rgb = rgb;
  canvas.width = width;
  canvas.height = height;
  canvas.stride = (gsize) stride;
  canvas.canvas_width = width;
  canvas.canvas_height = height;
  if (crop == CLIP_CROP_PAD) {
    int side;

    pad_geometry (width, height, &side, &canvas.left, &canvas.top);
    canvas.canvas_width = canvas.canvas_height = side;
    for (int c = 0; c < 3; c++)
      canvas.fill[c] = pad_fill (config->image_mean[c]);
  }
  preprocess_canvas (config, &canvas, &plan, out);
  return TRUE;
}

gboolean
clip_preprocess_rgb8 (const ClipPreprocessConfig *config, const uint8_t *rgb, int width,
                      int height, int stride, float *out, GError **error)
{
  return clip_preprocess_rgb8_with_crop (config, CLIP_CROP_CENTER, rgb, width, height, stride,
                                         out, error);
}

gboolean
clip_preprocess_config_load_dir (const char *model_dir, ClipPreprocessConfig *config,
                                 GError **error)
{
  char *path;
  gboolean ok;

  g_return_val_if_fail (model_dir != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);

  path = g_build_filename (model_dir, "preprocessor_config.json", NULL);
  ok = clip_preprocess_config_load (path, config, error);
  g_free (path);
  return ok;
}
