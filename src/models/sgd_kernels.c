/* sgd_kernels.c - per-sample losses and SGD steps of biased MF, SVD++ and
 * BPR/WARP (see sgd.h for the loss of each). Kept apart from the models so
 * the tests can check every step against finite differences of its loss.
 *
 * DESIGN: parameters are float32 (half the memory traffic of double; the
 * accuracy is far below what SGD noise costs). Sums that decide a step
 * (dot products) use a fixed order of 8 partial sums, which GCC turns into
 * two SSE accumulators without -ffast-math, so the same inputs give the
 * same bits on every x86-64 build. Losses are evaluated in double; they
 * serve tests and logging only. */
#include <math.h>

#include "models/sgd.h"

float rf_sgd_dot(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[k + l] * b[k + l];
    float tail = 0;
    for (; k < n; k++) tail += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) +
           tail;
}

static double sq(const float *a, int n) {
    double s = 0;
    for (int k = 0; k < n; k++) s += (double)a[k] * a[k];
    return s;
}

/* ---- biased MF --------------------------------------------------------- */

double rf_mf_loss(float mu, float bu, float bi, const float *p, const float *q, int f, float r,
                  float reg, float reg_b) {
    double pred = (double)mu + bu + bi;
    for (int k = 0; k < f; k++) pred += (double)p[k] * q[k];
    double e = r - pred;
    return 0.5 * e * e + 0.5 * reg * (sq(p, f) + sq(q, f)) +
           0.5 * reg_b * ((double)bu * bu + (double)bi * bi);
}

float rf_mf_step(float mu, float *restrict bu, float *restrict bi, float *restrict p,
                 float *restrict q, int f, float r, float lr, float reg, float reg_b) {
    float e = r - (mu + *bu + *bi + rf_sgd_dot(p, q, f));
    *bu += lr * (e - reg_b * *bu);
    *bi += lr * (e - reg_b * *bi);
#define MF_STEP(k)                                                                            \
    do {                                                                                      \
        float pk = p[k], qk = q[k];                                                           \
        p[k] = pk + lr * (e * qk - reg * pk);                                                 \
        q[k] = qk + lr * (e * pk - reg * qk);                                                 \
    } while (0)
    int k = 0;
    for (; k + 8 <= f; k += 8)
        for (int l = 0; l < 8; l++) MF_STEP(k + l);
    for (; k < f; k++) MF_STEP(k);
#undef MF_STEP
    return e;
}

/* ---- implicit co-training ------------------------------------------------ */

double rf_implicit_loss(const float *p, const float *qi, const float *qj, int f, float w) {
    double x = 0;
    for (int k = 0; k < f; k++) x += (double)p[k] * ((double)qi[k] - qj[k]);
    return w * (x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)));
}

void rf_implicit_step(float *restrict p, float *restrict qi, float *restrict qj, int f, float w,
                      float lr) {
    float bi = 0, bj = 0;
    float coef = w * rf_sigmoid_neg(rf_pair_x(p, qi, qj, 0, 0, f));
    rf_pair_step(p, qi, qj, &bi, &bj, f, coef, lr, 0, 0);
}

/* ---- SVD++ ------------------------------------------------------------- */

double rf_svdpp_loss(float mu, float bu, float bi, const float *p, const float *q,
                     const float *Y, const int32_t *nset, int32_t nn, int f, float r, float reg,
                     float reg_b, float reg_y) {
    double alpha = nn > 0 ? 1.0 / sqrt((double)nn) : 0.0;
    double pred = (double)mu + bu + bi, ry = 0;
    for (int k = 0; k < f; k++) {
        double s = 0;
        for (int32_t t = 0; t < nn; t++) s += Y[(int64_t)nset[t] * f + k];
        pred += (double)q[k] * (p[k] + alpha * s);
    }
    for (int32_t t = 0; t < nn; t++) ry += sq(Y + (int64_t)nset[t] * f, f);
    double e = r - pred;
    return 0.5 * e * e + 0.5 * reg * (sq(p, f) + sq(q, f)) +
           0.5 * reg_b * ((double)bu * bu + (double)bi * bi) + 0.5 * reg_y * ry;
}

double rf_svdpp_user_pass(float mu, float *bu, float *bi, float *p, float *Q, float *Y,
                          const int32_t *nset, int32_t nn, const int32_t *items, const float *r,
                          int32_t n, int f, float lr, float reg, float reg_b, float reg_y,
                          float *s, float *c) {
    return rf_svdpp_user_pass_imp(mu, bu, bi, p, Q, Y, nset, nn, items, r, NULL, n, f, lr, reg,
                                  reg_b, reg_y, 0, s, c);
}

double rf_svdpp_user_pass_imp(float mu, float *bu, float *bi, float *p, float *Q, float *Y,
                              const int32_t *nset, int32_t nn, const int32_t *items,
                              const float *r, const int32_t *negs, int32_t n, int f, float lr,
                              float reg, float reg_b, float reg_y, float w, float *s, float *c) {
    if (n <= 0) return 0;
    const float alpha = nn > 0 ? (float)(1.0 / sqrt((double)nn)) : 0.0f;
    for (int k = 0; k < f; k++) s[k] = c[k] = 0;
    for (int32_t t = 0; t < nn; t++) {
        const float *y = Y + (int64_t)nset[t] * f;
        for (int k = 0; k < f; k++) s[k] += y[k];
    }
    for (int k = 0; k < f; k++) s[k] *= alpha;
    const float shrink = 1.0f - lr * reg_y;
    float a = 1.0f; /* y_j = a * y_j(start) + c */
    double sse = 0;
    for (int32_t x = 0; x < n; x++) {
        float *q = Q + (int64_t)items[x] * f;
        float *b_i = bi + items[x];
        /* r^ = mu + bu + bi + q.(p + s) */
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0;
        int k = 0;
        for (; k + 8 <= f; k += 8)
            for (int l = 0; l < 8; l++) acc[l] += q[k + l] * (p[k + l] + s[k + l]);
        for (; k < f; k++) tail += q[k] * (p[k] + s[k]);
        float dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                    ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
        float e = r[x] - (mu + *bu + *b_i + dot);
        sse += (double)e * e;
        *bu += lr * (e - reg_b * *bu);
        *b_i += lr * (e - reg_b * *b_i);
        const float le = lr * e, lea = le * alpha;
        for (k = 0; k < f; k++) {
            float pk = p[k], qk = q[k], sk = s[k];
            p[k] = pk + lr * (e * qk - reg * pk);
            q[k] = qk + lr * (e * (pk + sk) - reg * qk);
            /* every y_j += lr (e alpha q - reg_y y_j); the sum follows */
            c[k] = shrink * c[k] + lea * qk;
            s[k] = shrink * sk + le * qk;
        }
        a *= shrink;
        /* the implicit term moves p and q only: y, s and c are unaffected */
        if (negs && negs[x] >= 0 && w > 0)
            rf_implicit_step(p, q, Q + (int64_t)negs[x] * f, f, w, lr);
    }
    for (int32_t t = 0; t < nn; t++) {
        float *y = Y + (int64_t)nset[t] * f;
        for (int k = 0; k < f; k++) y[k] = a * y[k] + c[k];
    }
    return sse;
}

/* ---- pairwise (BPR / WARP) ---------------------------------------------- */

float rf_sigmoid_neg(float x) {
    if (x > 30) return expf(-x);
    return 1.0f / (1.0f + expf(x));
}

float rf_pair_x(const float *p, const float *qi, const float *qj, float bi, float bj, int f) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0;
    int k = 0;
    for (; k + 8 <= f; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += p[k + l] * (qi[k + l] - qj[k + l]);
    for (; k < f; k++) tail += p[k] * (qi[k] - qj[k]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) +
           tail + (bi - bj);
}

double rf_bpr_loss(const float *p, const float *qi, const float *qj, float bi, float bj, int f,
                   float reg, float reg_b) {
    double x = (double)bi - bj;
    for (int k = 0; k < f; k++) x += (double)p[k] * ((double)qi[k] - qj[k]);
    /* -ln sigmoid(x) = ln(1 + e^-x), stably */
    double nl = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
    return nl + 0.5 * reg * (sq(p, f) + sq(qi, f) + sq(qj, f)) +
           0.5 * reg_b * ((double)bi * bi + (double)bj * bj);
}

void rf_pair_step(float *restrict p, float *restrict qi, float *restrict qj, float *restrict bi,
                  float *restrict bj, int f, float coef, float lr, float reg, float reg_b) {
    *bi += lr * (coef - reg_b * *bi);
    *bj += lr * (-coef - reg_b * *bj);
#define PAIR_STEP(k)                                                                          \
    do {                                                                                      \
        float pk = p[k], ik = qi[k], jk = qj[k];                                              \
        p[k] = pk + lr * (coef * (ik - jk) - reg * pk);                                       \
        qi[k] = ik + lr * (coef * pk - reg * ik);                                             \
        qj[k] = jk + lr * (-coef * pk - reg * jk);                                            \
    } while (0)
    int k = 0;
    for (; k + 8 <= f; k += 8) /* fixed-width blocks: vectorised without -O3 */
        for (int l = 0; l < 8; l++) PAIR_STEP(k + l);
    for (; k < f; k++) PAIR_STEP(k);
#undef PAIR_STEP
}
