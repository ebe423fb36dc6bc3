/* gemm-avx512.c — AVX-512F microkernels: 14 x 32 fp32 tiles, and bf16 tiles (vdpbf16ps, fp32
 * accumulation) where the CPU has AVX512_BF16. Built with -mavx512f -mfma; called only when the
 * CPU reports AVX-512F (gemm.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A tile keeps 14 rows x 2 vectors = 28 accumulators in registers (of 32), loads the two vectors
 * of the packed weight panel once per k and broadcasts each row's activation from its row-major
 * row: 28 FMAs per 16 loads, enough to keep two FMA pipes busy on every AVX-512 core seen here.
 * The whole depth is summed in registers, so the epilogue (bias, residual, quick_gelu) runs once
 * on the finished tile before it is stored.
 */
#include "gemm.h"

#include <immintrin.h>

#define MR 14
#define NR 32
#define PREFETCH_K 16

#define KERNEL_INLINE static inline __attribute__ ((always_inline))

/* exp(x), the same range reduction and polynomial as ops.c's fast_expf */
KERNEL_INLINE __m512
exp_ps (__m512 x)
{
  x = _mm512_max_ps (x, _mm512_set1_ps (-87.0f));
  x = _mm512_min_ps (x, _mm512_set1_ps (88.0f));
  __m512 n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps (n, _mm512_set1_ps (0.693359375f), x);
  r = _mm512_fnmadd_ps (n, _mm512_set1_ps (-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps (1.9875691500e-4f);
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.3981999507e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (8.3334519073e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (4.1665795894e-2f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.6666665459e-1f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (5.0000001201e-1f));
  p = _mm512_fmadd_ps (_mm512_mul_ps (p, r), r, _mm512_add_ps (r, _mm512_set1_ps (1.0f)));
  return _mm512_scalef_ps (p, n);
}

KERNEL_INLINE __m512
quick_gelu_ps (__m512 v)
{
  __m512 e = exp_ps (_mm512_mul_ps (v, _mm512_set1_ps (-1.702f)));
  return _mm512_div_ps (v, _mm512_add_ps (e, _mm512_set1_ps (1.0f)));
}

/* bias, epilogue and the store of a finished tile; columns past nc are neither read nor written */
KERNEL_INLINE void
store_tile (const ClipTile *t, const int mr, __m512 acc[MR][2])
{
  __mmask16 m0 = t->nc >= 16 ? 0xFFFF : (__mmask16) ((1u << t->nc) - 1);
  __mmask16 m1 = t->nc <= 16 ? 0 : t->nc >= 32 ? 0xFFFF : (__mmask16) ((1u << (t->nc - 16)) - 1);
  __m512 bias0 = _mm512_setzero_ps (), bias1 = _mm512_setzero_ps ();
  if (t->bias) {
    bias0 = _mm512_maskz_loadu_ps (m0, t->bias);
    bias1 = _mm512_maskz_loadu_ps (m1, t->bias + 16);
  }
#pragma GCC unroll 14
  for (int r = 0; r < mr; r++) {
    float *c = t->c + r * t->ldc;
    __m512 v0 = _mm512_add_ps (acc[r][0], bias0), v1 = _mm512_add_ps (acc[r][1], bias1);
    if (t->epilogue == CLIP_EPILOGUE_RESIDUAL) {
      v0 = _mm512_add_ps (v0, _mm512_maskz_loadu_ps (m0, c));
      v1 = _mm512_add_ps (v1, _mm512_maskz_loadu_ps (m1, c + 16));
    } else if (t->epilogue == CLIP_EPILOGUE_QUICK_GELU) {
      v0 = quick_gelu_ps (v0);
      v1 = quick_gelu_ps (v1);
    }
    _mm512_mask_storeu_ps (c, m0, v0);
    _mm512_mask_storeu_ps (c + 16, m1, v1);
  }
}

KERNEL_INLINE void
tile_f32_rows (const ClipTile *t, const int mr)
{
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int r = 0; r < mr; r++)
    acc[r][0] = acc[r][1] = _mm512_setzero_ps ();

  /* rows 3 apart share a base pointer and reach the other two through lda and 2 lda, so the
   * 14 row addresses need 5 registers, not 14 */
  const float *a = t->a;
  const size_t lda = t->lda;
  const float *b = t->b;
  for (int k = 0; k < t->k; k++, a++, b += NR) {
    _mm_prefetch ((const char *) (b + PREFETCH_K * NR), _MM_HINT_T0);
    _mm_prefetch ((const char *) (b + PREFETCH_K * NR + 16), _MM_HINT_T0);
    __m512 b0 = _mm512_loadu_ps (b), b1 = _mm512_loadu_ps (b + 16);
#pragma GCC unroll 14
    for (int r = 0; r < mr; r++) {
      const float *base = a + (r / 3) * 3 * lda;
      __m512 ar = _mm512_set1_ps (base[(r % 3) * lda]);
      acc[r][0] = _mm512_fmadd_ps (ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps (ar, b1, acc[r][1]);
    }
  }
  store_tile (t, mr, acc);
}

static void
tile_f32 (const ClipTile *t)
{
  switch (t->mr) {
#define CASE(m) case m: tile_f32_rows (t, m); break;
    CASE (1) CASE (2) CASE (3) CASE (4) CASE (5) CASE (6) CASE (7)
    CASE (8) CASE (9) CASE (10) CASE (11) CASE (12) CASE (13) CASE (14)
#undef CASE
  default:
    g_assert_not_reached ();
  }
}

/* bf16: a (k, k+1) pair of each row's activations is one 32-bit broadcast, and a panel vector
 * holds 16 columns x that pair, so one vdpbf16ps does two steps of the depth. */
#define BF16_TARGET __attribute__ ((target ("avx512f,avx512bf16")))

BF16_TARGET KERNEL_INLINE void
tile_bf16_rows (const ClipTile *t, const int mr)
{
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int r = 0; r < mr; r++)
    acc[r][0] = acc[r][1] = _mm512_setzero_ps ();

  const uint32_t *a = t->a;
  const size_t lda = t->lda;
  const uint16_t *b = t->b;
  const int n_pairs = (t->k + 1) / 2;
  for (int k = 0; k < n_pairs; k++, a++, b += 2 * NR) {
    __m512bh b0 = (__m512bh) _mm512_loadu_si512 (b), b1 = (__m512bh) _mm512_loadu_si512 (b + 32);
#pragma GCC unroll 14
    for (int r = 0; r < mr; r++) {
      const uint32_t *base = a + (r / 3) * 3 * lda;
      __m512bh ar = (__m512bh) _mm512_set1_epi32 ((int) base[(r % 3) * lda]);
      acc[r][0] = _mm512_dpbf16_ps (acc[r][0], ar, b0);
      acc[r][1] = _mm512_dpbf16_ps (acc[r][1], ar, b1);
    }
  }
  store_tile (t, mr, acc);
}

BF16_TARGET static void
tile_bf16 (const ClipTile *t)
{
  switch (t->mr) {
#define CASE(m) case m: tile_bf16_rows (t, m); break;
    CASE (1) CASE (2) CASE (3) CASE (4) CASE (5) CASE (6) CASE (7)
    CASE (8) CASE (9) CASE (10) CASE (11) CASE (12) CASE (13) CASE (14)
#undef CASE
  default:
    g_assert_not_reached ();
  }
}

const ClipKernels clip_kernels_avx512 = { MR, NR, tile_f32, tile_bf16 };
