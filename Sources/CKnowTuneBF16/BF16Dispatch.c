// Implements the public entry points of KnowTuneBF16.h: CPU detection, path choice, the per-calling-thread
// workspace, the pthread split of the native kernel, and the fallback through cblas_sgemm; does not contain
// AVX-512 code (BF16NativeKernel.c does).
#include <cblas.h>
#include <cpuid.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "BF16Internal.h"
#include "KnowTuneBF16.h"

// MARK: - CPU detection and path choice

static int kt_detect_avx512bf16(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0;  // OSXSAVE
    unsigned xcr0Low, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0Low), "=d"(xcr0High) : "c"(0));
    // XMM, YMM, opmask, ZMM0-15 upper halves, ZMM16-31 enabled by the OS.
    if ((xcr0Low & 0xE6u) != 0xE6u) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const unsigned f = 1u << 16, bw = 1u << 30, vl = 1u << 31;
    if ((ebx & (f | bw | vl)) != (f | bw | vl)) return 0;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    return (eax >> 5) & 1;  // AVX512_BF16
}

static pthread_once_t kt_probe_once = PTHREAD_ONCE_INIT;
static int kt_native_available = 0;
static int kt_fallback_forced = 0;

static void kt_probe(void) {
    kt_native_available = kt_detect_avx512bf16();
    const char *forced = getenv("KNOWTUNE_BF16_PATH");
    kt_fallback_forced = forced != NULL && strcmp(forced, "fallback") == 0;
}

int kt_bf16_has_avx512bf16(void) {
    pthread_once(&kt_probe_once, kt_probe);
    return kt_native_available;
}

int kt_bf16_resolve_path(kt_bf16_path path) {
    pthread_once(&kt_probe_once, kt_probe);
    switch (path) {
    case KT_BF16_PATH_NATIVE: return kt_native_available ? KT_BF16_PATH_NATIVE : -1;
    case KT_BF16_PATH_FALLBACK: return KT_BF16_PATH_FALLBACK;
    default: return kt_native_available && !kt_fallback_forced ? KT_BF16_PATH_NATIVE : KT_BF16_PATH_FALLBACK;
    }
}

// MARK: - Workspace

// Grown to the largest call of this thread and kept: the products run hundreds of times per training step, and
// allocating megabytes per call would fault fresh pages each time.
static _Thread_local void *kt_workspace = NULL;
static _Thread_local size_t kt_workspace_size = 0;

void *kt_workspace_reserve(size_t bytes) {
    if (bytes <= kt_workspace_size) return kt_workspace;
    free(kt_workspace);
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    kt_workspace = aligned_alloc(64, rounded);
    kt_workspace_size = kt_workspace ? rounded : 0;
    return kt_workspace;
}

void kt_bf16_release_workspace(void) {
    free(kt_workspace);
    kt_workspace = NULL;
    kt_workspace_size = 0;
}

static size_t kt_align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// MARK: - Native path: threads

// Activation rows packed per chunk; chunks are taken first come, first served (packing is elementwise, so the
// distribution does not affect results).
#define KT_PACK_CHUNK_ROWS 32

typedef struct {
    const kt_bf16_problem *problem;
    uint16_t *packed;
    uint32_t *panels;  // one kt_panel_capacity() block per thread
    int threads;
    int rowChunks;
    atomic_int nextChunk;
    atomic_int packedChunks;
} kt_native_job;

typedef struct {
    kt_native_job *job;
    int index;
} kt_native_worker;

static void kt_pack_share(kt_native_job *job) {
    for (;;) {
        int chunk = atomic_fetch_add(&job->nextChunk, 1);
        if (chunk >= job->rowChunks) break;
        int begin = chunk * KT_PACK_CHUNK_ROWS, end = begin + KT_PACK_CHUNK_ROWS;
        if (end > job->problem->rows) end = job->problem->rows;
        kt_bf16_native_pack_activations(job->packed, job->problem, begin, end);
        atomic_fetch_add(&job->packedChunks, 1);
    }
}

// Columns of thread `index`: the columns cut into 16-wide units, split as evenly as units allow.
static void kt_column_share(const kt_native_job *job, int index, int *begin, int *end) {
    const int columns = job->problem->columns, units = (columns + 15) / 16;
    *begin = (int)((long)units * index / job->threads) * 16;
    *end = (int)((long)units * (index + 1) / job->threads) * 16;
    if (*end > columns) *end = columns;
}

static void kt_compute_share(kt_native_job *job, int index) {
    int begin, end;
    kt_column_share(job, index, &begin, &end);
    if (begin < end)
        kt_bf16_native_columns(job->problem, job->packed, begin, end, job->panels + (size_t)index * kt_panel_capacity());
}

static void kt_wait_for_packing(kt_native_job *job) {
    while (atomic_load(&job->packedChunks) < job->rowChunks) sched_yield();
}

static void *kt_native_worker_main(void *argument) {
    kt_native_worker *worker = argument;
    kt_pack_share(worker->job);
    kt_wait_for_packing(worker->job);
    kt_compute_share(worker->job, worker->index);
    return NULL;
}

// Below this many multiply-adds a call runs on the calling thread only (thread start-up would dominate).
#define KT_PARALLEL_MIN_WORK (1L << 21)

static int kt_native_run(const kt_bf16_problem *problem, int threads) {
    const int pairs = kt_pairs(problem->depth), units = (problem->columns + 15) / 16;
    if ((long)problem->rows * problem->depth * problem->columns < KT_PARALLEL_MIN_WORK) threads = 1;
    if (threads > units) threads = units;
    if (threads > 64) threads = 64;
    const size_t packedBytes = kt_align64((size_t)problem->rows * pairs * sizeof(uint32_t));
    const size_t panelBytes = kt_panel_capacity() * sizeof(uint32_t);
    char *workspace = kt_workspace_reserve(packedBytes + (size_t)threads * panelBytes);
    if (!workspace) return 0;

    kt_native_job job;
    job.problem = problem;
    job.packed = (uint16_t *)workspace;
    job.panels = (uint32_t *)(workspace + packedBytes);
    job.threads = threads;
    job.rowChunks = (problem->rows + KT_PACK_CHUNK_ROWS - 1) / KT_PACK_CHUNK_ROWS;
    atomic_init(&job.nextChunk, 0);
    atomic_init(&job.packedChunks, 0);

    pthread_t handles[64];
    kt_native_worker workers[64];
    int started[64] = {0};
    for (int t = 1; t < threads; t++) {
        workers[t] = (kt_native_worker){&job, t};
        started[t] = pthread_create(&handles[t], NULL, kt_native_worker_main, &workers[t]) == 0;
    }
    kt_pack_share(&job);
    kt_wait_for_packing(&job);
    kt_compute_share(&job, 0);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(handles[t], NULL);
        else kt_compute_share(&job, t);  // a thread that could not start: its columns, on this thread
    }
    return 1;
}

// MARK: - Fallback: bf16 tiles → fp32, cblas_sgemm

// W rows converted per sgemm call (a tile of about 4 MiB of fp32).
static int kt_fallback_tile_rows(int in, int out) {
    int tile = (1 << 20) / (in > 0 ? in : 1);
    if (tile < 1) tile = 1;
    return tile < out ? tile : out;
}

static int kt_fallback_run(const kt_bf16_problem *problem) {
    const int rows = problem->rows, depth = problem->depth, in = problem->in, out = problem->out;
    const int tile = kt_fallback_tile_rows(in, out);
    const size_t roundedBytes = problem->weightIsHalf ? 0 : kt_align64((size_t)rows * depth * sizeof(float));
    char *workspace = kt_workspace_reserve(roundedBytes + (size_t)tile * in * sizeof(float));
    if (!workspace) return 0;
    float *rounded = (float *)workspace, *weightTile = (float *)(workspace + roundedBytes);
    const size_t count = (size_t)rows * depth;
    // bf16 products see bf16-rounded activations (autocast); f16 weights are a storage format only.
    const float *activations = problem->activations;
    if (!problem->weightIsHalf) {
        kt_bf16_rounded_copy(rounded, problem->activations, count);
        activations = rounded;
    }
    for (int o = 0; o < out; o += tile) {
        const int tileRows = out - o < tile ? out - o : tile;
        if (problem->weightIsHalf)
            kt_f16_to_floats(weightTile, problem->weight + (size_t)o * in, (size_t)tileRows * in);
        else
            kt_bf16_to_floats(weightTile, problem->weight + (size_t)o * in, (size_t)tileRows * in);
        if (problem->weightTransposed) {
            // Y[:, o:o+tileRows] (+)= alpha · X · W[o:o+tileRows]ᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, tileRows, in, problem->alpha, activations, in,
                        weightTile, in, problem->accumulate ? 1.0f : 0.0f, problem->output + o, out);
        } else {
            // dX (+)= alpha · dY[:, o:o+tileRows] · W[o:o+tileRows]
            const float beta = (o == 0 && !problem->accumulate) ? 0.0f : 1.0f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, tileRows, problem->alpha, activations + o,
                        out, weightTile, in, beta, problem->output, in);
        }
    }
    return 1;
}

// MARK: - Public entry points

static int kt_run(kt_bf16_problem *problem, int threads, kt_bf16_path requested) {
    const int path = kt_bf16_resolve_path(requested);
    if (path < 0) return -1;
    if (problem->rows <= 0 || problem->columns <= 0) return path;
    if (problem->depth <= 0) {
        // An empty sum: C = alpha·0 (+ C).
        if (!problem->accumulate)
            memset(problem->output, 0, (size_t)problem->rows * problem->columns * sizeof(float));
        return path;
    }
    if (threads <= 0) threads = openblas_get_num_threads();
    if (threads < 1) threads = 1;
    int done = path == KT_BF16_PATH_NATIVE ? kt_native_run(problem, threads) : kt_fallback_run(problem);
    if (!done) abort();  // the workspace could not be allocated
    return path;
}

int kt_bf16_linear_with(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha,
                        int accumulate, int threads, kt_bf16_path path) {
    kt_bf16_problem problem = {Y, X, W, rows, in, out, in, out, 1, alpha, accumulate};
    return kt_run(&problem, threads, path);
}

int kt_bf16_linear_input_gradient_with(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out,
                                       float alpha, int accumulate, int threads, kt_bf16_path path) {
    kt_bf16_problem problem = {dX, dY, W, rows, out, in, in, out, 0, alpha, accumulate};
    return kt_run(&problem, threads, path);
}

void kt_bf16_linear(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha,
                    int accumulate) {
    kt_bf16_linear_with(Y, X, W, rows, in, out, alpha, accumulate, 0, KT_BF16_PATH_AUTOMATIC);
}

void kt_bf16_linear_input_gradient(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out,
                                   float alpha, int accumulate) {
    kt_bf16_linear_input_gradient_with(dX, dY, W, rows, in, out, alpha, accumulate, 0, KT_BF16_PATH_AUTOMATIC);
}

void kt_f16_linear(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha, int accumulate) {
    kt_bf16_problem problem = {Y, X, W, rows, in, out, in, out, 1, alpha, accumulate, 1};
    kt_run(&problem, 0, KT_BF16_PATH_FALLBACK);
}

void kt_f16_linear_input_gradient(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out, float alpha,
                                  int accumulate) {
    kt_bf16_problem problem = {dX, dY, W, rows, out, in, in, out, 0, alpha, accumulate, 1};
    kt_run(&problem, 0, KT_BF16_PATH_FALLBACK);
}

void kt_bf16_from_floats(uint16_t *destination, const float *source, size_t count) {
    if (kt_bf16_has_avx512bf16()) {
        kt_bf16_native_from_floats(destination, source, count);
        return;
    }
    for (size_t i = 0; i < count; i++) destination[i] = kt_bf16_round(source[i]);
}

void kt_bf16_to_floats(float *destination, const uint16_t *source, size_t count) {
    for (size_t i = 0; i < count; i++) destination[i] = kt_bf16_float(source[i]);
}
