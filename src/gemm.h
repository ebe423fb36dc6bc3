/* gemm.h — the engine's GEMM layer: weights packed once at load, microkernels per ISA, the
 * epilogue fused into the kernels' output pass. Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every GEMM of both towers is out[rows, n_out] = in[rows, n_in] · W^T (+ bias) with W an
 * nn.Linear weight [n_out, n_in]. The weights are packed when the model loads, into the layout
 * of the kernels of the ISA chosen for this process:
 *
 *   avx512: panels of 32 output columns, [n_in][32] f32 (or bf16 pairs [n_in/2][32][2]);
 *           12 x 32 fp32 tiles, vdpbf16ps tiles where the CPU has AVX512_BF16
 *   avx2:   panels of 16 output columns, [n_in][16] f32; 6 x 16 tiles
 *   blas:   the weight row-major as in the checkpoint, through OpenBLAS in column chunks (CPUs
 *           without one of our kernels, aarch64, and the floor clip-bench reports)
 *
 * The ISA is chosen once per process from CPUID feature bits (never from a CPU model name or
 * OPENBLAS_CORETYPE), or forced with CLIPCLASSIFY_ISA=avx512|avx2|blas. Activations are never
 * packed: the kernels broadcast them straight from row-major rows, whose stride the workspace
 * pads (clip_row_stride) so that a tile's rows do not all fall in one L1 cache set.
 */
#ifndef CLIP_GEMM_H
#define CLIP_GEMM_H

#include "clip.h"

#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum {
  CLIP_ISA_BLAS,
  CLIP_ISA_AVX2,
  CLIP_ISA_AVX512,
} ClipIsa;

/* "blas", "avx2", "avx512" */
const char *clip_isa_name (ClipIsa isa);
/* The best ISA this CPU runs, or the one CLIPCLASSIFY_ISA forces. FALSE with an error when the
 * variable names an unknown path or one this CPU cannot run. Read once per process. */
gboolean clip_isa_select (ClipIsa *isa, GError **error);
/* Whether this CPU runs the kernels of isa: AVX-512F, or AVX2 and FMA (blas: always). The one
 * place the engine reads CPUID; never the CPU's model or OPENBLAS_CORETYPE. */
gboolean clip_cpu_supports (ClipIsa isa);
/* Whether this CPU has AVX512_BF16 (and the avx512 path can use it). */
gboolean clip_cpu_has_avx512_bf16 (void);

/* What happens to acc = in · W^T + bias on its way out. */
typedef enum {
  CLIP_EPILOGUE_STORE,       /* out = acc */
  CLIP_EPILOGUE_RESIDUAL,    /* out += acc (the residual stream) */
  CLIP_EPILOGUE_QUICK_GELU,  /* out = acc * sigmoid(1.702 acc) */
  CLIP_EPILOGUE_GELU,        /* out = 0.5 acc (1 + erf(acc / sqrt 2)) */
} ClipEpilogue;

/* A packed weight. Immutable once packed; shared by every context of the model. */
typedef struct {
  int n_out, n_in;
  ClipIsa isa;
  ClipPrecision precision;   /* bf16: avx512 with AVX512_BF16 only */
  void *panels;              /* the layout above; 64-byte aligned */
  size_t panel_bytes;
  float *bias;               /* [n_out] or NULL */
} ClipLinear;

/* Allocates a linear of n_out x n_in for the kernels of `isa` (bf16 only where they have it:
 * `precision` then reads fp32). */
gboolean clip_linear_init (ClipLinear *linear, ClipIsa isa, ClipPrecision precision, int n_out,
                           int n_in, GError **error);
/* Packs rows [row0, row0 + n_rows) of the row-major [n_out, n_in] weight, given as f32, times
 * scale. Several tensors pack into one linear (q, k, v) at their own first row. */
void clip_linear_pack_rows (ClipLinear *linear, int row0, int n_rows, const float *rows,
                            float scale);
/* Sets bias[row0, row0 + n) to values times scale (a linear without any has no bias). */
void clip_linear_pack_bias (ClipLinear *linear, int row0, int n, const float *values,
                            float scale);
void clip_linear_clear (ClipLinear *linear);

/* Row stride (in floats) of an activation buffer of `dim` columns: a multiple of 16 (64-byte
 * rows) plus one cache line, so that the rows of a tile map to different L1 sets even when
 * dim * 4 is a multiple of 4 KiB (3072, 1024). */
static inline int
clip_row_stride (int dim)
{
  return (dim + 15) / 16 * 16 + 16;
}

/* One tile of a kernel call. */
typedef struct {
  int mr;                    /* rows, 1..kernel mr */
  int nc;                    /* valid columns, 1..kernel nr */
  int k;                     /* depth (in bf16: pairs of it, k rounded up to even) */
  const void *a;             /* first row; f32 rows (or bf16 pair rows) lda elements apart */
  size_t lda;                /* in f32, or in bf16 pairs */
  const void *b;             /* packed panel */
  float *c;                  /* output tile, ldc apart */
  size_t ldc;
  const float *bias;         /* at the tile's first column; NULL: none */
  ClipEpilogue epilogue;     /* STORE, RESIDUAL or QUICK_GELU (GELU is applied by the caller) */
} ClipTile;

typedef struct {
  int mr, nr;
  void (*tile_f32) (const ClipTile *tile);
  void (*tile_bf16) (const ClipTile *tile);  /* NULL without AVX512_BF16 */
  /* n f32 values to bf16 (round to nearest even), a GEMM input on its way to tile_bf16 */
  void (*to_bf16) (uint16_t *out, const float *in, int n);
} ClipKernels;

#if defined(__x86_64__) && defined(__GNUC__)
extern const ClipKernels clip_kernels_avx512;
extern const ClipKernels clip_kernels_avx2;
#endif

G_END_DECLS

#endif /* CLIP_GEMM_H */
