/* test_core.c - unit tests of src/core: errors, ids, CSR, top-k, rng,
 * parsing, binary files, parameter tables, events, allocation failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recfuse/binfile.h"
#include "recfuse/csr.h"
#include "recfuse/error.h"
#include "recfuse/events.h"
#include "recfuse/idmap.h"
#include "recfuse/log.h"
#include "recfuse/parallel.h"
#include "recfuse/progress.h"
#include "recfuse/mem.h"
#include "recfuse/params.h"
#include "recfuse/rng.h"
#include "recfuse/topk.h"
#include "recfuse/util.h"
#include "testutil.h"

static void test_errors(void **state) {
    (void)state;
    rf_err e;
    rf_err_clear(&e);
    assert_int_equal(e.code, RF_OK);
    assert_int_equal(rf_err_set(&e, RF_EPARSE, "f.tsv:%d: value: not a number", 3), RF_EPARSE);
    assert_string_equal(e.msg, "f.tsv:3: value: not a number");
    rf_err_prefix(&e, "import");
    assert_string_equal(e.msg, "import: f.tsv:3: value: not a number");
    assert_string_equal(rf_err_name(RF_ENOMEM), "RF_ENOMEM");
    assert_string_equal(rf_strerror(RF_ENOMEM), "out of memory");
    assert_string_equal(rf_strerror(-999), "unknown error");
    assert_int_equal(rf_err_set(NULL, RF_EIO, "x"), RF_EIO);
}

static void test_idmap(void **state) {
    (void)state;
    rf_idmap *m;
    assert_int_equal(rf_idmap_new(&m), 0);
    char buf[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(buf, sizeof buf, "user-%d", i);
        int32_t id;
        int added;
        assert_int_equal(rf_idmap_put(m, buf, strlen(buf), &id, &added), 0);
        assert_int_equal(id, i);
        assert_int_equal(added, 1);
    }
    for (int i = 0; i < 50000; i += 7) {
        snprintf(buf, sizeof buf, "user-%d", i);
        assert_int_equal(rf_idmap_find(m, buf, strlen(buf)), i);
        int32_t id;
        int added;
        assert_int_equal(rf_idmap_put(m, buf, strlen(buf), &id, &added), 0);
        assert_int_equal(added, 0);
        assert_int_equal(id, i);
        assert_string_equal(rf_idmap_str(m, i), buf);
    }
    assert_int_equal(rf_idmap_find(m, "nobody", 6), -1);
    assert_int_equal(rf_idmap_find(m, "user-1x", 6), 1); /* length-bounded lookup */
    rf_idmap *c;
    assert_int_equal(rf_idmap_clone(m, &c), 0);
    assert_int_equal(rf_idmap_size(c), 50000);
    assert_int_equal(rf_idmap_find(c, "user-49999", 10), 49999);
    rf_idmap_free(c);
    rf_idmap_free(m);
    rf_idmap_free(NULL);
}

static void test_csr_vs_dense(void **state) {
    (void)state;
    rf_rng r;
    rf_rng_seed(&r, 42);
    for (int trial = 0; trial < 20; trial++) {
        int R = 1 + (int)rf_rng_below(&r, 30), C = 1 + (int)rf_rng_below(&r, 30);
        int n = (int)rf_rng_below(&r, 300);
        int32_t *rows = malloc(sizeof(int32_t) * (n + 1)), *cols = malloc(sizeof(int32_t) * (n + 1));
        float *vals = malloc(sizeof(float) * (n + 1));
        double *sum = calloc((size_t)R * C, sizeof(double)), *mx = calloc((size_t)R * C, sizeof(double));
        double *last = calloc((size_t)R * C, sizeof(double));
        int *cnt = calloc((size_t)R * C, sizeof(int));
        int64_t *lastidx = calloc((size_t)R * C, sizeof(int64_t));
        for (int i = 0; i < n; i++) {
            rows[i] = (int32_t)rf_rng_below(&r, (uint64_t)R);
            cols[i] = (int32_t)rf_rng_below(&r, (uint64_t)C);
            vals[i] = (float)(1 + rf_rng_below(&r, 9));
            int k = rows[i] * C + cols[i];
            sum[k] += vals[i];
            if (!cnt[k] || vals[i] > mx[k]) mx[k] = vals[i];
            last[k] = vals[i];
            lastidx[k] = i;
            cnt[k]++;
        }
        for (int fold = 0; fold < 3; fold++) {
            rf_csr *m;
            int64_t *perm;
            assert_int_equal(rf_csr_from_coo(R, C, n, rows, cols, vals, (rf_fold)fold, &m, &perm), 0);
            int64_t nnz = 0;
            for (int k = 0; k < R * C; k++) nnz += cnt[k] > 0;
            assert_int_equal(m->nnz, nnz);
            for (int i = 0; i < R; i++)
                for (int64_t p = m->indptr[i]; p < m->indptr[i + 1]; p++) {
                    if (p > m->indptr[i]) assert_true(m->indices[p] > m->indices[p - 1]);
                    int k = i * C + m->indices[p];
                    double want = fold == 0 ? sum[k] : fold == 1 ? mx[k] : last[k];
                    assert_float_equal(m->data[p], want, 1e-4);
                    assert_int_equal(perm[p], lastidx[k]);
                }
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++) {
                    double want = cnt[i * C + j] ? (fold == 0 ? sum[i * C + j] : fold == 1 ? mx[i * C + j] : last[i * C + j]) : 0;
                    assert_float_equal(rf_csr_get(m, i, j), want, 1e-4);
                }
            rf_csr *t, *tt;
            assert_int_equal(rf_csr_transpose(m, &t), 0);
            assert_int_equal(t->nrows, C);
            assert_int_equal(rf_csr_transpose(t, &tt), 0);
            assert_memory_equal(tt->indptr, m->indptr, sizeof(int64_t) * (R + 1));
            if (m->nnz) {
                assert_memory_equal(tt->indices, m->indices, sizeof(int32_t) * m->nnz);
                assert_memory_equal(tt->data, m->data, sizeof(float) * m->nnz);
            }
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++) assert_float_equal(rf_csr_get(t, j, i), rf_csr_get(m, i, j), 0);
            rf_csr_free(t);
            rf_csr_free(tt);
            rf_csr_free(m);
            free(perm);
        }
        free(rows); free(cols); free(vals); free(sum); free(mx); free(last); free(cnt); free(lastidx);
    }
    int32_t bad_r = 5, bad_c = 0;
    rf_csr *m;
    assert_int_equal(rf_csr_from_coo(3, 3, 1, &bad_r, &bad_c, NULL, RF_FOLD_SUM, &m, NULL), RF_ERANGE);
}

/* Large enough for the parallel transpose: equals the serial result
 * (1 thread) and transposing twice gives the matrix back. */
static void test_csr_transpose_parallel(void **state) {
    (void)state;
    rf_rng r;
    rf_rng_seed(&r, 99);
    int64_t n = 300000;
    int32_t R = 5000, C = 700;
    int32_t *rows = malloc(sizeof(int32_t) * n), *cols = malloc(sizeof(int32_t) * n);
    float *vals = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        rows[i] = (int32_t)rf_rng_below(&r, (uint64_t)R);
        cols[i] = (int32_t)rf_rng_below(&r, (uint64_t)C);
        vals[i] = (float)rf_rng_uniform(&r);
    }
    rf_csr *m, *t1, *t2, *back;
    assert_int_equal(rf_csr_from_coo(R, C, n, rows, cols, vals, RF_FOLD_SUM, &m, NULL), 0);
    rf_set_threads(1);
    assert_int_equal(rf_csr_transpose(m, &t1), 0);
    rf_set_threads(3);
    assert_int_equal(rf_csr_transpose(m, &t2), 0);
    assert_int_equal(rf_csr_transpose(t2, &back), 0);
    rf_set_threads(0);
    assert_memory_equal(t1->indptr, t2->indptr, sizeof(int64_t) * (C + 1));
    assert_memory_equal(t1->indices, t2->indices, sizeof(int32_t) * m->nnz);
    assert_memory_equal(t1->data, t2->data, sizeof(float) * m->nnz);
    assert_memory_equal(back->indptr, m->indptr, sizeof(int64_t) * (R + 1));
    assert_memory_equal(back->indices, m->indices, sizeof(int32_t) * m->nnz);
    assert_memory_equal(back->data, m->data, sizeof(float) * m->nnz);
    rf_csr_free(m);
    rf_csr_free(t1);
    rf_csr_free(t2);
    rf_csr_free(back);
    free(rows);
    free(cols);
    free(vals);
}

static int cmp_desc(const void *a, const void *b) {
    const rf_scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id - y->id;
}

static void test_topk(void **state) {
    (void)state;
    rf_rng r;
    rf_rng_seed(&r, 7);
    for (int trial = 0; trial < 200; trial++) {
        int n = (int)rf_rng_below(&r, 200), k = (int)rf_rng_below(&r, 30);
        float *s = malloc(sizeof(float) * (n + 1));
        uint8_t *ex = calloc((size_t)n + 1, 1);
        rf_scored *all = malloc(sizeof(rf_scored) * (n + 1)), *out = malloc(sizeof(rf_scored) * (k + 1));
        int m = 0;
        for (int i = 0; i < n; i++) {
            s[i] = (float)rf_rng_below(&r, 20); /* many ties */
            if (rf_rng_below(&r, 10) == 0) s[i] = -INFINITY;
            ex[i] = rf_rng_below(&r, 5) == 0;
            if (!ex[i] && s[i] != -INFINITY) all[m++] = (rf_scored){s[i], i};
        }
        qsort(all, (size_t)m, sizeof *all, cmp_desc);
        int got = rf_topk_select(s, n, k, ex, out);
        assert_int_equal(got, m < k ? m : k);
        for (int i = 0; i < got; i++) {
            assert_int_equal(out[i].id, all[i].id);
            assert_float_equal(out[i].score, all[i].score, 0);
        }
        free(s); free(ex); free(all); free(out);
    }
}

static void test_rng(void **state) {
    (void)state;
    rf_rng a, b;
    rf_rng_seed(&a, 123);
    rf_rng_seed(&b, 123);
    for (int i = 0; i < 1000; i++) assert_true(rf_rng_next(&a) == rf_rng_next(&b));
    rf_rng_stream(&a, 1, 0);
    rf_rng_stream(&b, 1, 1);
    assert_true(rf_rng_next(&a) != rf_rng_next(&b));
    double sum = 0, sq = 0;
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = rf_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        hist[(int)(u * 10)]++;
        double z = rf_rng_normal(&a);
        sum += z;
        sq += z * z;
        assert_true(rf_rng_below(&a, 7) < 7);
    }
    for (int i = 0; i < 10; i++) assert_in_range(hist[i], 9500, 10500);
    assert_true(fabs(sum / 1e5) < 0.02);
    assert_true(fabs(sq / 1e5 - 1) < 0.03);
    double g = 0;
    for (int i = 0; i < 20000; i++) g += rf_rng_gamma(&a, 2.5);
    assert_true(fabs(g / 20000 - 2.5) < 0.08);
}

static void test_parse(void **state) {
    (void)state;
    int64_t v;
    double d;
    assert_int_equal(rf_parse_i64("123", 3, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(rf_parse_i64("-9", 2, &v), 0);
    assert_int_equal(v, -9);
    assert_int_equal(rf_parse_i64("12a", 3, &v), RF_EPARSE);
    assert_int_equal(rf_parse_i64("", 0, &v), RF_EPARSE);
    assert_int_equal(rf_parse_i64("99999999999999999999", 20, &v), RF_ERANGE);
    assert_int_equal(rf_parse_double("4.5", 3, &d), 0);
    assert_float_equal(d, 4.5, 0);
    assert_int_equal(rf_parse_double("4.5x", 4, &d), RF_EPARSE);
    assert_int_equal(rf_parse_double("nan", 3, &d), RF_ERANGE);
    assert_int_equal(rf_parse_double(" 1", 2, &d), RF_EPARSE);
    assert_int_equal(rf_parse_time("881250949", 9, &v), 0);
    assert_int_equal(v, 881250949);
    assert_int_equal(rf_parse_time("881250949.75", 12, &v), 0);
    assert_int_equal(v, 881250949);
    assert_int_equal(rf_parse_time("1970-01-02", 10, &v), 0);
    assert_int_equal(v, 86400);
    assert_int_equal(rf_parse_time("2024-03-01T12:00:00Z", 20, &v), 0);
    assert_int_equal(v, 1709294400);
    assert_int_equal(rf_parse_time("2024-03-01 12:00:00", 19, &v), 0);
    assert_int_equal(v, 1709294400);
    assert_int_equal(rf_parse_time("2024-03-01T14:00:00+02:00", 25, &v), 0);
    assert_int_equal(v, 1709294400);
    assert_int_equal(rf_parse_time("2024-03-01T12:00:00.123Z", 24, &v), 0);
    assert_int_equal(v, 1709294400);
    assert_int_equal(rf_parse_time("2023-02-29", 10, &v), RF_EPARSE);
    assert_int_equal(rf_parse_time("yesterday", 9, &v), RF_EPARSE);
    assert_int_equal(rf_parse_time("2024-13-01", 10, &v), RF_EPARSE);
    char buf[32];
    rf_format_time(1709294400, buf, sizeof buf);
    assert_string_equal(buf, "2024-03-01T12:00:00Z");
    assert_true(rf_natural_cmp("2", 1, "10", 2) < 0);
    assert_true(rf_natural_cmp("010", 3, "9", 1) > 0);
    assert_true(rf_natural_cmp("a2", 2, "a10", 3) > 0); /* bytewise for non-numbers */
    assert_int_equal(rf_natural_cmp("7", 1, "007", 3), 0);
}

static void test_binfile(void **state) {
    (void)state;
    char *dir = rf_test_tmpdir("binfile");
    char path[512];
    snprintf(path, sizeof path, "%s/m.bin", dir);
    rf_err e;
    rf_writer *w;
    assert_int_equal(rf_writer_open(path, "RFTEST\0\0", 2, &w, &e), 0);
    float arr[1000];
    for (int i = 0; i < 1000; i++) arr[i] = (float)i * 0.5f;
    rf_writer_str(w, "hello");
    rf_writer_i64(w, -77);
    rf_writer_put(w, arr, sizeof arr);
    assert_int_equal(rf_writer_commit(w, &e), 0);

    rf_reader *r;
    uint32_t ver;
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 2, &ver, &r, &e), 0);
    assert_int_equal(ver, 2);
    char *s;
    int64_t v;
    float back[1000];
    assert_int_equal(rf_reader_str(r, &s, 100, &e), 0);
    assert_string_equal(s, "hello");
    rf_free(s);
    assert_int_equal(rf_reader_i64(r, &v, &e), 0);
    assert_int_equal(v, -77);
    assert_int_equal(rf_reader_get(r, back, sizeof back, &e), 0);
    assert_memory_equal(arr, back, sizeof arr);
    assert_int_equal(rf_reader_remaining(r), 0);
    assert_int_equal(rf_reader_get(r, back, 1, &e), RF_EFORMAT);
    rf_reader_close(r);

    /* Wrong magic, newer version, flipped byte, truncation, missing file. */
    assert_int_equal(rf_reader_open(path, "OTHER\0\0\0", 2, &ver, &r, &e), RF_EFORMAT);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 1, &ver, &r, &e), RF_EFORMAT);
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n);
    assert_int_equal(fread(data, 1, (size_t)n, f), n);
    fclose(f);
    data[100] ^= 1;
    f = fopen(path, "wb");
    fwrite(data, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 2, &ver, &r, &e), RF_ECORRUPT);
    assert_non_null(strstr(e.msg, "checksum"));
    data[100] ^= 1;
    f = fopen(path, "wb");
    fwrite(data, 1, (size_t)n - 20, f);
    fclose(f);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 2, &ver, &r, &e), RF_EFORMAT);
    free(data);
    snprintf(path, sizeof path, "%s/missing.bin", dir);
    assert_int_equal(rf_reader_open(path, "RFTEST\0\0", 2, &ver, &r, &e), RF_ENOTFOUND);
    /* Unwritable location. */
    assert_int_equal(rf_writer_open("/nonexistent-dir/x.bin", "RFTEST\0\0", 1, &w, &e), RF_EIO);
    rf_test_rmtree(dir);
    free(dir);
}

typedef struct toy_params {
    int k;
    double alpha;
    int sim;
} toy_params;

static const rf_param_def toy_defs[] = {
    {"k", RF_P_INT, offsetof(toy_params, k), 100, 1, 10000, NULL, "neighbours"},
    {"alpha", RF_P_DOUBLE, offsetof(toy_params, alpha), 0.5, 0, 1, NULL, "mix"},
    {"sim", RF_P_ENUM, offsetof(toy_params, sim), 0, 0, 2, "cosine,jaccard,bm25", "similarity"},
    {0}};

static void test_params(void **state) {
    (void)state;
    toy_params p;
    rf_err e;
    rf_params_defaults(toy_defs, &p);
    assert_int_equal(p.k, 100);
    assert_float_equal(p.alpha, 0.5, 0);
    assert_int_equal(rf_params_apply(toy_defs, &p, "k=20,sim=bm25 alpha=0.25", &e), 0);
    assert_int_equal(p.k, 20);
    assert_int_equal(p.sim, 2);
    char buf[256];
    rf_params_format(toy_defs, &p, buf, sizeof buf);
    assert_string_equal(buf, "k=20 alpha=0.25 sim=bm25");
    toy_params q;
    rf_params_defaults(toy_defs, &q);
    assert_int_equal(rf_params_apply(toy_defs, &q, buf, &e), 0);
    assert_int_equal(p.k, q.k);
    assert_float_equal(p.alpha, q.alpha, 0);
    assert_int_equal(p.sim, q.sim);
    assert_int_equal(rf_params_set(toy_defs, &p, "k", "0", &e), RF_ERANGE);
    assert_int_equal(rf_params_set(toy_defs, &p, "k", "1.5", &e), RF_EPARSE);
    assert_int_equal(rf_params_set(toy_defs, &p, "sim", "euclid", &e), RF_EPARSE);
    assert_int_equal(rf_params_set(toy_defs, &p, "beta", "1", &e), RF_ENOTFOUND);
    assert_non_null(strstr(e.msg, "known: k, alpha, sim"));
}

static void test_events_and_oom(void **state) {
    (void)state;
    rf_events *e;
    assert_int_equal(rf_events_new(NULL, NULL, &e), 0);
    for (int i = 0; i < 5000; i++) {
        char u[16], it[16];
        snprintf(u, sizeof u, "u%d", i % 10);
        snprintf(it, sizeof it, "i%d", i % 77);
        assert_int_equal(rf_events_push_str(e, u, it, RF_EV_VIEW, 1, i), 0);
    }
    assert_int_equal(e->n, 5000);
    assert_int_equal(rf_idmap_size(e->users), 10);
    assert_int_equal(rf_idmap_size(e->items), 77);
    rf_events_free(e);
    assert_int_equal(rf_event_type_parse("Purchase", 8), RF_EV_PURCHASE);
    assert_int_equal(rf_event_type_parse("add_to_cart", 11), RF_EV_CART);
    assert_int_equal(rf_event_type_parse("like", 4), -1);
    assert_string_equal(rf_event_type_name(RF_EV_RATING), "rating");

    /* Every allocation failure in building a map and a matrix is reported. */
    for (long fail = 0; fail < 40; fail++) {
        rf_mem_fail_after(fail);
        rf_idmap *m = NULL;
        int rc = rf_idmap_new(&m);
        for (int i = 0; rc == 0 && i < 3000; i++) {
            char b[16];
            snprintf(b, sizeof b, "%d", i);
            int32_t id;
            rc = rf_idmap_put(m, b, strlen(b), &id, NULL);
        }
        int32_t rows[3] = {0, 1, 1}, cols[3] = {1, 0, 1};
        rf_csr *c = NULL, *t = NULL;
        if (rc == 0) rc = rf_csr_from_coo(2, 2, 3, rows, cols, NULL, RF_FOLD_SUM, &c, NULL);
        if (rc == 0) rc = rf_csr_transpose(c, &t);
        rf_mem_fail_after(-1);
        assert_true(rc == 0 || rc == RF_ENOMEM);
        rf_csr_free(t);
        rf_csr_free(c);
        rf_idmap_free(m);
    }
}

static char g_logged[4096];
static int g_log_count;
static void capture(void *ud, rf_log_level level, const char *line) {
    (void)ud;
    (void)level;
    snprintf(g_logged, sizeof g_logged, "%s", line);
    g_log_count++;
}

static void test_log_progress_parallel(void **state) {
    (void)state;
    rf_log_set_sink(capture, NULL);
    rf_log_set_level(RF_LOG_INFO);
    g_log_count = 0;
    rf_log(RF_LOG_DEBUG, "hidden", "x=%d", 1);
    assert_int_equal(g_log_count, 0);
    rf_log(RF_LOG_WARN, "import.done", "file=%s rows=%d", "a.tsv", 42);
    assert_int_equal(g_log_count, 1);
    assert_non_null(strstr(g_logged, "level=warn event=import.done file=a.tsv rows=42"));
    assert_true(strncmp(g_logged, "ts=", 3) == 0);
    rf_log_set_sink(NULL, NULL);
    assert_int_equal(rf_log_level_parse("error"), RF_LOG_ERROR);
    assert_int_equal(rf_log_level_parse("loud"), -1);

    /* Not a terminal (tests run with stderr redirected by ctest) or quiet:
     * the bar draws nothing, and every call accepts NULL. */
    rf_progress_set_quiet(1);
    assert_int_equal(rf_progress_enabled(), 0);
    rf_progress *p = rf_progress_start("work", 100);
    for (int i = 0; i < 100; i++) rf_progress_add(p, 1);
    rf_progress_finish(p);
    rf_progress_set(NULL, 5);
    rf_progress_finish(NULL);
    rf_progress_set_quiet(0);

    rf_set_threads(3);
    assert_int_equal(rf_threads(), 3);
    rf_set_threads(0);
    assert_true(rf_threads() >= 1);
    int64_t covered = 0, prev_hi = 0;
    for (int p2 = 0; p2 < 7; p2++) {
        int64_t lo, hi;
        rf_chunk(100, 7, p2, &lo, &hi);
        assert_int_equal(lo, prev_hi);
        covered += hi - lo;
        prev_hi = hi;
    }
    assert_int_equal(covered, 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),  cmocka_unit_test(test_idmap),
        cmocka_unit_test(test_csr_vs_dense), cmocka_unit_test(test_csr_transpose_parallel), cmocka_unit_test(test_topk),
        cmocka_unit_test(test_rng),     cmocka_unit_test(test_parse),
        cmocka_unit_test(test_binfile), cmocka_unit_test(test_params),
        cmocka_unit_test(test_events_and_oom), cmocka_unit_test(test_log_progress_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
