/* input.c: NDJSON read on notify's loop, for the routed feed and the
 * hooks alike. A pipe or a socket is read through a bufferevent; a regular
 * file, which epoll cannot watch, a piece at a time from the loop. Lines
 * are bounded, and a last line without its newline is still a line. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "notify.h"

#define INPUT_PIECE	65536	/* bytes read from a file at a time */

struct ninput {
	struct ninput_ops ops;
	void *arg;
	struct bufferevent *bev;	/* a pipe or a socket */
	int fd;				/* else a regular file, */
	struct event *ev;		/* read from the loop */
	struct evbuffer *buf;		/* what was read */
	int on, ended;
};

static void
end(struct ninput *in, int error)
{
	if (in->ended)
		return;
	in->ended = 1;
	ninput_reading(in, 0);
	if (error == 0 && evbuffer_get_length(in->buf) > 0 &&
	    evbuffer_add(in->buf, "\n", 1) == 0)
		in->ops.lines(in->buf, in->arg);
	in->ops.end(error, in->arg);
}

/* The lines read so far to the reader; a line longer than the bound ends
 * the input, rather than growing the buffer without end. */
static void
take(struct ninput *in)
{
	in->ops.lines(in->buf, in->arg);
	if (!in->ended && evbuffer_get_length(in->buf) > NINPUT_LINE_MAX &&
	    evbuffer_search(in->buf, "\n", 1, NULL).pos < 0)
		end(in, EMSGSIZE);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	take(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & BEV_EVENT_ERROR)
		end(arg, errno ? errno : EIO);
	else if (what & BEV_EVENT_EOF)
		end(arg, 0);
}

static void
on_file(evutil_socket_t fd, short what, void *arg)
{
	struct ninput *in = arg;
	int n;

	(void)fd;
	(void)what;
	if (!in->on || in->ended)
		return;
	if ((n = evbuffer_read(in->buf, in->fd, INPUT_PIECE)) < 0)
		end(in, errno);
	else if (n == 0)
		end(in, 0);
	else {
		take(in);
		if (in->on && !in->ended)
			event_active(in->ev, EV_TIMEOUT, 0);
	}
}

struct ninput *
ninput_open(struct event_base *base, int fd, const struct ninput_ops *ops,
    void *arg)
{
	struct ninput *in = calloc(1, sizeof *in);
	struct stat st;

	if (in == NULL) {
		close(fd);
		return NULL;
	}
	in->ops = *ops;
	in->arg = arg;
	in->fd = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		in->fd = fd;
		in->buf = evbuffer_new();
		in->ev = event_new(base, -1, 0, on_file, in);
		if (in->buf == NULL || in->ev == NULL) {
			ninput_free(in);
			return NULL;
		}
	} else {
		evutil_make_socket_nonblocking(fd);
		if ((in->bev = bufferevent_socket_new(base, fd,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			close(fd);
			ninput_free(in);
			return NULL;
		}
		in->buf = bufferevent_get_input(in->bev);
		bufferevent_setcb(in->bev, on_read, NULL, on_event, in);
	}
	ninput_reading(in, 1);
	return in;
}

void
ninput_reading(struct ninput *in, int on)
{
	int was = in->on;

	in->on = on && !in->ended;
	if (in->bev && in->on)
		bufferevent_enable(in->bev, EV_READ);
	else if (in->bev)
		bufferevent_disable(in->bev, EV_READ);
	else if (in->on && !was)
		event_active(in->ev, EV_TIMEOUT, 0);
}

int
ninput_ended(const struct ninput *in)
{
	return in->ended;
}

void
ninput_free(struct ninput *in)
{
	if (in == NULL)
		return;
	if (in->bev)
		bufferevent_free(in->bev);
	if (in->ev)
		event_free(in->ev);
	if (in->fd >= 0) {
		if (in->buf)
			evbuffer_free(in->buf);
		close(in->fd);
	}
	free(in);
}
