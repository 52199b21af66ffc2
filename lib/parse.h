/* parse.h: numbers, sizes and durations from the command line, range-checked. */
#ifndef LABPULSE_PARSE_H
#define LABPULSE_PARSE_H

#include <stddef.h>

/* Each returns 0 on success, -1 with a reason in err. */
int parse_long(const char *s, long min, long max, long *out,
    char *err, size_t errlen);
/* "1048576", "512k", "1MiB", "2M": bytes. */
int parse_size(const char *s, long min, long max, long *out,
    char *err, size_t errlen);
/* "30s", "500ms", "2m", a bare number is seconds: milliseconds out. */
int parse_duration_ms(const char *s, long min, long max, long *out,
    char *err, size_t errlen);

/* A plain decimal from min to max, fractions allowed; no sign, no unit,
 * nothing after it. The reason is "invalid number 'S'". */
int parse_real(const char *s, double min, double max, double *out,
    char *err, size_t errlen);

/* The value of the hex digit c, or -1 when c is none. */
int parse_hexdigit(int c);

/* The reason getopt_long (with opterr = 0 and an optstring starting with
 * ':') refused an option: ch is what it returned, optind and argv its state
 * after it. */
void parse_option_error(int ch, int optind, char *const argv[],
    char *err, size_t errlen);

#endif
