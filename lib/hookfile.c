/* hookfile.c: the hooks file (hookfile.h). Every fault is refused with its
 * line and what was expected, so that a daemon never runs on half of a
 * file; the secrets a line names are only read by hookfile_read_secret. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hookfile.h"

/* The words of a line, up to its comment. */
struct words {
	const char *w[6];
	size_t wl[6];
	int n;		/* how many were found, up to 6 (more are not kept) */
	int more;	/* there were more than 6 */
};

static int
fail(struct hookfile *hf, int kind, char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
fail(struct hookfile *hf, int kind, char *err, size_t errlen,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	hookfile_free(hf);
	return -kind;
}

static int
blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int
name_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
}

static int
has_prefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && strncasecmp(s, pre, k) == 0;
}

/* The URL part of s after its scheme: 0 when it is a webhook's URL, else
 * the reason in why. */
static int
check_url(const char *s, size_t n, char *why, size_t whylen)
{
	size_t k, i;

	if (n > HOOK_URL_MAX) {
		snprintf(why, whylen, "a URL longer than %d bytes",
		    HOOK_URL_MAX);
		return -1;
	}
	k = has_prefix(s, n, "https://") ? 8 : 7;
	if (k == n || s[k] == '/' || s[k] == '?' || s[k] == '#') {
		snprintf(why, whylen, "%.*s: a URL with a host after %.*s",
		    (int)n, s, (int)k, s);
		return -1;
	}
	/* libcurl and the request line take the URL as it is written */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x7e) {
			snprintf(why, whylen, "%.*s: a URL of printable ASCII "
			    "(percent-encode the rest)", (int)n, s);
			return -1;
		}
	return 0;
}

/* CHAT of telegram:CHAT: 0 (group set), else the reason in why. */
static int
check_chat(const char *s, size_t n, int *group, char *why, size_t whylen)
{
	const char *c = s + 9;
	size_t cl = n - 9, i;

	if (cl > 0 && c[0] == '@') {
		for (i = 1; i < cl; i++)
			if (!name_char((unsigned char)c[i]) || c[i] == '.' ||
			    c[i] == '-')
				break;
		if (i == cl && cl - 1 >= 5 && cl - 1 <= 32) {
			*group = 1;
			return 0;
		}
		if (i == cl) {
			snprintf(why, whylen, "%.*s: a @username is 5 to 32 "
			    "of A-Z a-z 0-9 _", (int)n, s);
			return -1;
		}
	} else if (cl > 0) {
		i = c[0] == '-';
		if (i < cl) {
			for (; i < cl; i++)
				if (c[i] < '0' || c[i] > '9')
					break;
			if (i == cl && cl - (c[0] == '-') <= 19) {
				*group = c[0] == '-';
				return 0;
			}
			if (i == cl) {
				snprintf(why, whylen, "%.*s: a chat id of at "
				    "most 19 digits", (int)n, s);
				return -1;
			}
		}
	}
	snprintf(why, whylen, "%.*s: a chat id (digits, - first for a group) "
	    "or @username", (int)n, s);
	return -1;
}

/* N/s, N/min or N/h, N a decimal number written as digits with an
 * optional fraction: the rate per second, or -1 outside 1/h to 1000/s. */
static double
parse_rate(const char *s, size_t n)
{
	double v = 0, scale = 1, per_hour;
	size_t i = 0;

	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (s[i] - '0');
	if (i == 0)
		return -1;
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			v += (s[i] - '0') * (scale /= 10);
		if (s[i - 1] == '.')
			return -1;
	}
	if (i == n || s[i] != '/')
		return -1;
	i++;
	/* compared per hour, where both bounds are whole numbers */
	if (n - i == 1 && s[i] == 's')
		per_hour = v * 3600;
	else if (n - i == 3 && memcmp(s + i, "min", 3) == 0)
		per_hour = v * 60;
	else if (n - i == 1 && s[i] == 'h')
		per_hour = v;
	else
		return -1;
	if (!(per_hour >= 1 && per_hour <= HOOK_RATE_MAX * 3600))
		return -1;
	return per_hour / 3600;
}

/* A whole number from 1 to HOOK_BURST_MAX, or -1. */
static long
parse_burst(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 4)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= HOOK_BURST_MAX ? v : -1;
}

/* Split line (n bytes) into words up to a comment; the offset of a control
 * byte outside a comment, or -1. */
static long
split(const char *line, size_t n, struct words *w)
{
	const char *p = line, *end = line + n, *q;

	w->n = 0;
	w->more = 0;
	while (p < end) {
		while (p < end && blank(*p))
			p++;
		if (p == end || *p == '#')
			break;
		for (q = p; q < end && !blank(*q); q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return (long)(q - line);
		if (w->n == 6)
			w->more = 1;
		else {
			w->w[w->n] = p;
			w->wl[w->n] = (size_t)(q - p);
			w->n++;
		}
		p = q;
	}
	return -1;
}

/* The options of a line into d: 0, or the reason in why. */
static int
parse_options(struct hookdest *d, const struct words *w, char *why,
    size_t whylen)
{
	static const char *const keys[] = { "rate", "burst", "secret-file",
	    "token-file" };
	int given[4] = { 0, 0, 0, 0 }, i, k;
	const char *s, *eq, *v;
	size_t n, kl, vl;
	char **path;

	for (i = 2; i < w->n; i++) {
		s = w->w[i];
		n = w->wl[i];
		if ((eq = memchr(s, '=', n)) == NULL) {
			snprintf(why, whylen, "%.*s: an option is KEY=VALUE",
			    (int)n, s);
			return -1;
		}
		kl = (size_t)(eq - s);
		v = eq + 1;
		vl = n - kl - 1;
		for (k = 0; k < 4; k++)
			if (strlen(keys[k]) == kl &&
			    memcmp(keys[k], s, kl) == 0)
				break;
		if (k == 4) {
			snprintf(why, whylen, "unknown option %.*s (rate=, "
			    "burst=, secret-file= or token-file=)", (int)n, s);
			return -1;
		}
		if (given[k]++) {
			snprintf(why, whylen, "%s= given twice", keys[k]);
			return -1;
		}
		switch (k) {
		case 0:
			if ((d->rate = parse_rate(v, vl)) < 0) {
				snprintf(why, whylen, "%.*s: a rate from 1/h "
				    "to 1000/s, as N/s, N/min or N/h", (int)n,
				    s);
				return -1;
			}
			break;
		case 1:
			if ((d->burst = parse_burst(v, vl)) < 0) {
				snprintf(why, whylen, "%.*s: a whole number "
				    "from 1 to %d", (int)n, s, HOOK_BURST_MAX);
				return -1;
			}
			break;
		default:
			if (k == 2 && d->kind != HOOK_WEBHOOK) {
				snprintf(why, whylen, "secret-file= is for "
				    "webhooks");
				return -1;
			}
			if (k == 3 && d->kind != HOOK_TELEGRAM) {
				snprintf(why, whylen, "token-file= is for "
				    "Telegram destinations");
				return -1;
			}
			if (vl == 0) {
				snprintf(why, whylen, "%s= without a file",
				    keys[k]);
				return -1;
			}
			path = k == 2 ? &d->secret_file : &d->token_file;
			if ((*path = strndup(v, vl)) == NULL)
				return -2;
			break;
		}
	}
	return 0;
}

static void
dest_free(struct hookdest *d)
{
	free(d->secret_file);
	free(d->token_file);
	d->secret_file = d->token_file = NULL;
}

/* One line's destination into d: 0, -1 with the reason in why, -2 when
 * memory ran out. */
static int
parse_dest(struct hookdest *d, const struct words *w, char *why,
    size_t whylen)
{
	const char *s = w->w[0];
	size_t n = w->wl[0], i;
	int rc;

	if (has_prefix(s, n, "https://") || has_prefix(s, n, "http://") ||
	    has_prefix(s, n, "telegram:")) {
		snprintf(why, whylen, "%.*s: a NAME first, then the "
		    "destination", (int)n, s);
		return -1;
	}
	if (n > HOOK_NAME_MAX) {
		snprintf(why, whylen, "a name longer than %d bytes",
		    HOOK_NAME_MAX);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!name_char((unsigned char)s[i])) {
			snprintf(why, whylen, "%.*s: a name is made of A-Z "
			    "a-z 0-9 _ . -", (int)n, s);
			return -1;
		}
	memcpy(d->name, s, n);
	d->name[n] = '\0';
	if (w->n < 2) {
		snprintf(why, whylen, "no destination after the name %s",
		    d->name);
		return -1;
	}
	s = w->w[1];
	n = w->wl[1];
	if (has_prefix(s, n, "https://") || has_prefix(s, n, "http://")) {
		if (check_url(s, n, why, whylen) < 0)
			return -1;
		d->kind = HOOK_WEBHOOK;
		d->rate = 10;
		d->burst = 10;
	} else if (has_prefix(s, n, "telegram:")) {
		if (check_chat(s, n, &d->group, why, whylen) < 0)
			return -1;
		s += 9;
		n -= 9;
		d->kind = HOOK_TELEGRAM;
		d->rate = 1;
		d->burst = 1;
	} else {
		snprintf(why, whylen, "%.*s: a destination is https://..., "
		    "http://... or telegram:CHAT", (int)(n > 80 ? 80 : n), s);
		return -1;
	}
	memcpy(d->target, s, n);
	d->target[n] = '\0';
	if ((rc = parse_options(d, w, why, whylen)) < 0)
		dest_free(d);
	return rc;
}

static int
name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

static const struct hookdest *sort_base;

static int
byname_cmp(const void *x, const void *y)
{
	const struct hookdest *a = &sort_base[*(const size_t *)x];
	const struct hookdest *b = &sort_base[*(const size_t *)y];

	return strcmp(a->name, b->name);
}

int
hookfile_parse(const char *text, size_t len, const char *fname,
    struct hookfile *hf, char *err, size_t errlen)
{
	const char *line, *end = text + len, *nl;
	struct hookdest d, *nd;
	struct words w;
	char why[512];
	size_t lineno = 0, n, cap = 0, i;
	long bad;
	int rc;

	hf->d = NULL;
	hf->n = 0;
	hf->byname = NULL;
	if (len > HOOKFILE_MAX_SIZE)
		return fail(hf, ERR_CONFIG, err, errlen, "%s: larger than 1 MiB",
		    fname);
	for (line = text; line < end; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')	/* a CRLF file */
			n--;
		if (n > HOOKFILE_MAX_LINE)
			return fail(hf, ERR_CONFIG, err, errlen, "%s:%zu: a line "
			    "longer than %d bytes", fname, lineno,
			    HOOKFILE_MAX_LINE);
		if ((bad = split(line, n, &w)) >= 0)
			return fail(hf, ERR_CONFIG, err, errlen, "%s:%zu: a "
			    "control byte (0x%02x) outside a comment; fields "
			    "are separated by spaces or tabs", fname, lineno,
			    (unsigned char)line[bad]);
		if (w.n == 0)
			continue;
		if (w.more)
			return fail(hf, ERR_CONFIG, err, errlen, "%s:%zu: more "
			    "than 6 fields (NAME DESTINATION and at most "
			    "rate=, burst=, secret-file=, token-file=)", fname,
			    lineno);
		memset(&d, 0, sizeof d);
		d.line = (int)lineno;
		if ((rc = parse_dest(&d, &w, why, sizeof why)) == -2)
			return fail(hf, ERR_OS, err, errlen, "%s: out of memory",
			    fname);
		if (rc < 0)
			return fail(hf, ERR_CONFIG, err, errlen, "%s:%zu: %s",
			    fname, lineno, why);
		for (i = 0; i < hf->n; i++)
			if (strcmp(hf->d[i].name, d.name) == 0) {
				dest_free(&d);
				return fail(hf, ERR_CONFIG, err, errlen,
				    "%s:%zu: destination %s named twice "
				    "(first on line %d)", fname, lineno,
				    d.name, hf->d[i].line);
			}
		if (hf->n == HOOKFILE_MAX_DEST) {
			dest_free(&d);
			return fail(hf, ERR_CONFIG, err, errlen, "%s: more than "
			    "%d destinations", fname, HOOKFILE_MAX_DEST);
		}
		if (hf->n == cap) {
			cap = cap ? cap * 2 : 8;
			if (cap > HOOKFILE_MAX_DEST)
				cap = HOOKFILE_MAX_DEST;
			if ((nd = realloc(hf->d, cap * sizeof *nd)) == NULL) {
				dest_free(&d);
				return fail(hf, ERR_OS, err, errlen,
				    "%s: out of memory", fname);
			}
			hf->d = nd;
		}
		hf->d[hf->n++] = d;
	}
	if (hf->n > 0) {
		if ((hf->byname = malloc(hf->n * sizeof *hf->byname)) == NULL)
			return fail(hf, ERR_OS, err, errlen, "%s: out of memory",
			    fname);
		for (i = 0; i < hf->n; i++)
			hf->byname[i] = i;
		sort_base = hf->d;
		qsort(hf->byname, hf->n, sizeof *hf->byname, byname_cmp);
		sort_base = NULL;
	}
	return 0;
}

/* Up to max bytes of path into a malloc'd *buf (one more byte, a NUL,
 * after them): its length, or -ERR_NOINPUT / -ERR_OS with err. */
static long
read_upto(const char *path, size_t max, char **buf, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, r;
	char *b;

	*buf = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ERR_NOINPUT;
	}
	if ((b = malloc(max + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ERR_OS;
	}
	while (n < max && (r = fread(b + n, 1, max - n, f)) > 0)
		n += r;
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		explicit_bzero(b, n);
		free(b);
		fclose(f);
		return -ERR_NOINPUT;
	}
	fclose(f);
	b[n] = '\0';
	*buf = b;
	return (long)n;
}

int
hookfile_load(const char *path, struct hookfile *hf, char *err,
    size_t errlen)
{
	char *buf;
	long n;
	int rc;

	hf->d = NULL;
	hf->n = 0;
	hf->byname = NULL;
	/* one byte more than the most there may be, to tell a larger file */
	if ((n = read_upto(path, HOOKFILE_MAX_SIZE + 1, &buf, err,
	    errlen)) < 0)
		return (int)n;
	rc = hookfile_parse(buf, (size_t)n, path, hf, err, errlen);
	free(buf);
	return rc;
}

const struct hookdest *
hookfile_find(const struct hookfile *hf, const char *name, size_t namelen)
{
	size_t lo = 0, hi = hf->n, mid;
	const struct hookdest *d;
	int c;

	if (hf->byname == NULL)
		return NULL;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		d = &hf->d[hf->byname[mid]];
		c = name_cmp(name, namelen, d->name, strlen(d->name));
		if (c == 0)
			return d;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void
hookfile_free(struct hookfile *hf)
{
	size_t i;

	for (i = 0; i < hf->n; i++)
		dest_free(&hf->d[i]);
	free(hf->d);
	free(hf->byname);
	hf->d = NULL;
	hf->n = 0;
	hf->byname = NULL;
}

int
hookfile_read_secret(const char *path, size_t max, char **buf, size_t *len,
    char *err, size_t errlen)
{
	const char *why = NULL;
	char *b;
	long got;
	size_t n;

	*buf = NULL;
	*len = 0;
	/* the most there may be, a CRLF, and one more to tell a longer file */
	if ((got = read_upto(path, max + 3, &b, err, errlen)) < 0)
		return (int)got;
	n = (size_t)got;
	if (n >= 2 && b[n - 2] == '\r' && b[n - 1] == '\n')
		n -= 2;
	else if (n >= 1 && b[n - 1] == '\n')
		n--;
	if (n == 0)
		why = "empty";
	else if (n > max)
		why = "too long";
	else if (memchr(b, '\0', n) != NULL)
		why = "a NUL byte in it";
	else if (memchr(b, '\n', n) != NULL)
		why = "a line break inside";
	if (why != NULL) {
		if (n > max)
			snprintf(err, errlen, "%s: longer than %zu bytes", path,
			    max);
		else
			snprintf(err, errlen, "%s: %s (one line of 1 to %zu "
			    "bytes expected)", path, why, max);
		explicit_bzero(b, (size_t)got);
		free(b);
		return -ERR_CONFIG;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}
