/* test-gemm.c — the engine's GEMM layer (gemm.h) against a double-precision reference computed
 * here: clip_linear_forward on every kernel path this CPU runs (and OpenBLAS always), fp32 and,
 * where the CPU has AVX512_BF16, bf16; every epilogue with and without a bias; shapes off the
 * tile sizes (12x32, 6x16) including one dimension above 1000 at a time; row strides wider than
 * the rows (clip_row_stride and odd ones); teams of 1 and 2 threads. NaN in the padding between
 * a row's width and its stride, and in guard rows around the buffers, checks that nothing past
 * n_out columns is written (the NaN's bits stay as they were) and that no input padding is read
 * (every output stays finite). clip_attention_head: one head, head_dim 64 and 24, with and
 * without a shared prefix, causal and not, against softmax(q k^T) v in double.
 * Also: QUICK_GELU without a bias on the OpenBLAS path (it once crashed), and clip_linear_init
 * keeping bf16 only for avx512 on a CPU with AVX512_BF16.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "forward.h"
#include "gemm.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
/* as context.c: denormals flushed (FTZ | DAZ) inside the team */
#define DENORMALS_OFF(saved) unsigned saved = _mm_getcsr (); _mm_setcsr (saved | 0x8040)
#define DENORMALS_RESTORE(saved) _mm_setcsr (saved)
#else
#define DENORMALS_OFF(saved) (void) 0
#define DENORMALS_RESTORE(saved) (void) 0
#endif

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

/* A quiet NaN with a payload no arithmetic produces: a value that still has these bits after a
 * call was not written by it. */
#define POISON_BITS 0x7fc0dead

static float
poison (void)
{
  uint32_t bits = POISON_BITS;
  float f;

  memcpy (&f, &bits, sizeof f);
  return f;
}

static gboolean
is_poison (float f)
{
  uint32_t bits;

  memcpy (&bits, &f, sizeof bits);
  return bits == POISON_BITS;
}

static void
fill_poison (float *x, size_t n)
{
  float p = poison ();

  for (size_t i = 0; i < n; i++)
    x[i] = p;
}

static float
uniform (GRand *rand, double lo, double hi)
{
  return (float) g_rand_double_range (rand, lo, hi);
}

/* Whether this CPU runs the kernels of `isa`, decided here (not by gemm.c). */
static gboolean
cpu_runs (ClipIsa isa)
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

static gboolean
cpu_has_avx512_bf16 (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bf16");
#else
  return FALSE;
#endif
}

static const char *
epilogue_name (ClipEpilogue epilogue)
{
  switch (epilogue) {
  case CLIP_EPILOGUE_STORE: return "store";
  case CLIP_EPILOGUE_RESIDUAL: return "residual";
  case CLIP_EPILOGUE_QUICK_GELU: return "quick_gelu";
  case CLIP_EPILOGUE_GELU: return "gelu";
  }
  return "?";
}

/* Failures of one test function: the first few described, all counted. */
typedef struct {
  int failures;
  double max_rel;            /* largest |got - ref| / magnitude */
  double max_ratio;          /* largest |got - ref| / tolerance */
} Tally;

#define MAX_REPORTED 8

G_GNUC_PRINTF (2, 3) static void
tally_fail (Tally *tally, const char *format, ...)
{
  if (tally->failures++ < MAX_REPORTED) {
    va_list args;
    va_start (args, format);
    char *message = g_strdup_vprintf (format, args);
    va_end (args);
    g_test_message ("FAIL: %s", message);
    g_free (message);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* clip_linear_forward */

typedef struct {
  ClipWorkspace *ws;
  const ClipLinear *w;
  const float *in;
  size_t ld_in;
  int rows;
  float *out;
  size_t ld_out;
  ClipEpilogue epilogue;
} LinearCall;

/* clip_linear_forward in a team of n_threads, as CLIP_RUN_TEAM (context.c) runs one; returns
 * the team's size as OpenMP made it */
static int
run_linear_team (const LinearCall *call, int n_threads)
{
  ClipBarrier barrier;
  int team_size = 0;

  memset (&barrier, 0, sizeof barrier);
#pragma omp parallel num_threads (n_threads) shared (barrier, team_size)
  {
    omp_set_num_threads (1);
    DENORMALS_OFF (csr);
    ClipTeam team = { omp_get_thread_num (), omp_get_num_threads (), &barrier };
    if (team.tid == 0)
      team_size = team.n_threads;
    clip_linear_forward (&team, call->ws, call->w, call->in, call->ld_in, call->rows, call->out,
                         call->ld_out, call->epilogue);
    DENORMALS_RESTORE (csr);
  }
  return team_size;
}

typedef enum {
  LD_PADDED,                 /* clip_row_stride (width) */
  LD_ODD,                    /* an odd stride a little over the width */
} LdKind;

static size_t
make_ld (int width, LdKind kind)
{
  if (kind == LD_PADDED)
    return (size_t) clip_row_stride (width);
  return (size_t) width + ((width + 1) % 2 ? 1 : 2);
}

typedef struct {
  int m, n, k;               /* rows, n_out, n_in */
  LdKind ld_in, ld_out;
  float scale, bias_scale;   /* pack scales */
  int pieces;                /* the weight (and bias) packed in this many slices of rows */
} Shape;

/* Every value of M {1, 11, 12, 13, 14, 15, 197, 1030}, N {1, 17, 31, 32, 33, 100, 1030} and
 * K {1, 3, 64, 197, 1031} at least once, one dimension above 1000 at a time otherwise
 * (avx512 tiles are 12 x 32, avx2 6 x 16: one below, on and above a tile). */
static const Shape shapes[] = {
  { 1, 1, 1, LD_PADDED, LD_ODD, 1.0f, 1.0f, 1 },
  { 13, 17, 3, LD_ODD, LD_PADDED, 1.0f, 1.0f, 2 },
  { 14, 32, 64, LD_PADDED, LD_PADDED, 0.37f, 1.5f, 3 },
  { 15, 31, 197, LD_ODD, LD_ODD, 1.0f, 1.0f, 1 },
  { 197, 33, 64, LD_PADDED, LD_ODD, 1.0f, 1.0f, 1 },
  { 197, 100, 197, LD_ODD, LD_PADDED, 0.125f, 1.0f, 3 },
  { 1030, 100, 3, LD_PADDED, LD_PADDED, 1.0f, 1.0f, 1 },
  { 14, 1030, 197, LD_ODD, LD_PADDED, 1.0f, 1.0f, 3 },
  { 15, 100, 1031, LD_PADDED, LD_ODD, 1.0f, 1.0f, 1 },
  { 1, 1030, 1031, LD_ODD, LD_ODD, 1.0f, 1.0f, 1 },
  { 13, 32, 1031, LD_ODD, LD_PADDED, 1.0f, 1.0f, 2 },
  { 11, 33, 64, LD_PADDED, LD_ODD, 1.0f, 1.0f, 1 },
  { 12, 31, 197, LD_ODD, LD_PADDED, 1.0f, 1.0f, 2 },
};

static const ClipEpilogue epilogues[] = {
  CLIP_EPILOGUE_STORE, CLIP_EPILOGUE_RESIDUAL, CLIP_EPILOGUE_QUICK_GELU, CLIP_EPILOGUE_GELU,
};

/* The data of one shape and its reference: acc = in · (W scale)^T in double, and the sum of the
 * products' magnitudes, which bounds the rounding error of any order of summation. */
typedef struct {
  const Shape *shape;
  float *weight;             /* [n][k] row-major */
  float *bias;               /* [n] as given to clip_linear_pack_bias (times bias_scale there) */
  float *in_buf;             /* (m + 2) rows of ld_in: a guard row, m rows, a guard row */
  float *in;                 /* in_buf + ld_in */
  size_t ld_in, ld_out;
  float *residual;           /* [m][n] the out values a residual call starts from */
  double *acc;               /* [m][n] */
  double *magnitude;         /* [m][n] sum_k |a_k w_k| */
} Problem;

static void
problem_init (Problem *p, const Shape *shape, GRand *rand)
{
  int m = shape->m, n = shape->n, k = shape->k;

  memset (p, 0, sizeof *p);
  p->shape = shape;
  p->ld_in = make_ld (k, shape->ld_in);
  p->ld_out = make_ld (n, shape->ld_out);
  g_assert_cmpuint (p->ld_in, >, (size_t) k);
  g_assert_cmpuint (p->ld_out, >, (size_t) n);

  p->weight = g_new (float, (size_t) n * k);
  for (size_t i = 0; i < (size_t) n * k; i++)
    p->weight[i] = uniform (rand, -1.0, 1.0);
  p->bias = g_new (float, n);
  for (int j = 0; j < n; j++)
    p->bias[j] = uniform (rand, -1.0, 1.0);

  /* input: NaN in the padding columns and in the guard rows, none of which may be read */
  p->in_buf = g_new (float, (size_t) (m + 2) * p->ld_in);
  fill_poison (p->in_buf, (size_t) (m + 2) * p->ld_in);
  p->in = p->in_buf + p->ld_in;
  for (int r = 0; r < m; r++)
    for (int c = 0; c < k; c++)
      p->in[r * p->ld_in + c] = uniform (rand, -1.0, 1.0);

  p->residual = g_new (float, (size_t) m * n);
  for (size_t i = 0; i < (size_t) m * n; i++)
    p->residual[i] = uniform (rand, -2.0, 2.0);

  p->acc = g_new (double, (size_t) m * n);
  p->magnitude = g_new (double, (size_t) m * n);
  for (int r = 0; r < m; r++) {
    const float *a = p->in + r * p->ld_in;
    for (int j = 0; j < n; j++) {
      const float *w = p->weight + (size_t) j * k;
      double sum = 0.0, mag = 0.0;
      for (int c = 0; c < k; c++) {
        double prod = (double) a[c] * ((double) w[c] * shape->scale);
        sum += prod;
        mag += fabs (prod);
      }
      p->acc[(size_t) r * n + j] = sum;
      p->magnitude[(size_t) r * n + j] = mag;
    }
  }
}

static void
problem_clear (Problem *p)
{
  g_free (p->weight);
  g_free (p->bias);
  g_free (p->in_buf);
  g_free (p->residual);
  g_free (p->acc);
  g_free (p->magnitude);
}

/* A linear of the problem's weight (and bias), packed in shape->pieces slices of rows as q, k
 * and v are packed into one. Returns the precision it has. */
static ClipPrecision
pack_linear (ClipLinear *linear, const Problem *p, ClipIsa isa, ClipPrecision precision,
             gboolean with_bias)
{
  const Shape *s = p->shape;
  GError *error = NULL;

  g_assert_true (clip_linear_init (linear, isa, precision, s->n, s->k, &error));
  g_assert_no_error (error);
  g_assert_cmpint (linear->n_out, ==, s->n);
  g_assert_cmpint (linear->n_in, ==, s->k);
  int pieces = MIN (s->pieces, s->n);
  for (int i = 0; i < pieces; i++) {
    int row0 = s->n * i / pieces, row1 = s->n * (i + 1) / pieces;
    clip_linear_pack_rows (linear, row0, row1 - row0, p->weight + (size_t) row0 * s->k,
                           s->scale);
    if (with_bias)
      clip_linear_pack_bias (linear, row0, row1 - row0, p->bias + row0, s->bias_scale);
  }
  g_assert_true (with_bias == (linear->bias != NULL));
  return linear->precision;
}

static double
reference_epilogue (ClipEpilogue epilogue, double x)
{
  switch (epilogue) {
  case CLIP_EPILOGUE_QUICK_GELU: return x / (1.0 + exp (-1.702 * x));
  case CLIP_EPILOGUE_GELU: return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
  case CLIP_EPILOGUE_STORE:
  case CLIP_EPILOGUE_RESIDUAL:
    break;
  }
  return x;
}

/* One call of clip_linear_forward on the problem, checked element by element. */
static void
check_linear_call (Tally *tally, const char *what, ClipWorkspace *ws, const ClipLinear *linear,
                   const Problem *p, ClipEpilogue epilogue, gboolean with_bias, int n_threads)
{
  const Shape *s = p->shape;
  int m = s->m, n = s->n;
  size_t ld = p->ld_out;
  gboolean bf16 = linear->precision == CLIP_PRECISION_BF16;

  /* out: a guard row, m rows, a guard row, all NaN except the m x n values a residual call
   * adds to (the others must all be written) */
  float *out_buf = g_new (float, (size_t) (m + 2) * ld);
  fill_poison (out_buf, (size_t) (m + 2) * ld);
  float *out = out_buf + ld;
  if (epilogue == CLIP_EPILOGUE_RESIDUAL)
    for (int r = 0; r < m; r++)
      memcpy (out + r * ld, p->residual + (size_t) r * n, n * sizeof (float));

  /* the bf16 copy of the input is made anew by every call: stale rows must not be used */
  if (ws->bf16_rows != NULL)
    for (size_t i = 0; i < (size_t) ws->capacity_tokens * clip_row_stride (ws->capacity_in); i++)
      ws->bf16_rows[i] = 0x7fc1;   /* a bf16 NaN */

  LinearCall call = { ws, linear, p->in, p->ld_in, m, out, ld, epilogue };
  int team_size = run_linear_team (&call, n_threads);
  g_assert_cmpint (team_size, ==, n_threads);

  char *where = g_strdup_printf ("%s M=%d N=%d K=%d ld_in=%zu ld_out=%zu scale=%g %s%s, "
                                 "%d thread%s", what, m, n, s->k, p->ld_in, ld, s->scale,
                                 epilogue_name (epilogue), with_bias ? " +bias" : "",
                                 n_threads, n_threads > 1 ? "s" : "");
  int bad = 0;
  for (int r = -1; r <= m; r++)
    for (size_t c = 0; c < ld; c++) {
      float got = out[r * (ptrdiff_t) ld + c];
      if (r < 0 || r >= m || c >= (size_t) n) {
        if (!is_poison (got) && bad++ < 3)
          tally_fail (tally, "%s: row %d column %zu is outside the output but was written "
                      "(%g)", where, r, c, got);
        continue;
      }
      size_t i = (size_t) r * n + c;
      double bias = with_bias ? (double) p->bias[c] * s->bias_scale : 0.0;
      double residual = epilogue == CLIP_EPILOGUE_RESIDUAL ? p->residual[i] : 0.0;
      double x = p->acc[i] + bias;
      double ref = epilogue == CLIP_EPILOGUE_RESIDUAL ? x + residual
                                                      : reference_epilogue (epilogue, x);
      /* fp32: summation error, relative to the magnitude of what is summed; bf16: each
       * operand rounded to 8 significant bits too (relative 2^-8 each: (1 + 2^-8)^2 - 1 =
       * 2^-7 + 2^-16 on a product) */
      double magnitude = p->magnitude[i] + fabs (bias) + fabs (residual);
      double tol = 1e-5 * magnitude + 1e-6;
      if (bf16)
        tol += (0x1p-7 + 0x1p-16) * p->magnitude[i];
      if (epilogue == CLIP_EPILOGUE_QUICK_GELU || epilogue == CLIP_EPILOGUE_GELU)
        tol = 1.2 * tol + 2e-6 * fabs (ref);   /* |f'| <= 1.13; f's own rounding */
      double err = fabs ((double) got - ref);
      if (!isfinite (got) || !(err <= tol)) {
        if (bad++ < 3)
          tally_fail (tally, "%s: [%d][%zu] = %.9g, reference %.9g (error %.3g, tolerance "
                      "%.3g)", where, r, c, got, ref, err, tol);
        continue;
      }
      tally->max_rel = MAX (tally->max_rel, err / magnitude);
      tally->max_ratio = MAX (tally->max_ratio, err / tol);
    }
  if (bad > 3)
    tally_fail (tally, "%s: %d values wrong in all", where, bad);
  g_free (where);
  g_free (out_buf);
}

typedef struct {
  ClipIsa isa;
  ClipPrecision precision;
} LinearPath;

static void
test_linear (gconstpointer data)
{
  const LinearPath *path = data;
  const char *isa = clip_isa_name (path->isa);
  gboolean bf16 = path->precision == CLIP_PRECISION_BF16;

  if (!cpu_runs (path->isa)) {
    char *why = g_strdup_printf ("this CPU does not run the %s kernels", isa);
    g_test_skip (why);
    g_free (why);
    return;
  }
  if (bf16 && !cpu_has_avx512_bf16 ()) {
    g_test_skip ("this CPU has no AVX512_BF16");
    return;
  }

  GRand *rand = g_rand_new_with_seed (0x5eed + path->isa);
  ClipWorkspace ws;
  Tally tally = { 0 };
  int n_calls = 0;

  memset (&ws, 0, sizeof ws);
  for (guint si = 0; si < G_N_ELEMENTS (shapes); si++) {
    const Shape *s = &shapes[si];
    Problem p;
    problem_init (&p, s, rand);

    /* bf16_rows must hold m rows of k: widest_in = MAX (hidden, intermediate, patch_dim) */
    ClipTowerConfig config;
    memset (&config, 0, sizeof config);
    config.hidden_size = s->k;
    config.intermediate_size = s->k;
    config.num_attention_heads = 1;
    g_assert_true (clip_workspace_reserve (&ws, &config, s->m, 1, 2, 0));
    g_assert_cmpint (ws.capacity_tokens, >=, s->m);
    g_assert_cmpint (ws.capacity_in, >=, s->k);

    for (int with_bias = 0; with_bias <= 1; with_bias++) {
      ClipLinear linear;
      ClipPrecision got = pack_linear (&linear, &p, path->isa, path->precision, with_bias);
      if (bf16 && got != CLIP_PRECISION_BF16) {
        clip_linear_clear (&linear);
        problem_clear (&p);
        clip_workspace_clear (&ws);
        g_rand_free (rand);
        g_test_skip ("clip_linear_init did not keep bf16 on the avx512 path");
        return;
      }
      g_assert_cmpint (got, ==, path->precision);
      for (guint e = 0; e < G_N_ELEMENTS (epilogues); e++) {
        for (int n_threads = 1; n_threads <= 2; n_threads++) {
          char *what = g_strdup_printf ("%s/%s", isa, bf16 ? "bf16" : "fp32");
          check_linear_call (&tally, what, &ws, &linear, &p, epilogues[e], with_bias,
                             n_threads);
          g_free (what);
          n_calls++;
        }
      }
      clip_linear_clear (&linear);
    }
    problem_clear (&p);
  }
  clip_workspace_clear (&ws);
  g_rand_free (rand);

  g_test_message ("%s/%s: %d calls, largest error %.3g of the summed magnitudes (%.2f of the "
                  "tolerance)", isa, bf16 ? "bf16" : "fp32", n_calls, tally.max_rel,
                  tally.max_ratio);
  if (tally.failures > 0) {
    g_test_message ("%d failures", tally.failures);
    g_test_fail ();
  }
}

/* clip_linear_init keeps bf16 only where there are bf16 kernels: avx512 on a CPU with
 * AVX512_BF16 (gemm.h); everywhere else precision reads fp32. */
static void
test_linear_bf16_precision (void)
{
  static const ClipIsa isas[] = { CLIP_ISA_AVX512, CLIP_ISA_AVX2, CLIP_ISA_BLAS };

  for (guint i = 0; i < G_N_ELEMENTS (isas); i++) {
    ClipLinear linear;
    GError *error = NULL;
    gboolean real = isas[i] == CLIP_ISA_AVX512 && cpu_has_avx512_bf16 ();

    g_assert_true (clip_linear_init (&linear, isas[i], CLIP_PRECISION_BF16, 33, 7, &error));
    g_assert_no_error (error);
    g_test_message ("%s: bf16 asked, %s kept", clip_isa_name (isas[i]),
                    linear.precision == CLIP_PRECISION_BF16 ? "bf16" : "fp32");
    g_assert_cmpint (linear.precision, ==, real ? CLIP_PRECISION_BF16 : CLIP_PRECISION_FP32);
    clip_linear_clear (&linear);

    g_assert_true (clip_linear_init (&linear, isas[i], CLIP_PRECISION_FP32, 33, 7, &error));
    g_assert_cmpint (linear.precision, ==, CLIP_PRECISION_FP32);
    clip_linear_clear (&linear);
  }
}

/* QUICK_GELU on a linear without a bias, on the OpenBLAS path (a bias-less fc1). Run in a
 * subprocess: it once crashed (clip_bias_quick_gelu read the NULL bias). */
static void
test_linear_blas_quick_gelu_no_bias (void)
{
  if (g_test_subprocess ()) {
    static const Shape shape = { 15, 33, 64, LD_ODD, LD_PADDED, 1.0f, 1.0f, 1 };
    GRand *rand = g_rand_new_with_seed (7);
    ClipWorkspace ws;
    ClipLinear linear;
    Problem p;
    Tally tally = { 0 };
    ClipTowerConfig config;

    memset (&ws, 0, sizeof ws);
    memset (&config, 0, sizeof config);
    config.hidden_size = config.intermediate_size = shape.k;
    config.num_attention_heads = 1;
    g_assert_true (clip_workspace_reserve (&ws, &config, shape.m, 1, 2, 0));
    problem_init (&p, &shape, rand);
    pack_linear (&linear, &p, CLIP_ISA_BLAS, CLIP_PRECISION_FP32, FALSE);
    for (int n_threads = 1; n_threads <= 2; n_threads++)
      check_linear_call (&tally, "blas/fp32", &ws, &linear, &p, CLIP_EPILOGUE_QUICK_GELU, FALSE,
                         n_threads);
    /* wrong values fail the test below, as a crash does */
    if (tally.failures > 0)
      g_print ("WRONG VALUES: %d\n", tally.failures);
    clip_linear_clear (&linear);
    problem_clear (&p);
    clip_workspace_clear (&ws);
    g_rand_free (rand);
    return;
  }
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout_unmatched ("*WRONG VALUES*");
}

/* ------------------------------------------------------------------------------------------ */
/* clip_attention_head */

typedef struct {
  int head_dim, n, prefix;
  gboolean causal;
  int q0, q1;                /* the queries: own rows [q0, q1) (the last layer asks for one) */
} AttentionCase;

static void
check_attention (Tally *tally, ClipIsa isa, const AttentionCase *ac, GRand *rand)
{
  /* the layout of the encoder's qkv buffer: two heads of head_dim, the one under test second;
   * rows: the shared prefix, 3 rows of another sequence, this sequence's n rows, 2 rows more */
  const int d = ac->head_dim, n = ac->n, prefix = ac->prefix, q0 = ac->q0, q1 = ac->q1;
  const int hidden = 2 * d, column = d, gap = 3;
  const int start = prefix + gap, total = start + n + 2, n_keys = prefix + n;
  const size_t ld = clip_row_stride (3 * hidden), ld_out = clip_row_stride (hidden);

  /* everything NaN but what the head reads: q of its query rows, k and v of the prefix's and its
   * own rows, at its columns */
  float *qkv = g_new (float, (size_t) total * ld);
  fill_poison (qkv, (size_t) total * ld);
  for (int t = 0; t < total; t++) {
    gboolean own = t >= start && t < start + n, in_prefix = t < prefix;
    gboolean query = t >= start + q0 && t < start + q1;
    for (int c = 0; c < d; c++) {
      float *row = qkv + (size_t) t * ld + column + c;
      if (query)
        row[0] = uniform (rand, -0.6, 0.6);
      if (own || in_prefix) {
        row[hidden] = uniform (rand, -1.0, 1.0);
        row[2 * hidden] = uniform (rand, -1.0, 1.0);
      }
    }
  }
  float *out_buf = g_new (float, (size_t) total * ld_out);
  fill_poison (out_buf, (size_t) total * ld_out);
  size_t scratch_floats = clip_attention_scratch_floats (n, n_keys, d);
  float *scratch = g_new (float, scratch_floats + 64);
  fill_poison (scratch, scratch_floats + 64);

  const ClipSequence seq = { start, n, prefix };
  {
    DENORMALS_OFF (csr);
    clip_attention_head (isa, scratch, scratch_floats, qkv + column, qkv + hidden + column,
                         qkv + 2 * hidden + column, ld, d, &seq, q0, q1, ac->causal,
                         out_buf + column, ld_out);
    DENORMALS_RESTORE (csr);
  }

  char *where = g_strdup_printf ("attention %s head_dim=%d n=%d shared_prefix=%d%s queries "
                                 "[%d, %d)", clip_isa_name (isa), d, n, prefix,
                                 ac->causal ? " causal" : "", q0, q1);
  int bad = 0;
  for (int i = 0; i < 64; i++)
    if (!is_poison (scratch[scratch_floats + i]) && bad++ < 3)
      tally_fail (tally, "%s: scratch written past clip_attention_scratch_floats (%zu + %d)",
                  where, scratch_floats, i);

  double *scores = g_new (double, n_keys);
  for (int t = 0; t < total; t++) {
    int r = t - start;
    gboolean own = r >= q0 && r < q1;
    const float *q = qkv + (size_t) t * ld + column;
    int visible = ac->causal ? prefix + r + 1 : n_keys;
    double max = -INFINITY, sum = 0.0, a_max = 0.0;
    if (own) {
      for (int j = 0; j < visible; j++) {
        int key_row = j < prefix ? j : start + j - prefix;
        const float *key = qkv + (size_t) key_row * ld + hidden + column;
        double s = 0.0, a = 0.0;
        for (int c = 0; c < d; c++) {
          s += (double) q[c] * key[c];
          a += fabs ((double) q[c] * key[c]);
        }
        scores[j] = s;
        max = MAX (max, s);
        a_max = MAX (a_max, a);
      }
      for (int j = 0; j < visible; j++)
        sum += (scores[j] = exp (scores[j] - max));
    }
    for (size_t c = 0; c < ld_out; c++) {
      float got = out_buf[(size_t) t * ld_out + c];
      if (!own || c < (size_t) column || c >= (size_t) (column + d)) {
        if (!is_poison (got) && bad++ < 3)
          tally_fail (tally, "%s: out row %d column %zu is not the head's but was written "
                      "(%g)", where, t, c, got);
        continue;
      }
      double ref = 0.0, magnitude = 0.0;
      for (int j = 0; j < visible; j++) {
        int key_row = j < prefix ? j : start + j - prefix;
        double value = qkv[(size_t) key_row * ld + 2 * hidden + c];
        ref += scores[j] / sum * value;
        magnitude += scores[j] / sum * fabs (value);
      }
      /* the scores' fp32 error (relative to sum |q k|) moves the weights by as much, relative;
       * then the weighted sum's own rounding */
      double err = fabs ((double) got - ref);
      double tol = 2e-5 * (1.0 + a_max) * magnitude + 1e-6;
      if (!isfinite (got) || !(err <= tol)) {
        if (bad++ < 3)
          tally_fail (tally, "%s: own row %d column %zu = %.9g, reference %.9g (error %.3g, "
                      "tolerance %.3g)", where, r, c - column, got, ref, err, tol);
        continue;
      }
      tally->max_rel = MAX (tally->max_rel, err / magnitude);
      tally->max_ratio = MAX (tally->max_ratio, err / tol);
    }
  }
  if (bad > 3)
    tally_fail (tally, "%s: %d values wrong in all", where, bad);
  g_free (scores);
  g_free (where);
  g_free (scratch);
  g_free (out_buf);
  g_free (qkv);
}

static void
test_attention (gconstpointer data)
{
  ClipIsa isa = GPOINTER_TO_INT (data);

  if (!cpu_runs (isa)) {
    char *why = g_strdup_printf ("this CPU does not run the %s kernels", clip_isa_name (isa));
    g_test_skip (why);
    g_free (why);
    return;
  }

  static const int head_dims[] = { 64, 24 };
  static const int lengths[] = { 1, 7, 197 };
  static const int prefixes[] = { 0, 13 };
  GRand *rand = g_rand_new_with_seed (0xa77 + isa);
  Tally tally = { 0 };
  int n_cases = 0;

  for (guint h = 0; h < G_N_ELEMENTS (head_dims); h++)
    for (guint l = 0; l < G_N_ELEMENTS (lengths); l++)
      for (guint p = 0; p < G_N_ELEMENTS (prefixes); p++)
        for (int causal = 0; causal <= 1; causal++) {
          int n = lengths[l];
          /* every query; the last one alone (a text's pooled EOS; causal ones end the
           * sequence); the first alone (an image's class token) */
          AttentionCase all = { head_dims[h], n, prefixes[p], causal, 0, n };
          AttentionCase last = { head_dims[h], n, prefixes[p], causal, n - 1, n };
          AttentionCase first = { head_dims[h], n, prefixes[p], causal, 0, 1 };
          check_attention (&tally, isa, &all, rand);
          check_attention (&tally, isa, &last, rand);
          n_cases += 2;
          if (!causal) {
            check_attention (&tally, isa, &first, rand);
            n_cases++;
          }
        }
  g_rand_free (rand);

  g_test_message ("attention %s: %d cases, largest error %.3g of sum p |v| (%.2f of the "
                  "tolerance)", clip_isa_name (isa), n_cases, tally.max_rel, tally.max_ratio);
  if (tally.failures > 0) {
    g_test_message ("%d failures", tally.failures);
    g_test_fail ();
  }
}

/* ------------------------------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  static const LinearPath paths[] = {
    { CLIP_ISA_AVX512, CLIP_PRECISION_FP32 },
    { CLIP_ISA_AVX512, CLIP_PRECISION_BF16 },
    { CLIP_ISA_AVX2, CLIP_PRECISION_FP32 },
    { CLIP_ISA_BLAS, CLIP_PRECISION_FP32 },
  };
  static const ClipIsa isas[] = { CLIP_ISA_AVX512, CLIP_ISA_AVX2, CLIP_ISA_BLAS };

  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    char *name = g_strdup_printf ("/gemm/linear/%s/%s", clip_isa_name (paths[i].isa),
                                  paths[i].precision == CLIP_PRECISION_BF16 ? "bf16" : "fp32");
    g_test_add_data_func (name, &paths[i], test_linear);
    g_free (name);
  }
  g_test_add_func ("/gemm/linear/bf16-precision", test_linear_bf16_precision);
  g_test_add_func ("/gemm/linear/blas/quick-gelu-no-bias", test_linear_blas_quick_gelu_no_bias);
  for (guint i = 0; i < G_N_ELEMENTS (isas); i++) {
    char *name = g_strdup_printf ("/gemm/attention/%s", clip_isa_name (isas[i]));
    g_test_add_data_func (name, GINT_TO_POINTER (isas[i]), test_attention);
    g_free (name);
  }
  return g_test_run ();
}
