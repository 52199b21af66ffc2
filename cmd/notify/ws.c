/* ws.c: notify's side of a WebSocket, over wslay: the server context with
 * notify's settings, and the bound on what a client can make notify hold
 * for it. wslay answers every ping with a pong that waits in its queue, and
 * then in the connection's output, until the client reads: a client that
 * pings and never reads would make notify hold without end. The bound
 * counts both queues; past it the client is read no further and closed.
 * client.c gives it the connection; tests/fuzz/ws.c a buffer. */
#include <string.h>

#include "notify.h"

size_t
ws_pending(const struct ws_peer *w)
{
	if (w->ctx == NULL)
		return 0;
	/* wslay counts payloads only: an empty pong is two bytes on the
	 * wire and nothing in its length. Each message is counted with the
	 * largest frame header a server writes. */
	return wslay_event_get_queued_msg_length(w->ctx) +
	    10 * wslay_event_get_queued_msg_count(w->ctx);
}

size_t
ws_queued(const struct ws_peer *w)
{
	return (w->held ? w->held(w->arg) : 0) + ws_pending(w);
}

static void
on_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct ws_peer *w = user;

	/* What a client says otherwise changes nothing: it cannot widen its
	 * view. A ping's pong is queued before this is called; stopping the
	 * reading here keeps what is held within a pong of the bound. */
	if (arg->opcode == WSLAY_PING && !w->over && ws_queued(w) > w->bound) {
		w->over = 1;
		wslay_event_shutdown_read(ctx);
	}
}

int
ws_open(struct ws_peer *w, wslay_event_recv_callback recv,
    wslay_event_send_callback send, size_t (*held)(void *), void *arg,
    size_t bound)
{
	struct wslay_event_callbacks cb;

	memset(&cb, 0, sizeof cb);
	cb.recv_callback = recv;
	cb.send_callback = send;
	cb.on_msg_recv_callback = on_msg;
	memset(w, 0, sizeof *w);
	w->arg = arg;
	w->held = held;
	w->bound = bound;
	if (wslay_event_context_server_init(&w->ctx, &cb, w) != 0) {
		w->ctx = NULL;
		return -1;
	}
	/* a longer message is closed with 1009 */
	wslay_event_config_set_max_recv_msg_length(w->ctx, NOTIFY_WS_MAX_MSG);
	return 0;
}

void
ws_free(struct ws_peer *w)
{
	if (w->ctx)
		wslay_event_context_free(w->ctx);
	w->ctx = NULL;
}

enum ws_state
ws_service(struct ws_peer *w)
{
	static const char why[] = "sent faster than it read";
	int r;

	r = wslay_event_recv(w->ctx);
	if (w->over) {
		/* it reads nothing: the close may never get through, and the
		 * caller closes anyway */
		wslay_event_queue_close(w->ctx, NOTIFY_WS_OVER_CODE,
		    (const uint8_t *)why, sizeof why - 1);
		wslay_event_send(w->ctx);
		return WS_OVER;
	}
	if (r == 0)
		r = wslay_event_send(w->ctx);
	if (r != 0 || (!wslay_event_want_read(w->ctx) &&
	    !wslay_event_want_write(w->ctx)) || wslay_event_get_close_sent(w->ctx))
		return WS_DONE;
	return WS_OPEN;
}
