/* ops.c — element-wise and row kernels of the forward pass.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* Runtime dispatch: one generic and one AVX2+FMA build of each loop, chosen once by the loader. */
#define CLIP_DISPATCH __attribute__ ((target_clones ("arch=haswell", "default")))
#else
#define CLIP_DISPATCH
#endif

#define CLIP_INLINE static inline __attribute__ ((always_inline))

/* exp(x) with a relative error of a few ulp, in a form the compiler vectorises (a libm expf call
 * per value costs tens of milliseconds per image): 2^n * p(r), x = n ln2 + r, |r| <= ln2/2. */
CLIP_INLINE float
fast_expf (float x)
{
  x = fminf (fmaxf (x, -87.0f), 88.0f);
  float n = floorf (x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { int32_t i; float f; } scale = { .i = ((int32_t) n + 127) << 23 };
  return p * scale.f;
}

CLIP_DISPATCH void
clip_layer_norm (float *out, const float *in, const float *weight, const float *bias,
                 int n_rows, int dim, float eps)
{
  for (int r = 0; r < n_rows; r++) {
    const float *x = in + (size_t) r * dim;
    float *y = out + (size_t) r * dim;
    /* Two passes over a row that sits in L1; float sums of 768 O(1) values are accurate to
     * ~1e-6 relative, well inside what the embeddings need. */
    float sum = 0.0f;
    for (int i = 0; i < dim; i++)
      sum += x[i];
    float mean = sum / dim;
    float sq = 0.0f;
    for (int i = 0; i < dim; i++) {
      float d = x[i] - mean;
      sq += d * d;
    }
    float inv_std = 1.0f / sqrtf (sq / dim + eps);
    for (int i = 0; i < dim; i++)
      y[i] = (x[i] - mean) * inv_std * weight[i] + bias[i];
  }
}

CLIP_DISPATCH void
clip_add_bias_scaled (float *x, int ld, int n_rows, int c0, int c1, const float *bias,
                      float scale)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    for (int c = c0; c < c1; c++)
      row[c] = (row[c] + bias[c]) * scale;
  }
}

CLIP_DISPATCH void
clip_bias_quick_gelu (float *x, int ld, int n_rows, int c0, int c1, const float *bias)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    for (int c = c0; c < c1; c++) {
      float v = row[c] + bias[c];
      row[c] = v / (1.0f + fast_expf (-1.702f * v));
    }
  }
}

void
clip_bias_gelu (float *x, int ld, int n_rows, int c0, int c1, const float *bias)
{
  /* The exact erf form, as HF's "gelu"; only small checkpoints use it, so libm's erff is fine. */
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    for (int c = c0; c < c1; c++) {
      float v = row[c] + bias[c];
      row[c] = 0.5f * v * (1.0f + erff (v * 0.70710678118654752f));
    }
  }
}

CLIP_DISPATCH void
clip_softmax_rows (float *x, int ld, int n_rows, int n_cols, int causal)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    int n = causal ? n_cols - (n_rows - 1 - r) : n_cols;
    float max = row[0];
    for (int c = 1; c < n; c++)
      max = fmaxf (max, row[c]);
    float sum = 0.0f;
    for (int c = 0; c < n; c++) {
      row[c] = fast_expf (row[c] - max);
      sum += row[c];
    }
    float inv = 1.0f / sum;
    for (int c = 0; c < n; c++)
      row[c] *= inv;
    for (int c = n; c < n_cols; c++)
      row[c] = 0.0f;
  }
}

void
clip_softmax (float *out, const float *in, int n)
{
  if (n <= 0)
    return;
  double max = in[0];
  for (int i = 1; i < n; i++)
    max = fmax (max, in[i]);
  double sum = 0.0;
  for (int i = 0; i < n; i++)
    sum += exp ((double) in[i] - max);
  for (int i = 0; i < n; i++)
    out[i] = (float) (exp ((double) in[i] - max) / sum);
}

void
clip_l2_normalize (float *x, int n)
{
  double sq = 0.0;
  for (int i = 0; i < n; i++)
    sq += (double) x[i] * x[i];
  if (sq <= 0.0)
    return;
  float inv = (float) (1.0 / sqrt (sq));
  for (int i = 0; i < n; i++)
    x[i] *= inv;
}
