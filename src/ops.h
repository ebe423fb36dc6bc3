/* ops.h — element-wise and row kernels of the forward pass. Pure: no allocation, no threads.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hot loops are compiled twice (generic x86-64 and AVX2+FMA) and picked at run time from
 * what the CPU reports, so the shipped library runs on any x86-64 and uses AVX2 where the
 * CPU has it.
 */
#ifndef CLIP_OPS_H
#define CLIP_OPS_H

#include <stddef.h>

/* out[r] = (in[r] - mean) / sqrt(var + eps) * weight + bias, for n_rows rows of dim values,
 * ld_out and ld_in floats apart. */
void clip_layer_norm (float *out, size_t ld_out, const float *in, size_t ld_in,
                      const float *weight, const float *bias, int n_rows, int dim, float eps);

/* x[r, c0..c1) += bias[c0..c1) over n_rows rows of stride ld, then multiplied by scale. */
void clip_add_bias_scaled (float *x, int ld, int n_rows, int c0, int c1, const float *bias,
                           float scale);

/* x = act(x + bias) over columns [c0, c1) of n_rows rows of stride ld (bias may be NULL). */
void clip_bias_quick_gelu (float *x, int ld, int n_rows, int c0, int c1, const float *bias);
void clip_bias_gelu (float *x, int ld, int n_rows, int c0, int c1, const float *bias);

/* Softmax of each row of an n_rows x n_cols matrix (stride ld) over its first
 * n_cols - (causal ? n_rows - 1 - r : 0) entries; masked entries are set to 0. */
void clip_softmax_rows (float *x, int ld, int n_rows, int n_cols, int causal);

/* Softmax of n values into out (double accumulation: used for label probabilities). */
void clip_softmax (float *out, const float *in, int n);

/* Scales x to unit L2 norm (left as is when its norm is 0). */
void clip_l2_normalize (float *x, int n);

#endif /* CLIP_OPS_H */
