# testlib.sh - shared set-up for the shell tests (source it):
#   rf_tmpdir NAME   a fresh temp dir in $T (under $RF_TEST_TMP if set),
#                    removed on exit
#   ok MSG / bad MSG one check passed / failed (counted in $pass, $fails)
#   rf_finish        prints "N passed, N failed" and returns non-zero on failure
pass=0
fails=0
rf_tmpdir() {
  if [ -n "${RF_TEST_TMP:-}" ]; then
    mkdir -p "$RF_TEST_TMP"
    T=$(mktemp -d "$RF_TEST_TMP/$1.XXXXXX")
  else
    T=$(mktemp -d)
  fi
  trap 'rm -rf "$T"' EXIT
}
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }
rf_finish() {
  echo "$pass passed, $fails failed"
  [ "$fails" -eq 0 ]
}
