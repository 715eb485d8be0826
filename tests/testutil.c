/* testutil.c - temp dirs and file helpers for the tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
