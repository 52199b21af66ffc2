/* reply.c: ingest's answers, counted by class and reason, and the exit
 * once the last one is out while draining. http.c and sink.c both answer
 * through here; it calls neither. */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "ingest.h"

static const char *const reject_names[REJ__COUNT] = {
	[REJ_MALFORMED] = "malformed_json",
	[REJ_INVALID] = "invalid_field",
	[REJ_FIELD_TOO_LARGE] = "field_too_large",
	[REJ_BATCH_TOO_LARGE] = "batch_too_large",
	[REJ_CONTENT_TYPE] = "content_type",
	[REJ_UNAUTHORIZED] = "unauthorized",
	[REJ_FORBIDDEN_CLASS] = "forbidden_class",
	[REJ_NOT_FOUND] = "not_found",
	[REJ_METHOD] = "method_not_allowed",
	[REJ_OVERLOADED] = "overloaded",
	[REJ_UNAVAILABLE] = "unavailable",
	[REJ_DRAINING] = "draining",
	[REJ_RATE_ADDR] = "rate_limited_addr",
	[REJ_RATE_TOKEN] = "rate_limited_token",
	[REJ_BACKLOG] = "backlog_full",
	[REJ_NOT_REPLICATED] = "not_replicated",
};

const char *
reject_name(enum reject r)
{
	return reject_names[r];
}

void
reply_text(struct ingest *ing, struct httpd_conn *c, int code,
    const char *headers, const char *body, size_t len)
{
	char h[600];

	snprintf(h, sizeof h, "Content-Type: application/json\r\n%s",
	    headers ? headers : "");
	if (code < 300)
		ing->resp_2xx++;
	else if (code < 500)
		ing->resp_4xx++;
	else
		ing->resp_5xx++;
	httpd_reply(c, code, h, body, len);
}

void
reply_json(struct ingest *ing, struct httpd_conn *c, int code,
    const char *headers, jv body)
{
	jv txt = jv_string_append_buf(jv_dump_string(body, 0), "\n", 1);

	reply_text(ing, c, code, headers, jv_string_value(txt),
	    (size_t)jv_string_length_bytes(jv_copy(txt)));
	jv_free(txt);
}

/* A 503 always says when to come back: the clients retry it, and drop the
 * event on a 4xx (429 included). */
void
reply_reject(struct ingest *ing, struct httpd_conn *c, int code,
    enum reject why, const char *headers, jv body)
{
	char h[400];

	ing->rejects[why]++;
	if (headers == NULL)
		headers = "";
	if (code == 503 && strstr(headers, "Retry-After:") == NULL) {
		snprintf(h, sizeof h, "Retry-After: 1\r\n%s", headers);
		headers = h;
	}
	reply_json(ing, c, code, headers, body);
}

void
reply_error(struct ingest *ing, struct httpd_conn *c, int code,
    enum reject why, const char *headers, const char *msg)
{
	reply_reject(ing, c, code, why, headers, jv_object_set(jv_object(),
	    jv_string("error"), jv_string(msg)));
}

void
ingest_maybe_exit(struct ingest *ing)
{
	struct httpd_stats s;

	if (!ing->draining || ing->inflight > 0)
		return;
	if (ing->httpd) {
		httpd_get_stats(ing->httpd, &s);
		if (s.active > 0)
			return;
	}
	event_base_loopexit(ing->base, NULL);
}
