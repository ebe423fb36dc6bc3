/* gemm-avx2.c — AVX2+FMA microkernels: 6 x 16 fp32 tiles. Built with -mavx2 -mfma; called only
 * when the CPU reports both (gemm.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * 6 rows x 2 vectors = 12 accumulators, two panel vectors and a broadcast: 15 of the 16 ymm
 * registers. The whole depth is summed in registers; the epilogue runs on the finished tile.
 */
#include "fastexp.h"
#include "gemm.h"

#include <immintrin.h>

#define MR 6
#define NR 16

#define KERNEL_INLINE static inline __attribute__ ((always_inline))

/* exp(x) as ops.c's fast_expf (fastexp.h) */
KERNEL_INLINE __m256
exp_ps (__m256 x)
{
  x = _mm256_max_ps (x, _mm256_set1_ps (CLIP_EXP_MIN));
  x = _mm256_min_ps (x, _mm256_set1_ps (CLIP_EXP_MAX));
  __m256 n = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (CLIP_EXP_LOG2E)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps (n, _mm256_set1_ps (CLIP_EXP_LN2_HI), x);
  r = _mm256_fnmadd_ps (n, _mm256_set1_ps (CLIP_EXP_LN2_LO), r);
  __m256 p = _mm256_set1_ps (CLIP_EXP_P0);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (CLIP_EXP_P1));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (CLIP_EXP_P2));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (CLIP_EXP_P3));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (CLIP_EXP_P4));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (CLIP_EXP_P5));
  p = _mm256_fmadd_ps (_mm256_mul_ps (p, r), r, _mm256_add_ps (r, _mm256_set1_ps (1.0f)));
  __m256i scale = _mm256_slli_epi32 (_mm256_add_epi32 (_mm256_cvtps_epi32 (n),
                                                       _mm256_set1_epi32 (127)), 23);
  return _mm256_mul_ps (p, _mm256_castsi256_ps (scale));
}

KERNEL_INLINE __m256
quick_gelu_ps (__m256 v)
{
  __m256 e = exp_ps (_mm256_mul_ps (v, _mm256_set1_ps (-CLIP_QUICK_GELU_ALPHA)));
  return _mm256_div_ps (v, _mm256_add_ps (e, _mm256_set1_ps (1.0f)));
}

/* lanes [0, n) of a vector of 8 */
KERNEL_INLINE __m256i
lane_mask (int n)
{
  return _mm256_cmpgt_epi32 (_mm256_set1_epi32 (n), _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
}

KERNEL_INLINE void
store_tile (const ClipTile *t, const int mr, __m256 acc[MR][2])
{
  __m256i m0 = lane_mask (t->nc), m1 = lane_mask (t->nc - 8);
  __m256 bias0 = _mm256_setzero_ps (), bias1 = _mm256_setzero_ps ();
  if (t->bias) {
    bias0 = _mm256_maskload_ps (t->bias, m0);
    bias1 = _mm256_maskload_ps (t->bias + 8, m1);
  }
#pragma GCC unroll 6
  for (int r = 0; r < mr; r++) {
    float *c = t->c + r * t->ldc;
    __m256 v0 = _mm256_add_ps (acc[r][0], bias0), v1 = _mm256_add_ps (acc[r][1], bias1);
    if (t->epilogue == CLIP_EPILOGUE_RESIDUAL) {
      v0 = _mm256_add_ps (v0, _mm256_maskload_ps (c, m0));
      v1 = _mm256_add_ps (v1, _mm256_maskload_ps (c + 8, m1));
    } else if (t->epilogue == CLIP_EPILOGUE_QUICK_GELU) {
      v0 = quick_gelu_ps (v0);
      v1 = quick_gelu_ps (v1);
    }
    _mm256_maskstore_ps (c, m0, v0);
    _mm256_maskstore_ps (c + 8, m1, v1);
  }
}

KERNEL_INLINE void
tile_f32_rows (const ClipTile *t, const int mr)
{
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < mr; r++)
    acc[r][0] = acc[r][1] = _mm256_setzero_ps ();

  const float *a = t->a;
  const size_t lda = t->lda;
  const float *b = t->b;
  for (int k = 0; k < t->k; k++, a++, b += NR) {
    __m256 b0 = _mm256_loadu_ps (b), b1 = _mm256_loadu_ps (b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
      __m256 ar = _mm256_broadcast_ss (a + r * lda);
      acc[r][0] = _mm256_fmadd_ps (ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps (ar, b1, acc[r][1]);
    }
  }
  store_tile (t, mr, acc);
}

static void
tile_f32 (const ClipTile *t)
{
  switch (t->mr) {
#define CASE(m) case m: tile_f32_rows (t, m); break;
    CASE (1) CASE (2) CASE (3) CASE (4) CASE (5) CASE (6)
#undef CASE
  default:
    g_assert_not_reached ();
  }
}

const ClipKernels clip_kernels_avx2 = { MR, NR, tile_f32, NULL, NULL };
