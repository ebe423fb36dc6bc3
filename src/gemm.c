/* gemm.c — ISA choice, weight packing, and the GEMM and attention calls of the forward pass.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "gemm.h"
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * ISA */

const char *
clip_isa_name (ClipIsa isa)
{
  switch (isa) {
  case CLIP_ISA_AVX512: return "avx512";
  case CLIP_ISA_AVX2: return "avx2";
  case CLIP_ISA_BLAS: break;
  }
  return "blas";
}

/* __builtin_cpu_supports reads CPUID and, for AVX and AVX-512, whether the OS saves their
 * registers (XGETBV): a feature the kernel has switched off counts as absent. */
gboolean
clip_cpu_supports (ClipIsa isa)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init ();
  switch (isa) {
  case CLIP_ISA_AVX512: return __builtin_cpu_supports ("avx512f");
  case CLIP_ISA_AVX2: return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  case CLIP_ISA_BLAS: return TRUE;
  }
  return FALSE;
#else
  return isa == CLIP_ISA_BLAS;
#endif
}

gboolean
clip_cpu_has_avx512_bf16 (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bf16");
#else
  return FALSE;
#endif
}

gboolean
clip_isa_select (ClipIsa *isa, GError **error)
{
  const char *forced = g_getenv ("CLIPCLASSIFY_ISA");
  if (forced == NULL || *forced == '\0') {
    *isa = clip_cpu_supports (CLIP_ISA_AVX512) ? CLIP_ISA_AVX512
         : clip_cpu_supports (CLIP_ISA_AVX2) ? CLIP_ISA_AVX2 : CLIP_ISA_BLAS;
    return TRUE;
  }
  static const ClipIsa all[] = { CLIP_ISA_AVX512, CLIP_ISA_AVX2, CLIP_ISA_BLAS };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    if (g_ascii_strcasecmp (forced, clip_isa_name (all[i])) != 0)
      continue;
    if (!clip_cpu_supports (all[i])) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
                   "CLIPCLASSIFY_ISA=%s, but this CPU cannot run the %s kernels (%s)", forced,
                   clip_isa_name (all[i]),
                   all[i] == CLIP_ISA_AVX512 ? "no AVX-512F" : "no AVX2 and FMA");
      return FALSE;
    }
    *isa = all[i];
    return TRUE;
  }
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID_ARGUMENT,
               "CLIPCLASSIFY_ISA=%s is not a kernel path: use avx512, avx2 or blas (or leave it "
               "unset for the best this CPU has)", forced);
  return FALSE;
}

static const ClipKernels *
kernels_for (ClipIsa isa)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == CLIP_ISA_AVX512)
    return &clip_kernels_avx512;
  if (isa == CLIP_ISA_AVX2)
    return &clip_kernels_avx2;
#endif
  (void) isa;
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * bf16 */

/* round to nearest even, as vcvtneps2bf16; NaN stays NaN */
static inline uint16_t
f32_to_bf16 (float x)
{
  uint32_t u;
  memcpy (&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

/* ---------------------------------------------------------------------------------------------
 * Packing */

static size_t
panel_elements (const ClipLinear *w, int nr)
{
  /* f32: [n_in][nr]; bf16: [n_in/2][nr][2] */
  return (size_t) (w->precision == CLIP_PRECISION_BF16 ? (w->n_in + 1) / 2 * 2 : w->n_in) * nr;
}

gboolean
clip_linear_init (ClipLinear *w, ClipIsa isa, ClipPrecision precision, int n_out, int n_in,
                  GError **error)
{
  const ClipKernels *kernels = kernels_for (isa);
  memset (w, 0, sizeof *w);
  w->n_out = n_out;
  w->n_in = n_in;
  w->isa = isa;
  w->precision = kernels && kernels->tile_bf16 && clip_cpu_has_avx512_bf16 () ? precision
                                                                              : CLIP_PRECISION_FP32;
  if (kernels == NULL)
    w->panel_bytes = (size_t) n_out * n_in * sizeof (float);
  else {
    size_t n_panels = (size_t) (n_out + kernels->nr - 1) / kernels->nr;
    size_t element = w->precision == CLIP_PRECISION_BF16 ? sizeof (uint16_t) : sizeof (float);
    w->panel_bytes = n_panels * panel_elements (w, kernels->nr) * element;
  }
  w->panels = g_aligned_alloc (w->panel_bytes, 1, 64);
  if (w->panels == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "cannot allocate %" G_GSIZE_FORMAT
                 " bytes for packed weights", w->panel_bytes);
    return FALSE;
  }
  if (kernels != NULL) {
    /* What packing never writes is multiplied too, so it must be zero: the padding columns of
     * the last panel, and in bf16 with an odd depth the second half of each panel's last pair.
     * (Zeroing everything up front would touch the whole allocation once more at load.) */
    size_t panel_bytes = panel_elements (w, kernels->nr)
                       * (w->precision == CLIP_PRECISION_BF16 ? sizeof (uint16_t) : sizeof (float));
    size_t n_panels = w->panel_bytes / panel_bytes;
    memset ((char *) w->panels + (n_panels - 1) * panel_bytes, 0, panel_bytes);
    if (w->precision == CLIP_PRECISION_BF16 && n_in % 2)
      for (size_t p = 0; p < n_panels; p++)
        memset ((char *) w->panels + (p + 1) * panel_bytes - 2 * kernels->nr * sizeof (uint16_t),
                0, 2 * kernels->nr * sizeof (uint16_t));
  }
  return TRUE;
}

void
clip_linear_pack_bias (ClipLinear *w, int row0, int n, const float *values, float scale)
{
  g_return_if_fail (row0 >= 0 && row0 + n <= w->n_out);
  if (w->bias == NULL)
    w->bias = g_new0 (float, w->n_out);
  for (int i = 0; i < n; i++)
    w->bias[row0 + i] = values[i] * scale;
}

void
clip_linear_pack_rows (ClipLinear *w, int row0, int n_rows, const float *rows, float scale)
{
  const ClipKernels *kernels = kernels_for (w->isa);
  const int k = w->n_in;
  g_return_if_fail (row0 >= 0 && row0 + n_rows <= w->n_out);

  for (int i = 0; i < n_rows; i++) {
    const float *src = rows + (size_t) i * k;
    int n = row0 + i;
    if (kernels == NULL) {
      float *dst = (float *) w->panels + (size_t) n * k;
      for (int j = 0; j < k; j++)
        dst[j] = src[j] * scale;
      continue;
    }
    int nr = kernels->nr, column = n % nr;
    size_t panel = (size_t) (n / nr) * panel_elements (w, nr);
    if (w->precision == CLIP_PRECISION_BF16) {
      uint16_t *dst = (uint16_t *) w->panels + panel + 2 * column;
      for (int j = 0; j < k; j++)
        dst[(size_t) (j / 2) * 2 * nr + j % 2] = f32_to_bf16 (src[j] * scale);
    } else {
      float *dst = (float *) w->panels + panel + column;
      for (int j = 0; j < k; j++)
        dst[(size_t) j * nr] = src[j] * scale;
    }
  }
}

void
clip_linear_clear (ClipLinear *w)
{
  g_aligned_free (w->panels);
  g_free (w->bias);
  memset (w, 0, sizeof *w);
}

/* Attention's operands, packed per head into fp32 panels of nr columns (zero padded):
 * keys: column j of B is source row j (B = K^T), at columns [col0, col0 + n);
 * values: row j of B is source row j (B = V), at depth [k0, k0 + n). */
static void
pack_key_columns (int nr, int depth, float *panels, int col0, const float *src, size_t ld, int n)
{
  for (int j = 0; j < n; j++) {
    int col = col0 + j;
    float *dst = panels + (size_t) (col / nr) * depth * nr + col % nr;
    for (int d = 0; d < depth; d++)
      dst[(size_t) d * nr] = src[j * ld + d];
  }
}

static void
pack_value_rows (int nr, int depth, int width, float *panels, int k0, const float *src,
                 size_t ld, int n)
{
  for (int j = 0; j < n; j++)
    for (int p = 0; p * nr < width; p++) {
      float *dst = panels + ((size_t) p * depth + k0 + j) * nr;
      int nc = MIN (nr, width - p * nr);
      memcpy (dst, src + j * ld + p * nr, nc * sizeof (float));
      if (nc < nr)
        memset (dst + nc, 0, (nr - nc) * sizeof (float));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tiles */

/* out = epilogue(a · B + bias) for output columns [panel * nr, +nr) of every row: the panel
 * stays in cache while the rows stream past it. */
static void
panel_product (const ClipKernels *kernels, ClipPrecision precision, const void *a, size_t lda,
               int rows, int depth, const void *panel, int n_out, int panel_index, float *out,
               size_t ldo, const float *bias, ClipEpilogue epilogue)
{
  int mr = kernels->mr, nr = kernels->nr, c0 = panel_index * nr;
  ClipTile tile = {
    .nc = MIN (nr, n_out - c0),
    .k = depth,
    .lda = lda,
    .b = panel,
    .ldc = ldo,
    .bias = bias ? bias + c0 : NULL,
    .epilogue = epilogue == CLIP_EPILOGUE_GELU ? CLIP_EPILOGUE_STORE : epilogue,
  };
  for (int r0 = 0; r0 < rows; r0 += mr) {
    tile.mr = MIN (mr, rows - r0);
    tile.c = out + r0 * ldo + c0;
    if (precision == CLIP_PRECISION_BF16) {
      tile.a = (const uint32_t *) a + r0 * lda;
      kernels->tile_bf16 (&tile);
    } else {
      tile.a = (const float *) a + r0 * lda;
      kernels->tile_f32 (&tile);
    }
    if (epilogue == CLIP_EPILOGUE_GELU)
      clip_bias_gelu (tile.c, (int) ldo, tile.mr, 0, tile.nc, NULL);
  }
}

static const void *
panel_at (const ClipLinear *w, const ClipKernels *kernels, int p)
{
  size_t offset = (size_t) p * panel_elements (w, kernels->nr);
  return w->precision == CLIP_PRECISION_BF16 ? (const void *) ((const uint16_t *) w->panels + offset)
                                              : (const void *) ((const float *) w->panels + offset);
}

/* ---------------------------------------------------------------------------------------------
 * OpenBLAS path */

/* Chunks are multiples of 16 columns, so each starts on a cache line of the output and
 * OpenBLAS's blocking is not split mid-panel, and at least 128 wide: each call packs the whole
 * input again, which must stay small next to the chunk's own work. Two chunks per thread let a
 * thread that was held up hand the rest of its share to the others. */
#define BLAS_COLUMN_ALIGN 16
#define BLAS_MIN_CHUNK_COLUMNS 128
#define BLAS_CHUNKS_PER_THREAD 2

int
clip_blas_n_chunks (const ClipTeam *team, int n_out)
{
  int n = team->n_threads == 1 ? 1 : team->n_threads * BLAS_CHUNKS_PER_THREAD;
  return CLAMP (n_out / BLAS_MIN_CHUNK_COLUMNS, 1, n);
}

void
clip_blas_chunk (const float *in, size_t ld_in, int rows, int n_in, const float *weight,
                 int n_out, float *out, size_t ld_out, gboolean accumulate, int chunk,
                 int n_chunks, int *col_begin, int *col_end)
{
  ClipTeam as_split = { chunk, n_chunks, NULL };
  int c0, c1;
  clip_team_split (&as_split, n_out, BLAS_COLUMN_ALIGN, &c0, &c1);
  if (c1 > c0 && rows > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, rows, c1 - c0, n_in, 1.0f, in,
                 (int) ld_in, weight + (size_t) c0 * n_in, n_in, accumulate ? 1.0f : 0.0f,
                 out + c0, (int) ld_out);
  *col_begin = c0;
  *col_end = c1;
}

static void
blas_linear (const ClipTeam *team, const ClipLinear *w, const float *in, size_t ld_in, int rows,
             float *out, size_t ld_out, ClipEpilogue epilogue)
{
  int n_chunks = clip_blas_n_chunks (team, w->n_out), c0, c1;
  for (int i; (i = clip_team_take (team, n_chunks)) >= 0;) {
    clip_blas_chunk (in, ld_in, rows, w->n_in, w->panels, w->n_out, out, ld_out,
                     epilogue == CLIP_EPILOGUE_RESIDUAL, i, n_chunks, &c0, &c1);
    if (epilogue == CLIP_EPILOGUE_QUICK_GELU)
      clip_bias_quick_gelu (out, (int) ld_out, rows, c0, c1, w->bias);
    else if (epilogue == CLIP_EPILOGUE_GELU)
      clip_bias_gelu (out, (int) ld_out, rows, c0, c1, w->bias);
    else if (w->bias)
      clip_add_bias_scaled (out, (int) ld_out, rows, c0, c1, w->bias, 1.0f);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Team calls */

void
clip_linear_forward (const ClipTeam *team, ClipWorkspace *ws, const ClipLinear *w,
                     const float *in, size_t ld_in, int rows, float *out, size_t ld_out,
                     ClipEpilogue epilogue)
{
  const ClipKernels *kernels = kernels_for (w->isa);
  if (kernels == NULL) {
    blas_linear (team, w, in, ld_in, rows, out, ld_out, epilogue);
    clip_team_barrier (team);
    return;
  }

  const void *a = in;
  size_t lda = ld_in;
  if (w->precision == CLIP_PRECISION_BF16) {
    /* the activations as bf16 pairs, shared by the team */
    size_t ld16 = (size_t) clip_row_stride (w->n_in);
    int r0, r1;
    clip_team_split (team, rows, 1, &r0, &r1);
    for (int r = r0; r < r1; r++) {
      uint16_t *row = ws->bf16_rows + r * ld16;
      kernels->to_bf16 (row, in + r * ld_in, w->n_in);
      if (w->n_in % 2)
        row[w->n_in] = 0;    /* the odd tail's pair */
    }
    clip_team_barrier (team);
    a = ws->bf16_rows;
    lda = ld16 / 2;
  }
  int n_panels = (w->n_out + kernels->nr - 1) / kernels->nr;
  for (int p; (p = clip_team_take (team, n_panels)) >= 0;)
    panel_product (kernels, w->precision, a, lda, rows, w->n_in, panel_at (w, kernels, p),
                   w->n_out, p, out, ld_out, w->bias, epilogue);
  clip_team_barrier (team);
}

void
clip_attention_head (ClipIsa isa, float *scratch, size_t scratch_floats, const float *q,
                     const float *k, const float *v, size_t ld, int head_dim,
                     const ClipSequence *seq, int q0, int q1, gboolean causal, float *out,
                     size_t ld_out)
{
  int n = seq->length, n_keys = seq->shared_prefix + seq->length, n_queries = q1 - q0;
  size_t own = (size_t) seq->start * ld, queries = (size_t) (seq->start + q0);
  size_t ld_scores = (size_t) clip_row_stride (n_keys);
  float *scores = scratch;
  const ClipKernels *kernels = kernels_for (isa);

  /* the causal rule below counts a query's keys from the end: its queries must end the sequence */
  g_assert (0 <= q0 && q0 <= q1 && q1 <= n && (!causal || q1 == n));
  if (n_queries == 0)
    return;

  if (kernels == NULL) {
    /* keys and values of the prefix + own rows, gathered contiguous when there is a prefix */
    const float *keys = k + own, *values = v + own;
    size_t ld_kv = ld;
    if (seq->shared_prefix > 0) {
      float *k_all = scores + n * ld_scores, *v_all = k_all + (size_t) n_keys * head_dim;
      for (int t = 0; t < n_keys; t++) {
        size_t row = t < seq->shared_prefix ? (size_t) t : (size_t) (seq->start + t - seq->shared_prefix);
        memcpy (k_all + (size_t) t * head_dim, k + row * ld, head_dim * sizeof (float));
        memcpy (v_all + (size_t) t * head_dim, v + row * ld, head_dim * sizeof (float));
      }
      keys = k_all;
      values = v_all;
      ld_kv = head_dim;
    }
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_queries, n_keys, head_dim, 1.0f,
                 q + queries * ld, (int) ld, keys, (int) ld_kv, 0.0f, scores, (int) ld_scores);
    clip_softmax_rows (scores, (int) ld_scores, n_queries, n_keys, causal);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n_queries, head_dim, n_keys, 1.0f,
                 scores, (int) ld_scores, values, (int) ld_kv, 0.0f, out + queries * ld_out,
                 (int) ld_out);
    return;
  }

  int nr = kernels->nr;
  int key_panels = (n_keys + nr - 1) / nr, value_panels = (head_dim + nr - 1) / nr;
  float *key_b = scores + n * ld_scores;
  float *value_b = key_b + (size_t) key_panels * nr * head_dim;
  g_assert (value_b + (size_t) value_panels * nr * n_keys <= scratch + scratch_floats);

  /* scores = q k^T (q was scaled by head_dim^-0.5 when packed) */
  memset (key_b, 0, (size_t) key_panels * nr * head_dim * sizeof (float));
  if (seq->shared_prefix > 0)
    pack_key_columns (nr, head_dim, key_b, 0, k, ld, seq->shared_prefix);
  pack_key_columns (nr, head_dim, key_b, seq->shared_prefix, k + own, ld, n);
  for (int p = 0; p < key_panels; p++)
    panel_product (kernels, CLIP_PRECISION_FP32, q + queries * ld, ld, n_queries, head_dim,
                   key_b + (size_t) p * nr * head_dim, n_keys, p, scores, ld_scores, NULL,
                   CLIP_EPILOGUE_STORE);
  clip_softmax_rows (scores, (int) ld_scores, n_queries, n_keys, causal);

  /* out = softmax(scores) v */
  if (seq->shared_prefix > 0)
    pack_value_rows (nr, n_keys, head_dim, value_b, 0, v, ld, seq->shared_prefix);
  pack_value_rows (nr, n_keys, head_dim, value_b, seq->shared_prefix, v + own, ld, n);
  for (int p = 0; p < value_panels; p++)
    panel_product (kernels, CLIP_PRECISION_FP32, scores, ld_scores, n_queries, n_keys,
                   value_b + (size_t) p * nr * n_keys, head_dim, p, out + queries * ld_out,
                   ld_out, NULL, CLIP_EPILOGUE_STORE);
}

size_t
clip_attention_scratch_floats (int max_queries, int max_keys, int head_dim)
{
  /* scores, then either the gathered keys and values (blas) or their panels (kernels, nr <= 32) */
  size_t scores = (size_t) max_queries * clip_row_stride (max_keys);
  size_t keys = (size_t) (max_keys + 31) / 32 * 32 * head_dim;
  size_t values = (size_t) (head_dim + 31) / 32 * 32 * max_keys;
  return scores + keys + values + 16;
}
