# The fuzz targets: FUZZ += NAME, and fuzz_NAME_SRC, the sources (beside
# tests/fuzz/NAME.c) that the target is built from. See the Makefile.

# notify (cmd/notify/request.c, ws.c; lib/sid.c)
FUZZ += notify_request
fuzz_notify_request_SRC = cmd/notify/request.c lib/httpreq.c lib/sid.c \
	lib/parse.c lib/utf8.c
FUZZ += ws
fuzz_ws_SRC = cmd/notify/ws.c
FUZZ += since
fuzz_since_SRC = lib/sid.c

# ingest's bodies and token file (lib/events.c, json.c, tokens.c)
FUZZ += events
fuzz_events_SRC = lib/events.c lib/json.c lib/utf8.c
FUZZ += tokens
fuzz_tokens_SRC = lib/tokens.c lib/utf8.c

# the HTTP request reader both servers share (lib/httpreq.c)
FUZZ += httpreq
fuzz_httpreq_SRC = lib/httpreq.c lib/parse.c

# ingest's handling of whole requests, bytes to answers (cmd/ingest/http.c
# over lib/httpreq, peers, tokens, events; a fake sink, no sockets)
FUZZ += ingest_http
fuzz_ingest_http_SRC = cmd/ingest/http.c cmd/ingest/reply.c lib/httpreq.c lib/peers.c \
	lib/tokens.c lib/events.c lib/json.c lib/parse.c lib/utf8.c

# route's reader and writer of plain JSON against jq's own (cmd/route/rules.c)
FUZZ += route_json
fuzz_route_json_SRC = cmd/route/rules.c lib/log.c tests/unit/jq_leaks.c

# the hooks file notify and route read (lib/hookfile.c)
FUZZ += hookfile
fuzz_hookfile_SRC = lib/hookfile.c
