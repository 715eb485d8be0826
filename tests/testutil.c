/* testutil.c - temp dirs and file helpers for the tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recfuse/csr.h"
#include "recfuse/dataset.h"
#include "recfuse/events.h"
#include "recfuse/error.h"
#include "recfuse/idmap.h"
#include "recfuse/mem.h"
#include "recfuse/model.h"
#include "recfuse/sparse.h"

char *rf_test_tmpdir(const char *tag) {
    static int counter = 0;
    const char *base = getenv("RF_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    size_t n = strlen(base) + strlen(tag) + 64;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s-%d-%d", base, tag, (int)getpid(), counter++);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

char *rf_test_write_file(const char *dir, const char *name, const char *text) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        free(p);
        return NULL;
    }
    fputs(text, f);
    fclose(f);
    return p;
}

char *rf_test_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

void rf_test_rmtree(const char *dir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) { /* best effort */
    }
}

static rf_idmap *named_ids(int32_t n, const char *prefix, const int32_t *name) {
    rf_idmap *m = NULL;
    assert_int_equal(rf_idmap_new(&m), 0);
    char buf[64];
    int32_t id;
    for (int32_t k = 0; k < n; k++) {
        snprintf(buf, sizeof buf, "%s%d", prefix, name ? name[k] : k);
        assert_int_equal(rf_idmap_put(m, buf, strlen(buf), &id, NULL), 0);
        assert_int_equal(id, k);
    }
    return m;
}

rf_test_ds *rf_test_ds_new(int32_t nu, const char *uprefix, const int32_t *uname, int32_t ni,
                           const char *iprefix, const int32_t *iname, int64_t n, const int32_t *r,
                           const int32_t *c, const float *v) {
    rf_test_ds *t = calloc(1, sizeof *t);
    t->d = calloc(1, sizeof *t->d);
    t->users = named_ids(nu, uprefix, uname);
    t->items = named_ids(ni, iprefix, iname);
    rf_dataset *d = t->d;
    assert_int_equal(rf_csr_from_coo(nu, ni, n, r, c, v, RF_FOLD_SUM, &d->ui, NULL), 0);
    assert_int_equal(rf_csr_transpose(d->ui, &d->iu), 0);
    d->n_users = nu;
    d->n_items = ni;
    d->users = t->users;
    d->items = t->items;
    d->ts_base = d->ts_max = 1000;
    d->ui_ts = calloc((size_t)(d->ui->nnz ? d->ui->nnz : 1), sizeof *d->ui_ts);
    return t;
}

void rf_test_ds_free(rf_test_ds *t) {
    if (!t) return;
    rf_csr_free(t->d->ui);
    rf_csr_free(t->d->iu);
    free(t->d->ui_ts);
    free(t->d);
    rf_idmap_free(t->users);
    rf_idmap_free(t->items);
    free(t);
}

struct rf_events *rf_test_events_items(int32_t ni) {
    rf_events *ev;
    assert_int_equal(rf_events_new(NULL, NULL, &ev), 0);
    char it[32];
    for (int32_t i = 0; i < ni; i++) {
        snprintf(it, sizeof it, "i%d", (int)i);
        int32_t id;
        assert_int_equal(rf_idmap_put(ev->items, it, strlen(it), &id, NULL), 0);
    }
    return ev;
}

void rf_test_model_alloc_failures(const rf_dataset *d, const char *name, const char *params,
                                  const char *tag) {
    char *dir = rf_test_tmpdir(tag);
    char path[512];
    snprintf(path, sizeof path, "%s/m.rfm", dir);
    rf_err err;
    int32_t it[2] = {1, 2};
    rf_hist h = {2, it, NULL, NULL};
    size_t bytes = (size_t)d->n_items * sizeof(float);
    float *out = malloc(bytes), *ref = malloc(bytes);
    rf_model *m = NULL;
    for (long k = 0; k < 1000; k++) { /* fit */
        assert_int_equal(rf_model_new(name, &m, NULL), 0);
        assert_int_equal(rf_model_set_params(m, params, NULL), 0);
        rf_mem_fail_after(k);
        int rc = rf_model_fit(m, d, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) break;
        assert_int_equal(rc, RF_ENOMEM);
        assert_int_equal(m->fitted, 0);
        rf_model_free(m);
        m = NULL;
    }
    assert_non_null(m);
    assert_int_equal(rf_model_score_all(m, -1, &h, ref, &err), 0);
    rf_mem_fail_after(0); /* scoring (fold-in allocates) */
    int rc = rf_model_score_all(m, -1, &h, out, &err);
    rf_mem_fail_after(-1);
    assert_true(rc == 0 || rc == RF_ENOMEM);
    assert_int_equal(rf_model_save(m, path, &err), 0);
    rf_model *l = NULL;
    for (long k = 0; k < 1000; k++) { /* load */
        rf_mem_fail_after(k);
        rc = rf_model_load(path, &l, &err);
        rf_mem_fail_after(-1);
        if (rc == 0) break;
        assert_int_equal(rc, RF_ENOMEM);
        assert_null(l);
    }
    assert_non_null(l);
    assert_int_equal(rf_model_score_all(l, -1, &h, out, &err), 0);
    assert_memory_equal(out, ref, bytes);
    rf_model_free(l);
    rf_model_free(m);
    free(out);
    free(ref);
    rf_test_rmtree(dir);
    free(dir);
}

int32_t rf_test_check_sparse(const rf_model *m, rf_sparse *acc, int32_t user, const rf_hist *h) {
    const int32_t ni = m->n_items;
    float *full = malloc((size_t)ni * sizeof *full), *base = malloc((size_t)ni * sizeof *base);
    uint8_t *seen = calloc((size_t)ni, 1);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(acc->n, 0);
    if (rf_model_score_all(m, user, h, full, &err) || rf_model_score_all(m, -1, NULL, base, &err) ||
        rf_model_score_sparse(m, user, h, acc, &err))
        fail_msg("%s: %s", m->ops->name, err.msg);
    assert_true(acc->n >= 0 && acc->n <= ni);
    for (int32_t t = 0; t < acc->n; t++) {
        int32_t j = acc->touched[t];
        assert_true(j >= 0 && j < ni);
        assert_int_equal(seen[j], 0); /* listed once */
        seen[j] = 1;
    }
    for (int32_t j = 0; j < ni; j++) {
        assert_int_equal(rf_sparse_has(acc, j), seen[j]);
        float want = full[j], got = seen[j] ? acc->val[j] : base[j];
        if (memcmp(&want, &got, sizeof want) != 0)
            fail_msg("%s user %d item %d (%s): sparse %.9g, score_all %.9g", m->ops->name,
                     (int)user, (int)j, seen[j] ? "reached" : "fallback", got, want);
    }
    int32_t n = acc->n;
    rf_sparse_clear(acc);
    assert_int_equal(acc->n, 0);
    for (int32_t j = 0; j < ni; j++) {
        assert_true(acc->val[j] == 0.0f);
        assert_int_equal(rf_sparse_has(acc, j), 0);
    }
    free(full);
    free(base);
    free(seen);
    return n;
}
