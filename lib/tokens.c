/* tokens.c: ingest's token file (tokens.h). Tokens are kept only as SHA-256
 * digests, and a lookup compares the presented one with every digest, so
 * neither the time taken nor memory shows which token matched. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "tokens.h"
#include "utf8.h"

#define TOKENS_LINE_MAX		1023	/* bytes in a line, comments too */
#define TOKENS_TOKEN_MAX	256
#define TOKENS_CLASS_MAX	128
#define TOKENS_FILE_MAX		(16L << 20)

struct token {
	uint8_t digest[SHA256_DIGEST_SIZE];
	size_t line;
	char *class_id;
};

struct tokens {
	struct token *v;
	size_t n, cap;
};

static void
digest(const char *s, size_t len, uint8_t out[SHA256_DIGEST_SIZE])
{
	struct sha256_ctx h;

	sha256_init(&h);
	sha256_update(&h, len, (const uint8_t *)s);
	sha256_digest(&h, SHA256_DIGEST_SIZE, out);
}

void
tokens_hex(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void
tokens_sha256_hex(const void *data, size_t len, char hex[TOKENS_HEX_SIZE])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	digest(data, len, d);
	tokens_hex(d, sizeof d, hex);
}

void
tokens_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
    size_t len, char hex[TOKENS_HEX_SIZE])
{
	struct hmac_sha256_ctx ctx;
	uint8_t mac[SHA256_DIGEST_SIZE];

	hmac_sha256_set_key(&ctx, keylen, key);
	hmac_sha256_update(&ctx, len, data);
	hmac_sha256_digest(&ctx, sizeof mac, mac);
	tokens_hex(mac, sizeof mac, hex);
}

static struct tokens *
bad(struct tokens *t, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct tokens *
bad(struct tokens *t, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	tokens_free(t);
	return NULL;
}

/* The first byte of s[0..n) that is a control byte, or not UTF-8 when
 * utf8 is set; -1 when none. */
static long
bad_byte(const unsigned char *s, size_t n, int utf8)
{
	size_t i = 0, q;

	while (i < n) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return (long)i;
		if (s[i] < 0x80 || !utf8) {
			i++;
			continue;
		}
		if ((q = utf8_seq(s, n, i)) == 0)
			return (long)i;
		i += q;
	}
	return -1;
}

/* Refuse the file for a fault of line lineno. */
static struct tokens *
bad_line(struct tokens *t, char *err, size_t errlen, const char *name,
    size_t lineno, const char *why)
{
	return bad(t, err, errlen, "%s:%zu: %s", name, lineno, why);
}

static int
blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

struct tokens *
tokens_parse(const char *text, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct tokens *t = calloc(1, sizeof *t);
	const char *line = text, *end = text + len, *nl, *p, *w[3];
	char why[64];
	size_t wl[3], lineno = 0, n, k;
	struct token *nv;
	int nw;

	if (t == NULL)
		return bad(t, err, errlen, "%s: out of memory", name);
	for (; line < end; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		n = (size_t)(nl - line);
		if (n > TOKENS_LINE_MAX) {
			snprintf(why, sizeof why, "line longer than %d bytes",
			    TOKENS_LINE_MAX);
			return bad_line(t, err, errlen, name, lineno, why);
		}
		if (n > 0 && line[n - 1] == '\r')	/* a CRLF file */
			n--;
		/* the words, up to a comment */
		for (nw = 0, p = line; p < line + n;) {
			while (p < line + n && blank(*p))
				p++;
			if (p == line + n || *p == '#')
				break;
			if (nw == 3)
				break;
			w[nw] = p;
			while (p < line + n && !blank(*p))
				p++;
			wl[nw] = (size_t)(p - w[nw]);
			nw++;
		}
		if (nw == 0)
			continue;
		if (nw == 1)
			return bad_line(t, err, errlen, name, lineno,
			    "expected TOKEN CLASS");
		if (nw == 3)
			return bad_line(t, err, errlen, name, lineno,
			    "expected TOKEN CLASS, found more fields");
		if (wl[0] > TOKENS_TOKEN_MAX || wl[1] > TOKENS_CLASS_MAX) {
			snprintf(why, sizeof why, "%s longer than %d bytes",
			    wl[0] > TOKENS_TOKEN_MAX ? "token" : "class",
			    wl[0] > TOKENS_TOKEN_MAX ? TOKENS_TOKEN_MAX :
			    TOKENS_CLASS_MAX);
			return bad_line(t, err, errlen, name, lineno, why);
		}
		if (bad_byte((const unsigned char *)w[0], wl[0], 0) >= 0)
			return bad_line(t, err, errlen, name, lineno,
			    "control byte in the token");
		/* the class goes into JSON as it is */
		if (bad_byte((const unsigned char *)w[1], wl[1], 1) >= 0)
			return bad_line(t, err, errlen, name, lineno,
			    "control byte or not UTF-8 in the class");
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 8;
			if ((nv = realloc(t->v, t->cap * sizeof *nv)) == NULL)
				return bad(t, err, errlen, "%s: out of memory",
				    name);
			t->v = nv;
		}
		nv = &t->v[t->n];
		digest(w[0], wl[0], nv->digest);
		for (k = 0; k < t->n; k++)
			if (memcmp(t->v[k].digest, nv->digest,
			    SHA256_DIGEST_SIZE) == 0)
				return bad(t, err, errlen, "%s:%zu: token "
				    "given twice (first on line %zu)", name,
				    lineno, t->v[k].line);
		nv->line = lineno;
		if ((nv->class_id = strndup(w[1], wl[1])) == NULL)
			return bad(t, err, errlen, "%s: out of memory", name);
		t->n++;
	}
	if (t->n == 0)
		return bad(t, err, errlen, "%s: no tokens", name);
	return t;
}

struct tokens *
tokens_load(const char *path, char *err, size_t errlen)
{
	struct tokens *t;
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot open token file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "cannot read token file %s: %s", path,
		    strerror(errno));
		fclose(f);
		return NULL;
	}
	if (n > TOKENS_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %ld bytes", path,
		    TOKENS_FILE_MAX);
		fclose(f);
		return NULL;
	}
	if ((buf = malloc(n ? (size_t)n : 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n || ferror(f)) {
		snprintf(err, errlen, "cannot read token file %s", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	t = tokens_parse(buf, (size_t)n, path, err, errlen);
	free(buf);
	return t;
}

const char *
tokens_class(const struct tokens *t, const char *presented, size_t len)
{
	uint8_t d[SHA256_DIGEST_SIZE];
	size_t i, found = 0;
	uintptr_t hit;

	if (t == NULL || presented == NULL)
		return NULL;
	digest(presented, len, d);
	/* every digest compared, the match chosen without a branch; found is
	 * one past the index, 0 for none */
	for (i = 0; i < t->n; i++) {
		hit = (uintptr_t)memeql_sec(t->v[i].digest, d,
		    SHA256_DIGEST_SIZE);
		found |= (size_t)(-(intptr_t)hit) & (i + 1);
	}
	return found ? t->v[found - 1].class_id : NULL;
}

size_t
tokens_count(const struct tokens *t)
{
	return t ? t->n : 0;
}

void
tokens_free(struct tokens *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->v[i].class_id);
	free(t->v);
	free(t);
}
