/* notify_request.c: fuzz notify's reading of a request: the bytes through
 * httpreq, cut into pieces as a trickling client sends them, then
 * request.c's decision (route, handshake, classes, token, since). The
 * first input byte chooses the piece size (0: all at once). The decision
 * must hold notify's invariants whatever was sent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "notify/notify.h"

static void
check(const struct nreq *q)
{
	int i, j;

	switch (q->kind) {
	case NREQ_ERROR:
		if (q->status < 400 || q->status > 599 || q->msg[0] == '\0')
			abort();
		return;
	case NREQ_HEALTH:
		return;
	case NREQ_STATIC:
		if (q->path == NULL || q->path[0] != '/')
			abort();
		return;
	case NREQ_WS:
		if (strlen(q->accept) != 28)
			abort();
		break;
	case NREQ_SSE:
		break;
	default:
		abort();
	}
	if (q->nclasses < 0 || q->nclasses > NOTIFY_MAX_CLASSES)
		abort();
	for (i = 0; i < q->nclasses; i++) {
		size_t len = strlen(q->classes[i]);

		if (len == 0 || len > NOTIFY_MAX_CLASS)
			abort();
		for (j = 0; j < (int)len; j++)
			if ((unsigned char)q->classes[i][j] < 0x20 ||
			    q->classes[i][j] == 0x7f)
				abort();
		for (j = 0; j < i; j++)
			if (strcmp(q->classes[i], q->classes[j]) == 0)
				abort();
	}
	if (q->since[0]) {
		struct sid s;

		if (sid_parse(q->since, &s) != 0)
			abort();
	}
	if (q->status == 0) {
		if (q->nclasses == 0 || q->token[0] == '\0')
			abort();
		for (i = 0; q->token[i]; i++)
			if (q->token[i] < 0x21 || q->token[i] > 0x7e)
				abort();
	} else if (q->status < 400 || q->status > 499 || q->msg[0] == '\0') {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct httpreq_limits lim = { 8192, 4096, 64 };
	struct httpreq r;
	struct nreq q;
	enum httpreq_state st = HTTPREQ_MORE;
	size_t piece, off = 0, used;

	if (size == 0)
		return 0;
	piece = data[0] ? data[0] : size;
	data++;
	size--;
	if (httpreq_init(&r, &lim) < 0)
		return 0;
	while (off < size && st == HTTPREQ_MORE) {
		size_t n = size - off < piece ? size - off : piece;

		used = 0;
		st = httpreq_feed(&r, (const char *)data + off, n, &used);
		if (used > n)
			abort();
		/* MORE: all bytes taken, as server.c takes it too */
		off += st == HTTPREQ_MORE ? n : used;
	}
	if (st == HTTPREQ_ERROR) {
		if (r.status != 400 && r.status != 413 && r.status != 431 &&
		    r.status != 501 && r.status != 505 && r.status != 503)
			abort();
	} else if (st == HTTPREQ_DONE) {
		if (nreq_parse(&r, &q) == 0) {
			check(&q);
			nreq_free(&q);
		}
	}
	httpreq_free(&r);
	return 0;
}
