/* web.c: the dashboard's files, read once at start (and again at SIGHUP),
 * so that each request costs no disk and every answer carries a validator.
 * An asset's version is the start of its SHA-256: a page refers to its
 * assets as NAME?v=VERSION (rewritten here, in the page's src= and href=),
 * so that browsers may keep them for a year and still never run an old
 * script with a new page. Text is gzipped here too, once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "notify.h"

#define WEB_MAX_FILES	64
#define WEB_MAX_FILE	(1 << 20)

struct web {
	struct webfile f[WEB_MAX_FILES];
	int n;
};

/* The dashboard's kinds of file, by the name's ending. */
static const struct {
	const char *ext, *ctype;
} ctypes[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
};

static const char *
content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < sizeof ctypes / sizeof ctypes[0]; i++)
		if (strcmp(dot, ctypes[i].ext) == 0)
			return ctypes[i].ctype;
	return "application/octet-stream";
}

/* A plain name: what a request may name, nothing hidden. */
static int
plain_name(const char *name)
{
	return *name != '.' && *name != '\0' && strlen(name) < 128 &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == strlen(name);
}

static int
read_file(const char *dir, const char *name, char **body, size_t *len)
{
	char path[1024];
	struct stat st;
	ssize_t got;
	int fd;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > WEB_MAX_FILE) {
		close(fd);
		return -1;
	}
	*body = malloc((size_t)st.st_size + 1);
	got = *body ? read(fd, *body, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(*body);
		*body = NULL;
		return -1;
	}
	*len = (size_t)got;
	return 0;
}

/* The page with every src="NAME" and href="NAME" of an asset as
 * NAME?v=VERSION; NULL when memory ran out. */
static char *
versioned_page(struct web *w, const struct webfile *page, size_t *outlen)
{
	size_t cap = page->len + 256, o = 0, i = 0;
	char *out = malloc(cap);
	int k;

	if (out == NULL)
		return NULL;
	while (i < page->len) {
		/* room for a name (under 128 bytes) and its ?v= */
		if (o + 160 >= cap) {
			char *bigger = realloc(out, cap * 2);

			if (bigger == NULL) {
				free(out);
				return NULL;
			}
			out = bigger;
			cap *= 2;
		}
		for (k = 0; k < w->n; k++) {
			const struct webfile *f = &w->f[k];
			size_t nl = strlen(f->name);
			const char *p = page->body + i;

			if (f == page || strncmp(f->ctype, "text/html", 9) == 0 ||
			    page->len - i < nl + 2 || p[0] != '"' ||
			    memcmp(p + 1, f->name, nl) != 0 || p[nl + 1] != '"')
				continue;
			if ((i >= 4 && memcmp(p - 4, "src=", 4) == 0) ||
			    (i >= 5 && memcmp(p - 5, "href=", 5) == 0))
				break;
		}
		if (k < w->n) {
			o += (size_t)snprintf(out + o, cap - o, "\"%s?v=%s\"",
			    w->f[k].name, w->f[k].version);
			i += strlen(w->f[k].name) + 2;
		} else {
			out[o++] = page->body[i++];
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

static int
compressible(const char *ctype)
{
	return strncmp(ctype, "text/", 5) == 0 ||
	    strcmp(ctype, "image/svg+xml") == 0;
}

/* gzip, when it saves anything worth a header. */
static void
gzip_file(struct webfile *f)
{
	z_stream z;
	uLong cap = compressBound((uLong)f->len) + 32;
	char *out;

	if (!compressible(f->ctype) || f->len < 256)
		return;
	out = malloc(cap);
	if (out == NULL)
		return;
	memset(&z, 0, sizeof z);
	/* 16 + 15: a gzip wrapper, the largest window */
	if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 9,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return;
	}
	z.next_in = (Bytef *)f->body;
	z.avail_in = (uInt)f->len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END || z.total_out >= f->len) {
		deflateEnd(&z);
		free(out);
		return;
	}
	f->gz = out;
	f->gzlen = z.total_out;
	deflateEnd(&z);
	snprintf(f->gzetag, sizeof f->gzetag, "\"%.16s-gz\"", f->etag + 1);
}

static void
set_tags(struct webfile *f)
{
	char hex[TOKENS_HEX_SIZE];

	/* the first 16 hex digits of the SHA-256 name the file's version */
	tokens_sha256_hex(f->body, f->len, hex);
	snprintf(f->etag, sizeof f->etag, "\"%.16s\"", hex);
	snprintf(f->version, sizeof f->version, "%.12s", hex);
}

struct web *
web_load(const char *dir, char *err, size_t errlen)
{
	struct web *w = calloc(1, sizeof *w);
	struct dirent *de;
	DIR *d;
	int i;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		free(w);
		return NULL;
	}
	while ((de = readdir(d)) != NULL && w->n < WEB_MAX_FILES) {
		struct webfile *f = &w->f[w->n];

		if (!plain_name(de->d_name) ||
		    read_file(dir, de->d_name, &f->body, &f->len) < 0)
			continue;
		if ((f->name = strdup(de->d_name)) == NULL) {
			free(f->body);
			continue;
		}
		f->ctype = content_type(f->name);
		set_tags(f);
		w->n++;
	}
	closedir(d);
	/* the pages last: they name the assets' versions */
	for (i = 0; i < w->n; i++) {
		struct webfile *f = &w->f[i];
		size_t len;
		char *page;

		if (strncmp(f->ctype, "text/html", 9) != 0)
			continue;
		if ((page = versioned_page(w, f, &len)) != NULL) {
			free(f->body);
			f->body = page;
			f->len = len;
			set_tags(f);
		}
	}
	for (i = 0; i < w->n; i++)
		gzip_file(&w->f[i]);
	return w;
}

const struct webfile *
web_find(const struct web *w, const char *path)
{
	const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
	int i;

	if (w == NULL || path[0] != '/' || !plain_name(name))
		return NULL;
	for (i = 0; i < w->n; i++)
		if (strcmp(w->f[i].name, name) == 0)
			return &w->f[i];
	return NULL;
}

unsigned long
web_count(const struct web *w)
{
	return w ? (unsigned long)w->n : 0;
}

void
web_free(struct web *w)
{
	int i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n; i++) {
		free(w->f[i].name);
		free(w->f[i].body);
		free(w->f[i].gz);
	}
	free(w);
}
