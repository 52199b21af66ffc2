/* ws.c: fuzz notify's WebSocket side (cmd/notify/ws.c over wslay) with a
 * client that sends what the input holds and never reads: whatever frames
 * arrive (pings, fragments, oversize, unmasked, close), what notify holds
 * for it stays within the bound. The first input byte sets how much a
 * read takes at once, the second how much the connection writes before
 * it blocks; the rest is what the client sent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"

#define BOUND		4096
/* past the bound: at most a pong and a close reply before reading stops,
 * and the close notify adds, each a frame of at most 125 bytes */
#define SLACK		(3 * (125 + 4))

struct io {
	const uint8_t *p;
	size_t len, off;
	size_t piece;		/* a read's worth */
	int read_once;		/* this read's worth is taken */
	size_t room;		/* what the connection writes before blocking */
	size_t held;		/* written, never read by the client */
};

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct io *io = ((struct ws_peer *)user)->arg;
	size_t n = io->len - io->off;

	(void)flags;
	if (n == 0 || io->read_once) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n > io->piece)
		n = io->piece;
	if (n > len)
		n = len;
	memcpy(buf, io->p + io->off, n);
	io->off += n;
	io->read_once = 1;
	return (ssize_t)n;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct io *io = ((struct ws_peer *)user)->arg;

	(void)data;
	(void)flags;
	if (io->room == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > io->room)
		len = io->room;
	io->room -= len;
	io->held += len;
	return (ssize_t)len;
}

static size_t
held(void *arg)
{
	return ((struct io *)arg)->held;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct io io;
	struct ws_peer w;
	enum ws_state st = WS_OPEN;
	size_t before;

	if (size < 2)
		return 0;
	memset(&io, 0, sizeof io);
	io.piece = data[0] ? (size_t)data[0] * 64 : 65536;
	io.room = data[1] == 255 ? SIZE_MAX : (size_t)data[1] * 64;
	io.p = data + 2;
	io.len = size - 2;
	if (ws_open(&w, recv_cb, send_cb, held, &io, BOUND) < 0)
		return 0;
	while (st == WS_OPEN) {
		before = io.off;
		io.read_once = 0;
		st = ws_service(&w);
		if (ws_queued(&w) > BOUND + SLACK)
			abort();
		if (io.off == before)
			break;		/* all read, or reading stopped */
	}
	if (st == WS_OVER && !w.over)
		abort();
	ws_free(&w);
	return 0;
}
