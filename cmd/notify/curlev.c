/* curlev.c: libcurl's multi interface on notify's libevent loop, so that
 * webhooks and Telegram are sent with no thread and no blocking call: curl
 * says which sockets and which timeout it waits for, libevent tells it
 * when they are ready. */
#include <stdlib.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "notify.h"

struct sock;
LIST_HEAD(sock_list, sock);

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	int running;
	struct sock_list socks;	/* freed at the end whatever curl said */
};

/* What a transfer was given, kept with its handle (CURLOPT_PRIVATE). */
struct transfer {
	curlev_done_fn done;
	void *arg;
};

/* One socket curl waits on. */
struct sock {
	struct curlev *c;
	struct event *ev;
	curl_socket_t fd;
	LIST_ENTRY(sock) link;
};

static void
sock_free(struct sock *s)
{
	LIST_REMOVE(s, link);
	if (s->ev)
		event_free(s->ev);
	free(s);
}

static void
check_done(struct curlev *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct transfer *t = NULL;
		CURL *easy = m->easy_handle;
		CURLcode rc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(c->multi, easy);
		if (t) {
			curlev_done_fn done = t->done;
			void *arg = t->arg;

			free(t);
			done(easy, rc, arg);
		}
	}
}

static void
on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *c = arg;
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
	    (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(c->multi, fd, flags, &c->running);
	check_done(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *c = arg;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
	check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl waits on, or stop. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct curlev *c = arg;
	struct sock *s = sockp;
	short kind = (what & CURL_POLL_IN ? EV_READ : 0) |
	    (what & CURL_POLL_OUT ? EV_WRITE : 0);

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_free(s);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof *s)) == NULL)
			return -1;
		s->c = c;
		s->fd = fd;
		LIST_INSERT_HEAD(&c->socks, s, link);
		curl_multi_assign(c->multi, fd, s);
	} else {
		event_free(s->ev);
		s->ev = NULL;
	}
	s->ev = event_new(c->base, fd, kind | EV_PERSIST, on_socket_ready, c);
	if (s->ev == NULL || event_add(s->ev, NULL) < 0)
		return -1;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: call back after ms (0: at once), -1: never. */
static int
on_timeout(CURLM *multi, long ms, void *arg)
{
	struct curlev *c = arg;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)multi;
	if (ms < 0)
		evtimer_del(c->timer);
	else
		evtimer_add(c->timer, &tv);
	return 0;
}

struct curlev *
curlev_new(struct event_base *base)
{
	struct curlev *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->base = base;
	LIST_INIT(&c->socks);
	if ((c->multi = curl_multi_init()) == NULL ||
	    (c->timer = evtimer_new(base, on_timer, c)) == NULL) {
		curlev_free(c);
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

int
curlev_add(struct curlev *c, CURL *easy, curlev_done_fn done, void *arg)
{
	struct transfer *t = malloc(sizeof *t);

	if (t == NULL)
		return -1;
	t->done = done;
	t->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(t);
		return -1;
	}
	return 0;
}

void
curlev_remove(struct curlev *c, CURL *easy)
{
	struct transfer *t = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	curl_multi_remove_handle(c->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(t);
}

void
curlev_free(struct curlev *c)
{
	if (c == NULL)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (!LIST_EMPTY(&c->socks))
		sock_free(LIST_FIRST(&c->socks));
	if (c->timer)
		event_free(c->timer);
	free(c);
}
