/* ops.c — element-wise and row kernels of the forward pass.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ops.h"
#include "fastexp.h"
#include "gemm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CLIP_INLINE static inline __attribute__ ((always_inline))

/* Runtime dispatch: each hot loop is written once as an always-inline body and compiled twice,
 * for any x86-64 and for AVX2+FMA, and the variant is picked by what the CPU reports. (GCC's
 * target_clones("arch=haswell") would pick by CPU *model* and miss every newer CPU.) */
#if defined(__x86_64__) && defined(__GNUC__)
#define CLIP_DISPATCHED(name, params, args)                                                   \
  static __attribute__ ((target ("avx2,fma"))) void name##_avx2 params { name##_body args; }  \
  static void name##_generic params { name##_body args; }                                    \
  void name params                                                                            \
  {                                                                                           \
    if (clip_cpu_supports (CLIP_ISA_AVX2))                                                   \
      name##_avx2 args;                                                                       \
    else                                                                                      \
      name##_generic args;                                                                    \
  }
#else
#define CLIP_DISPATCHED(name, params, args)                                                   \
  void name params { name##_body args; }
#endif

/* exp(x) (fastexp.h) in a form the compiler vectorises (a libm expf call per value costs tens of
 * milliseconds per image) */
CLIP_INLINE float
fast_expf (float x)
{
  /* comparisons rather than fminf/fmaxf, whose NaN rules keep them out of vector code */
  x = x < CLIP_EXP_MIN ? CLIP_EXP_MIN : x;
  x = x > CLIP_EXP_MAX ? CLIP_EXP_MAX : x;
  /* round to nearest by adding and removing 1.5 * 2^23: no libm call, vectorises on SSE2 too */
  float n = (x * CLIP_EXP_LOG2E + 12582912.0f) - 12582912.0f;
  float r = x - n * CLIP_EXP_LN2_HI;
  r = r - n * CLIP_EXP_LN2_LO;
  float p = CLIP_EXP_P0;
  p = p * r + CLIP_EXP_P1;
  p = p * r + CLIP_EXP_P2;
  p = p * r + CLIP_EXP_P3;
  p = p * r + CLIP_EXP_P4;
  p = p * r + CLIP_EXP_P5;
  p = p * r * r + r + 1.0f;
  /* A NaN x (a damaged model's activations) gives a NaN p; n must not convert NaN to int (that
   * is undefined). The comparison vectorises as a blend. */
  n = n == n ? n : 0.0f;
  union { int32_t i; float f; } scale = { .i = ((int32_t) n + 127) << 23 };
  return p * scale.f;
}

/* sum of x[i] (or of (x[i] - center)^2 when squared) in 8 independent lanes */
CLIP_INLINE float
lane_sum (const float *x, int n, float center, int squared)
{
  float lanes[8] = { 0 };
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      float d = x[i + l] - center;
      lanes[l] += squared ? d * d : d;
    }
  float sum = 0.0f;
  for (; i < n; i++) {
    float d = x[i] - center;
    sum += squared ? d * d : d;
  }
  for (int l = 0; l < 8; l++)
    sum += lanes[l];
  return squared ? sum : sum + center * n;
}

CLIP_INLINE void
clip_layer_norm_body (float *out, size_t ld_out, const float *in, size_t ld_in,
                      const float *weight, const float *bias, int n_rows, int dim, float eps)
{
  for (int r = 0; r < n_rows; r++) {
    const float *x = in + r * ld_in;
    float *y = out + r * ld_out;
    /* Two passes over a row that sits in L1, each summing in 8 lanes so the compiler keeps the
     * sums in vector registers (a single float accumulator is a serial dependency chain). */
    float mean = lane_sum (x, dim, 0.0f, 0) / dim;
    float var = lane_sum (x, dim, mean, 1) / dim;
    float inv_std = 1.0f / sqrtf (var + eps);
    for (int i = 0; i < dim; i++)
      y[i] = (x[i] - mean) * inv_std * weight[i] + bias[i];
  }
}

CLIP_DISPATCHED (clip_layer_norm,
                 (float *out, size_t ld_out, const float *in, size_t ld_in, const float *weight, const float *bias, int n_rows, int dim, float eps),
                 (out, ld_out, in, ld_in, weight, bias, n_rows, dim, eps))

CLIP_INLINE void
clip_add_bias_scaled_body (float *x, int ld, int n_rows, int c0, int c1, const float *bias,
                      float scale)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    for (int c = c0; c < c1; c++)
      row[c] = (row[c] + bias[c]) * scale;
  }
}

CLIP_DISPATCHED (clip_add_bias_scaled,
                 (float *x, int ld, int n_rows, int c0, int c1, const float *bias, float scale),
                 (x, ld, n_rows, c0, c1, bias, scale))

CLIP_INLINE void
clip_bias_quick_gelu_body (float *x, int ld, int n_rows, int c0, int c1, const float *bias)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    if (bias != NULL)
      for (int c = c0; c < c1; c++)
        row[c] += bias[c];
    for (int c = c0; c < c1; c++) {
      float e = fast_expf (-CLIP_QUICK_GELU_ALPHA * row[c]);
      row[c] = row[c] / (1.0f + e);
    }
  }
}

CLIP_DISPATCHED (clip_bias_quick_gelu,
                 (float *x, int ld, int n_rows, int c0, int c1, const float *bias),
                 (x, ld, n_rows, c0, c1, bias))

void
clip_bias_gelu (float *x, int ld, int n_rows, int c0, int c1, const float *bias)
{
  /* The exact erf form, as HF's "gelu"; only small checkpoints use it, so libm's erff is fine. */
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    for (int c = c0; c < c1; c++) {
      float v = bias ? row[c] + bias[c] : row[c];
      row[c] = 0.5f * v * (1.0f + erff (v * 0.70710678118654752f));
    }
  }
}

CLIP_INLINE void
clip_softmax_rows_body (float *x, int ld, int n_rows, int n_cols, int causal)
{
  for (int r = 0; r < n_rows; r++) {
    float *row = x + (size_t) r * ld;
    int n = causal ? n_cols - (n_rows - 1 - r) : n_cols;
    /* separate passes so that each one vectorises: the max and the sum in 8 lanes, the
     * exponentials on their own */
    float lanes[8];
    for (int l = 0; l < 8; l++)
      lanes[l] = row[0];
    int c = 0;
    for (; c + 8 <= n; c += 8)
      for (int l = 0; l < 8; l++)
        lanes[l] = row[c + l] > lanes[l] ? row[c + l] : lanes[l];
    float max = row[0];
    for (; c < n; c++)
      max = row[c] > max ? row[c] : max;
    for (int l = 0; l < 8; l++)
      max = lanes[l] > max ? lanes[l] : max;
    for (c = 0; c < n; c++)
      row[c] = fast_expf (row[c] - max);
    float inv = 1.0f / lane_sum (row, n, 0.0f, 0);
    for (c = 0; c < n; c++)
      row[c] *= inv;
    for (c = n; c < n_cols; c++)
      row[c] = 0.0f;
  }
}

CLIP_DISPATCHED (clip_softmax_rows,
                 (float *x, int ld, int n_rows, int n_cols, int causal),
                 (x, ld, n_rows, n_cols, causal))

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
