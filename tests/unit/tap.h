/* tap.h: a tiny Test Anything Protocol producer for the C unit tests of lib/,
 * so they run under prove(1) like the bats files. */
#ifndef LABPULSE_TAP_H
#define LABPULSE_TAP_H

/* Announce n tests up front, or call done_testing() at the end instead. */
void plan(int n);
/* Print the plan if none was given; returns the exit status for main():
 * 0 when every test passed and the count matched the plan. */
int done_testing(void);

/* Each returns 1 when the test passed, so a caller can add its own diag(). */
int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tap_is_int(long long got, long long want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int tap_is_str(const char *got, const char *want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* n tests that cannot run here, reported as passed with a # SKIP reason. */
void skip(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A comment line on stderr, where prove shows it. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stop now: prints "Bail out!" and exits 255. */
void bail_out(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define is_int(got, want, ...) \
	tap_is_int((long long)(got), (long long)(want), __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __VA_ARGS__)

#endif
