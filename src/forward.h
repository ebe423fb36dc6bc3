/* forward.h — the pieces both towers' forward passes are made of. Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Threading model: a forward pass runs inside one OpenMP parallel region of the context's
 * n_threads threads. Every function here that takes a ClipTeam is called by ALL threads of the
 * team with their own `tid`; each does its share and the functions end with a barrier where the
 * next step reads what other threads wrote. The work-sharing lives inside those calls (GEMM
 * column panels and attention heads handed out from a shared counter), so the towers read as the
 * math. On the OpenBLAS path each thread calls OpenBLAS on its column chunk: the OpenMP build of
 * OpenBLAS runs single-threaded inside a parallel region, so the team's size is the exact number
 * of cores used.
 */
#ifndef CLIP_FORWARD_H
#define CLIP_FORWARD_H

#include "clip-private.h"
#include "gemm.h"

G_BEGIN_DECLS

/* A spinning barrier: the steps between barriers take 0.1-2 ms and the team's threads arrive
 * together, while sleeping and waking a thread through the kernel (as OpenMP's barrier does once
 * its short spin is over) was seen to cost milliseconds on virtual machines. Spins first, then
 * yields the core, so a descheduled team-mate is not starved. */
typedef struct {
  int arrived;               /* atomic */
  int generation;            /* atomic */
  int next_item;             /* atomic: work handed out in this phase (see clip_team_take) */
} ClipBarrier;

typedef struct {
  int tid;                   /* this thread's index in the team */
  int n_threads;             /* team size */
  ClipBarrier *barrier;      /* shared by the team */
} ClipTeam;

/* Half-open range [*begin, *end) of n items for this thread, in blocks of `align` items (the
 * last thread takes the remainder). For cheap steps whose cost is even. */
void clip_team_split (const ClipTeam *team, int n, int align, int *begin, int *end);
/* The next of a phase's n_items work items for the calling thread, or -1 when all are taken.
 * The GEMMs and attention are handed out this way rather than split up front: on a machine
 * whose cores also decode video, a thread that loses its core for a while takes fewer items
 * instead of holding the whole team at the next barrier. */
int clip_team_take (const ClipTeam *team, int n_items);
/* Ends a phase: waits for the whole team, and resets the phase's work counter. */
void clip_team_barrier (const ClipTeam *team);

/* Activation buffers of one forward pass, for up to capacity_tokens rows. Rows are
 * clip_row_stride(dim) floats apart (see gemm.h). Grown on demand, reused. */
typedef struct {
  int capacity_tokens;
  int capacity_hidden;
  int capacity_intermediate;
  int capacity_in;           /* widest GEMM input (bf16 copies) */
  size_t capacity_attention; /* floats per thread in attention */
  int n_threads;
  float *hidden;             /* [tokens][ld hidden] the residual stream */
  float *normed;             /* [tokens][ld hidden] LayerNorm output */
  float *qkv;                /* [tokens][ld 3 hidden] q | k | v; head h = columns h*head_dim.. */
  float *attn_out;           /* [tokens][ld hidden] concatenated heads */
  float *mlp;                /* [tokens][ld intermediate] */
  float *attention;          /* [n_threads][capacity_attention] per-thread scores and packed
                              * keys and values of one head */
  uint16_t *bf16_rows;       /* [tokens][ld widest input] a GEMM's input as bf16 */
  float *patches;            /* vision: [tokens][ld patch_dim] im2col of the image */
} ClipWorkspace;

/* Makes room for n_tokens rows of the given tower and sequences of up to max_seq_len tokens.
 * FALSE (and the workspace as it was) when the sizes overflow or memory runs out. */
gboolean clip_workspace_reserve (ClipWorkspace *ws, const ClipTowerConfig *config,
                                 int n_tokens, int max_seq_len, int n_threads, int patch_dim);
void clip_workspace_clear (ClipWorkspace *ws);

/* A sequence of tokens (rows) inside the packed activation buffers, for attention. A batch of
 * prompts that all begin with the same tokens (the template's "<bos> a photo of a") computes
 * those once: they are rows [0, shared_prefix) and every sequence's own rows continue them. */
typedef struct {
  int start;                 /* first row of this sequence's own tokens */
  int length;                /* its own rows */
  int shared_prefix;         /* rows [0, shared_prefix) come before them (0: none) */
} ClipSequence;

/* out[rows][ld_out] = epilogue(in[rows][ld_in] · W^T + bias). All threads of the team call it;
 * it hands the weight's column panels out to them and ends with a barrier. */
void clip_linear_forward (const ClipTeam *team, ClipWorkspace *ws, const ClipLinear *w,
                          const float *in, size_t ld_in, int rows, float *out, size_t ld_out,
                          ClipEpilogue epilogue);

/* LayerNorm of rows [0, n_rows) (ld apart, in and out alike), shared by the team; ends with a
 * barrier. */
void clip_layer_norm_rows (const ClipTeam *team, float *out, const float *in, size_t ld,
                           const float *weight, const float *bias, int n_rows, int dim,
                           float eps);

/* softmax(q k^T) v of one head over one sequence, into out's rows of the sequence (one thread).
 * q, k and v point at the head's first column; rows are ld apart. Queries are the sequence's own
 * rows [q0, q1) (causal: q1 must be its length); keys and values are the shared prefix's rows
 * followed by its own, so with the causal mask own row r sees the shared_prefix + r + 1 first
 * positions. */
void clip_attention_head (ClipIsa isa, float *scratch, size_t scratch_floats, const float *q,
                          const float *k, const float *v, size_t ld, int head_dim,
                          const ClipSequence *seq, int q0, int q1, gboolean causal, float *out,
                          size_t ld_out);
size_t clip_attention_scratch_floats (int max_queries, int max_keys, int head_dim);

/* The OpenBLAS path's GEMM: out[rows, n_out] = in · weight^T cut into column chunks, each one
 * OpenBLAS call (+= into out when accumulate). Also the floor clip-bench measures. */
int clip_blas_n_chunks (const ClipTeam *team, int n_out);
void clip_blas_chunk (const float *in, size_t ld_in, int rows, int n_in, const float *weight,
                      int n_out, float *out, size_t ld_out, gboolean accumulate, int chunk,
                      int n_chunks, int *col_begin, int *col_end);

/* One pre-norm encoder layer on the packed rows of ws->hidden:
 *   hidden += out_proj(attention(layer_norm1(hidden)))
 *   hidden += fc2(act(fc1(layer_norm2(hidden))))
 * Attention runs within each sequence (causal: token i sees tokens <= i). Returns the number of
 * rows of ws->hidden it leaves.
 *
 * pooled: NULL, or (for the last layer) per sequence the own row the tower pools (-1: none).
 * Nothing after the last layer reads any other row, so only those rows are computed past the
 * keys and values: their queries, their attention, out_proj and the MLP (the image tower's last
 * layer becomes ~7% of the work it was, exactly as HF's values). ws->hidden row j then holds the
 * j-th pooled row, in sequence order. */
int clip_encoder_layer (const ClipTeam *team, const ClipModel *model,
                        const ClipTowerConfig *config, const ClipLayerWeights *layer,
                        ClipWorkspace *ws, int n_rows, const ClipSequence *sequences,
                        int n_sequences, gboolean causal, const int *pooled);

/* Tower forward passes (all threads of the team call them). */
void clip_vision_forward (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                          const float *pixels, float *embedding);
void clip_text_forward (const ClipTeam *team, const ClipModel *model, ClipWorkspace *ws,
                        const int32_t *const *ids, const int *pooled_positions, int n_texts,
                        int shared_prefix, float *embeddings);

/* Position the text tower pools at, as HF: the first eos_token_id, or argmax(ids) in legacy
 * configs (eos_token_id == 2); the sequence end when no EOS is present. */
int clip_text_pooled_position (const ClipTowerConfig *config, const int32_t *ids, int n_ids);

G_END_DECLS

#endif /* CLIP_FORWARD_H */
