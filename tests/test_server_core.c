/* test_server_core.c - the server's pieces below HTTP: the config file, API
 * keys and option parsers (auth.c). The pruned top-k scan the server ranks
 * factor models with is tested by test_factor_topk.c. The HTTP routes are
 * driven end to end by test_server.sh and test_server_ops.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recfuse/mem.h"
#include "server/srv_int.h"
#include "testutil.h"

/* ---- config, keys, parsers --------------------------------------------- */

static void test_config_and_keys(void **state) {
    (void)state;
    char *dir = rf_test_tmpdir("server_cfg");
    char *path = rf_test_write_file(dir, "s.conf",
                                    "# comment\n\n read_key = reader-000001 \nwrite_key=writer-000001\n"
                                    "admin_key = admin-0000001\nread_key = reader-000002\n"
                                    "listen = 0.0.0.0:9090\nthreads = 3\nmax_body = 2M\n"
                                    "retrain_every = 2h\nwatch_ms = 0\nmodel = ials\ndata = /srv/shop\n");
    rf_server_config c;
    rf_server_config_default(&c);
    rf_err err;
    rf_err_clear(&err);
    assert_int_equal(c.port, 8080);
    assert_int_equal(rf_server_config_load(&c, path, &err), 0);
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 9090);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.max_body, 2 << 20);
    assert_int_equal(c.retrain_every, 7200);
    assert_int_equal(c.watch_ms, 0);
    assert_string_equal(c.model, "ials");
    assert_string_equal(c.data_dir, "/srv/shop");
    assert_int_equal(c.n_keys[RF_ROLE_READ], 2);
    assert_int_equal(srv_auth_open(&c), 0);
    assert_int_equal(srv_auth_role(&c, NULL), -1);
    assert_int_equal(srv_auth_role(&c, ""), -1);
    assert_int_equal(srv_auth_role(&c, "reader-000002"), RF_ROLE_READ);
    assert_int_equal(srv_auth_role(&c, "writer-000001"), RF_ROLE_WRITE);
    assert_int_equal(srv_auth_role(&c, "admin-0000001"), RF_ROLE_ADMIN);
    assert_int_equal(srv_auth_role(&c, "admin-000000"), -2);  /* prefix */
    assert_int_equal(srv_auth_role(&c, "admin-00000011"), -2); /* longer */
    assert_int_equal(srv_auth_role(&c, "Admin-0000001"), -2);
    free(path);

    const char *bad[][2] = {
        {"x = 1\n", "s.conf:1: x: unknown key"},
        {"read_key = short\n", "s.conf:1: read_key: a key must have 8"},
        {"\n\nthreads = 0\n", "s.conf:3: threads:"},
        {"max_body = lots\n", "s.conf:1: max_body:"},
        {"retrain_every = 1w\n", "s.conf:1: retrain_every:"},
        {"listen = host:port\n", "s.conf:1: listen:"},
        {"no equals sign\n", "s.conf:1: expected key = value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        path = rf_test_write_file(dir, "s.conf", bad[i][0]);
        rf_server_config_default(&c);
        rf_err_clear(&err);
        assert_int_equal(rf_server_config_load(&c, path, &err), RF_EPARSE);
        if (!strstr(err.msg, bad[i][1])) {
            printf("'%s' -> '%s' (want '%s')\n", bad[i][0], err.msg, bad[i][1]);
            fail();
        }
        free(path);
    }
    rf_server_config_default(&c);
    assert_int_equal(srv_auth_open(&c), 1);
    assert_int_equal(rf_server_config_load(&c, "/nonexistent/s.conf", &err), RF_EIO);

    int64_t x;
    assert_int_equal(rf_server_parse_duration("90", &x, NULL), 0);
    assert_int_equal(x, 90);
    assert_int_equal(rf_server_parse_duration("15m", &x, NULL), 0);
    assert_int_equal(x, 900);
    assert_int_equal(rf_server_parse_duration("1d", &x, NULL), 0);
    assert_int_equal(x, 86400);
    assert_int_not_equal(rf_server_parse_duration("h", &x, NULL), 0);
    assert_int_not_equal(rf_server_parse_duration("-5s", &x, NULL), 0);
    assert_int_equal(rf_server_parse_size("64K", &x, NULL), 0);
    assert_int_equal(x, 65536);
    assert_int_not_equal(rf_server_parse_size("99999999999G", &x, NULL), 0);
    assert_int_equal(rf_server_parse_listen(&c, ":0", NULL), 0);
    assert_int_equal(c.port, 0);
    assert_int_not_equal(rf_server_parse_listen(&c, "127.0.0.1:70000", NULL), 0);
    rf_test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
