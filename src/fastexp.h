/* fastexp.h — the constants of the engine's exp(x): ops.c's scalar fast_expf and the kernels'
 * vector versions (gemm-avx2.c, gemm-avx512.c) compute the same function with them. Not
 * installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * exp(x) = 2^n p(r) with x = n ln2 + r, |r| <= ln2/2: ln2 split in two parts so that n ln2 is
 * exact to float precision, and a degree-7 polynomial good to a few ulp (Cephes' expf).
 */
#ifndef CLIP_FASTEXP_H
#define CLIP_FASTEXP_H

#define CLIP_EXP_MIN (-87.0f)            /* inputs are clamped to [MIN, MAX]: 2^n stays normal */
#define CLIP_EXP_MAX 88.0f
#define CLIP_EXP_LOG2E 1.44269504088896341f
#define CLIP_EXP_LN2_HI 0.693359375f
#define CLIP_EXP_LN2_LO (-2.12194440e-4f)
#define CLIP_EXP_P0 1.9875691500e-4f     /* p(r) = 1 + r + r^2 (P5 + r (P4 + ... r P0)) */
#define CLIP_EXP_P1 1.3981999507e-3f
#define CLIP_EXP_P2 8.3334519073e-3f
#define CLIP_EXP_P3 4.1665795894e-2f
#define CLIP_EXP_P4 1.6666665459e-1f
#define CLIP_EXP_P5 5.0000001201e-1f

/* quick_gelu(x) = x sigmoid(QUICK_GELU_ALPHA x), as HF's QuickGELUActivation */
#define CLIP_QUICK_GELU_ALPHA 1.702f

#endif /* CLIP_FASTEXP_H */
