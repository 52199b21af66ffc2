/* test_hookfile.c: the hooks file, every rule and every message, the limits
 * at and past each bound, and the key and token files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "hookfile.h"
#include "tap.h"

static char tmpdir[256];

/* text parsed as "hooks": 0 and n destinations. */
static int
parse_ok(const char *text, size_t n, struct hookfile *hf, const char *what)
{
	char err[1024] = "";
	int rc = hookfile_parse(text, strlen(text), "hooks", hf, err,
	    sizeof err);

	if (!is_int(rc, 0, "%s: accepted", what)) {
		diag("    %s", err);
		return 0;
	}
	return is_int(hf->n, n, "%s: %zu destinations", what, n);
}

static void
parse_bad_len(const char *text, size_t len, const char *msg,
    const char *what)
{
	struct hookfile hf;
	char err[1024] = "";
	int rc = hookfile_parse(text, len, "hooks", &hf, err, sizeof err);

	is_int(rc, -ERR_CONFIG, "%s: refused", what);
	is_str(err, msg, "%s: message", what);
	ok(hf.n == 0 && hf.d == NULL, "%s: empty after", what);
}

static void
parse_bad(const char *text, const char *msg)
{
	parse_bad_len(text, strlen(text), msg, msg);
}

/* one line's rate and burst */
static void
rate(const char *line, double want, long burst)
{
	struct hookfile hf;

	if (parse_ok(line, 1, &hf, line)) {
		ok(hf.d[0].rate > want * 0.999999 &&
		    hf.d[0].rate < want * 1.000001, "%s: rate %g/s (got %g)",
		    line, want, hf.d[0].rate);
		is_int(hf.d[0].burst, burst, "%s: burst", line);
	}
	hookfile_free(&hf);
}

static void
bad_rate(const char *v)
{
	char line[128], msg[256];

	snprintf(line, sizeof line, "a https://h rate=%s", v);
	snprintf(msg, sizeof msg, "hooks:1: rate=%s: a rate from 1/h to "
	    "1000/s, as N/s, N/min or N/h", v);
	parse_bad(line, msg);
}

static void
chat_ok(const char *chat, int group)
{
	char line[128];
	struct hookfile hf;

	snprintf(line, sizeof line, "c telegram:%s", chat);
	if (parse_ok(line, 1, &hf, line)) {
		is_int(hf.d[0].kind, HOOK_TELEGRAM, "%s: telegram", line);
		is_str(hf.d[0].target, chat, "%s: chat", line);
		is_int(hf.d[0].group, group, "%s: group", line);
	}
	hookfile_free(&hf);
}

static void
chat_bad(const char *chat, const char *why)
{
	char line[128], msg[256];

	snprintf(line, sizeof line, "c telegram:%s", chat);
	snprintf(msg, sizeof msg, "hooks:1: telegram:%s: %s", chat, why);
	parse_bad(line, msg);
}

static char *
write_file(const char *content, size_t len)
{
	static char path[300];
	int fd;

	snprintf(path, sizeof path, "%s/fileXXXXXX", tmpdir);
	if ((fd = mkstemp(path)) < 0)
		bail_out("mkstemp");
	if (write(fd, content, len) != (ssize_t)len)
		bail_out("write");
	close(fd);
	return path;
}

static void
secret_ok(const char *content, size_t len, size_t max, const char *want,
    size_t wantlen)
{
	char err[512] = "", *buf, *path = write_file(content, len);
	size_t n;
	int rc = hookfile_read_secret(path, max, &buf, &n, err, sizeof err);

	if (is_int(rc, 0, "secret of %zu bytes, max %zu: read", len, max)) {
		is_int(n, wantlen, "secret of %zu bytes: length", len);
		ok(buf && memcmp(buf, want, wantlen) == 0 &&
		    buf[wantlen] == '\0', "secret of %zu bytes: content", len);
	} else
		diag("    %s", err);
	free(buf);
	unlink(path);
}

static void
secret_bad(const char *content, size_t len, size_t max, int kind,
    const char *why)
{
	char err[512] = "", want[600], *buf, *path = write_file(content, len);
	size_t n;
	int rc = hookfile_read_secret(path, max, &buf, &n, err, sizeof err);

	snprintf(want, sizeof want, "%s: %s", path, why);
	is_int(rc, -kind, "secret '%s': refused", why);
	is_str(err, want, "secret '%s': message", why);
	ok(buf == NULL && n == 0, "secret '%s': nothing returned", why);
	unlink(path);
}

int
main(void)
{
	struct hookfile hf;
	const struct hookdest *d;
	char err[1024], *big, *buf, line[6000], name[80], path[300];
	size_t i, n, off;
	int rc;

	snprintf(tmpdir, sizeof tmpdir, "%s/hookfileXXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail_out("mkdtemp");

	/* the example of the manual */
	if (parse_ok("# NAME   DESTINATION                           OPTIONS\n"
	    "chat     telegram:-1001234567                  rate=1/s burst=1\n"
	    "ta-desk  https://hooks.example.edu/labpulse    rate=5/s "
	    "secret-file=/etc/labpulse/ta-desk.key\n", 2, &hf, "example")) {
		d = &hf.d[0];
		is_str(d->name, "chat", "example: first name");
		is_int(d->kind, HOOK_TELEGRAM, "example: chat is Telegram");
		is_str(d->target, "-1001234567", "example: chat id");
		is_int(d->group, 1, "example: a group chat");
		is_int(d->line, 2, "example: chat's line");
		ok(d->secret_file == NULL && d->token_file == NULL,
		    "example: chat has no files");
		d = &hf.d[1];
		is_str(d->name, "ta-desk", "example: second name");
		is_int(d->kind, HOOK_WEBHOOK, "example: a webhook");
		is_str(d->target, "https://hooks.example.edu/labpulse",
		    "example: URL");
		ok(d->rate == 5, "example: rate 5/s");
		is_int(d->burst, 10, "example: default burst of a webhook");
		is_str(d->secret_file, "/etc/labpulse/ta-desk.key",
		    "example: secret file");
		ok(d->token_file == NULL, "example: no token file");
		is_int(d->line, 3, "example: line");
		ok(hookfile_find(&hf, "chat", 4) == &hf.d[0], "find chat");
		ok(hookfile_find(&hf, "ta-desk", 7) == &hf.d[1], "find ta-desk");
		ok(hookfile_find(&hf, "ta-deskX", 7) == &hf.d[1],
		    "find takes namelen bytes");
		ok(hookfile_find(&hf, "cha", 3) == NULL, "no prefix match");
		ok(hookfile_find(&hf, "chats", 5) == NULL, "no longer match");
		ok(hookfile_find(&hf, "", 0) == NULL, "no empty match");
	}
	hookfile_free(&hf);
	hookfile_free(&hf);
	ok(hf.n == 0 && hf.d == NULL, "free twice leaves it empty");

	/* blank lines, comments, tabs, CRLF, no last newline */
	if (parse_ok("\n   \n\t\n# all comment\n  # indented comment\n"
	    "a\thttp://h/x#frag\t# a comment after a tab\r\n"
	    "b https://h/#notacomment rate=2/min #rate=9/s\r\n"
	    "c\t \ttelegram:@user_5 \t burst=3", 3, &hf, "layout")) {
		is_str(hf.d[0].target, "http://h/x#frag", "# inside a field");
		is_int(hf.d[0].line, 6, "lines counted with blanks");
		is_str(hf.d[1].target, "https://h/#notacomment",
		    "CRLF: no CR kept");
		ok(hf.d[1].rate > 2.0 / 60 - 1e-9 &&
		    hf.d[1].rate < 2.0 / 60 + 1e-9, "comment after options");
		is_str(hf.d[2].target, "@user_5", "tabs and spaces mixed");
		is_int(hf.d[2].group, 1, "@username is a group");
		is_int(hf.d[2].burst, 3, "last line without a newline");
		ok(hf.d[2].rate == 1, "telegram default rate 1/s");
	}
	hookfile_free(&hf);
	parse_ok("", 0, &hf, "an empty file");
	ok(hookfile_find(&hf, "a", 1) == NULL, "nothing found in an empty file");
	hookfile_free(&hf);
	parse_ok("# only\n\n#comments\n", 0, &hf, "only comments");
	hookfile_free(&hf);
	parse_ok("a HTTPS://H/", 1, &hf, "scheme in capitals");
	hookfile_free(&hf);

	/* names */
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(line, sizeof line, "%s https://h", name);
	if (parse_ok(line, 1, &hf, "a name of 64 bytes"))
		ok(hookfile_find(&hf, name, 64) != NULL, "found by 64 bytes");
	hookfile_free(&hf);
	snprintf(line, sizeof line, "%sn https://h", name);
	parse_bad(line, "hooks:1: a name longer than 64 bytes");
	parse_ok("AZaz09_.- https://h\nx https://h", 2, &hf, "name chars");
	hookfile_free(&hf);
	parse_bad("\n\nta/desk https://h",
	    "hooks:3: ta/desk: a name is made of A-Z a-z 0-9 _ . -");
	parse_bad("caf\xc3\xa9 https://h",
	    "hooks:1: caf\xc3\xa9: a name is made of A-Z a-z 0-9 _ . -");
	parse_bad("https://h rate=1/s",
	    "hooks:1: https://h: a NAME first, then the destination");
	parse_bad("telegram:1",
	    "hooks:1: telegram:1: a NAME first, then the destination");
	parse_bad("# x\n\nchat\n", "hooks:3: no destination after the name chat");
	parse_bad("chat # telegram:1\n",
	    "hooks:1: no destination after the name chat");
	parse_bad("a https://h\nchat telegram:1\nb https://h\n"
	    "chat telegram:2\n",
	    "hooks:4: destination chat named twice (first on line 2)");
	parse_ok("chat https://h\nChat https://h", 2, &hf,
	    "names are case-sensitive");
	hookfile_free(&hf);

	/* destinations */
	parse_bad("a ftp://h", "hooks:1: ftp://h: a destination is "
	    "https://..., http://... or telegram:CHAT");
	parse_bad("a h.example.edu", "hooks:1: h.example.edu: a destination "
	    "is https://..., http://... or telegram:CHAT");
	parse_bad("a https://", "hooks:1: https://: a URL with a host after "
	    "https://");
	parse_bad("a http:///x", "hooks:1: http:///x: a URL with a host after "
	    "http://");
	parse_bad("a https://h/\xc3\xa9", "hooks:1: https://h/\xc3\xa9: a URL "
	    "of printable ASCII (percent-encode the rest)");
	off = (size_t)snprintf(line, sizeof line, "a https://h/");
	memset(line + off, 'p', HOOK_URL_MAX - off + 2);
	line[HOOK_URL_MAX + 2] = '\0';	/* "a " and 2048 bytes */
	if (parse_ok(line, 1, &hf, "a URL of 2048 bytes"))
		is_int(strlen(hf.d[0].target), HOOK_URL_MAX, "URL kept whole");
	hookfile_free(&hf);
	line[HOOK_URL_MAX + 2] = 'p';
	line[HOOK_URL_MAX + 3] = '\0';
	parse_bad(line, "hooks:1: a URL longer than 2048 bytes");
	rate("w https://h", 10, 10);
	rate("w http://h", 10, 10);

	/* Telegram chats */
	chat_ok("1", 0);
	chat_ok("1234567890123456789", 0);
	chat_ok("-1001234567", 1);
	chat_ok("-1234567890123456789", 1);
	chat_ok("@abcde", 1);
	chat_ok("@A_b_C_d_E_f_G_h_I_j_K_l_M_n_O_p_", 1);
	chat_bad("abc", "a chat id (digits, - first for a group) or @username");
	chat_bad("", "a chat id (digits, - first for a group) or @username");
	chat_bad("-", "a chat id (digits, - first for a group) or @username");
	chat_bad("+1", "a chat id (digits, - first for a group) or @username");
	chat_bad("12a", "a chat id (digits, - first for a group) or @username");
	chat_bad("@ab.cd", "a chat id (digits, - first for a group) or "
	    "@username");
	chat_bad("12345678901234567890", "a chat id of at most 19 digits");
	chat_bad("-12345678901234567890", "a chat id of at most 19 digits");
	chat_bad("@abcd", "a @username is 5 to 32 of A-Z a-z 0-9 _");
	chat_bad("@", "a @username is 5 to 32 of A-Z a-z 0-9 _");
	chat_bad("@A_b_C_d_E_f_G_h_I_j_K_l_M_n_O_p_q",
	    "a @username is 5 to 32 of A-Z a-z 0-9 _");

	/* rates and bursts */
	rate("t telegram:1", 1, 1);
	rate("a https://h rate=1/h", 1.0 / 3600, 10);
	rate("a https://h rate=1000/s", 1000, 10);
	rate("a https://h rate=60000/min", 1000, 10);
	rate("a https://h rate=3600000/h", 1000, 10);
	rate("a https://h rate=0.5/s", 0.5, 10);
	rate("a https://h rate=2.5/min burst=1000", 2.5 / 60, 1000);
	rate("a https://h burst=1 rate=007/s", 7, 1);
	rate("t telegram:@chat_x rate=20/min", 20.0 / 60, 1);
	bad_rate("0/s");
	bad_rate("0.9/h");
	bad_rate("1000.001/s");
	bad_rate("60001/min");
	bad_rate("1/d");
	bad_rate("1/sec");
	bad_rate("1");
	bad_rate("/s");
	bad_rate(".5/s");
	bad_rate("1./s");
	bad_rate("-1/s");
	bad_rate("+1/s");
	bad_rate("1e2/s");
	bad_rate("0x10/s");
	bad_rate("inf/s");
	parse_bad("a https://h rate=1 /s", "hooks:1: rate=1: a rate from 1/h "
	    "to 1000/s, as N/s, N/min or N/h");
	bad_rate("");
	bad_rate("99999999999999999999999999999999999999999/s");
	parse_bad("a https://h burst=0",
	    "hooks:1: burst=0: a whole number from 1 to 1000");
	parse_bad("a https://h burst=1001",
	    "hooks:1: burst=1001: a whole number from 1 to 1000");
	parse_bad("a https://h burst=", "hooks:1: burst=: a whole number "
	    "from 1 to 1000");
	parse_bad("a https://h burst=-1", "hooks:1: burst=-1: a whole "
	    "number from 1 to 1000");
	parse_bad("a https://h burst=1.5", "hooks:1: burst=1.5: a whole "
	    "number from 1 to 1000");
	parse_bad("a https://h burst=00001", "hooks:1: burst=00001: a whole "
	    "number from 1 to 1000");

	/* options */
	parse_bad("\n\n\n\n\na https://h color=red",
	    "hooks:6: unknown option color=red (rate=, burst=, secret-file= "
	    "or token-file=)");
	parse_bad("a https://h Rate=1/s", "hooks:1: unknown option Rate=1/s "
	    "(rate=, burst=, secret-file= or token-file=)");
	parse_bad("a https://h =1", "hooks:1: unknown option =1 (rate=, "
	    "burst=, secret-file= or token-file=)");
	parse_bad("a https://h burst", "hooks:1: burst: an option is "
	    "KEY=VALUE");
	parse_bad("a https://h rate=1/s rate=2/s",
	    "hooks:1: rate= given twice");
	parse_bad("a https://h burst=1 burst=1",
	    "hooks:1: burst= given twice");
	parse_bad("a https://h secret-file=/a secret-file=/b",
	    "hooks:1: secret-file= given twice");
	parse_bad("a telegram:1 token-file=/a token-file=/a",
	    "hooks:1: token-file= given twice");
	parse_bad("\n\n\n\n\n\nchat telegram:1 secret-file=/k",
	    "hooks:7: secret-file= is for webhooks");
	parse_bad("a https://h token-file=/k",
	    "hooks:1: token-file= is for Telegram destinations");
	parse_bad("a https://h secret-file=",
	    "hooks:1: secret-file= without a file");
	parse_bad("a telegram:1 token-file=",
	    "hooks:1: token-file= without a file");
	parse_bad("a https://h rate=1/s burst=1 secret-file=/k x=1 y=2",
	    "hooks:1: more than 6 fields (NAME DESTINATION and at most rate=, "
	    "burst=, secret-file=, token-file=)");
	if (parse_ok("t telegram:5 token-file=/etc/t=x rate=1/h burst=2",
	    1, &hf, "token-file"))
		is_str(hf.d[0].token_file, "/etc/t=x", "token file's path "
		    "up to the field's end");
	hookfile_free(&hf);

	/* control bytes */
	parse_bad_len("a https://h\0x", 13, "hooks:1: a control byte (0x00) "
	    "outside a comment; fields are separated by spaces or tabs",
	    "a NUL");
	parse_bad("a https://h\rb https://g", "hooks:1: a control byte (0x0d) "
	    "outside a comment; fields are separated by spaces or tabs");
	parse_bad("a\vhttps://h", "hooks:1: a control byte (0x0b) outside a "
	    "comment; fields are separated by spaces or tabs");
	parse_ok("a https://h # \x01\x7f\r\n", 1, &hf, "control bytes in a "
	    "comment");
	hookfile_free(&hf);
	parse_bad("a https://h\r\r\n", "hooks:1: a control byte (0x0d) "
	    "outside a comment; fields are separated by spaces or tabs");

	/* lines: 4096 bytes, with or without CR, and one more */
	memset(line, ' ', sizeof line);
	memcpy(line, "a https://h #", 13);
	line[HOOKFILE_MAX_LINE] = '\n';
	line[HOOKFILE_MAX_LINE + 1] = '\0';
	parse_ok(line, 1, &hf, "a line of 4096 bytes");
	hookfile_free(&hf);
	line[HOOKFILE_MAX_LINE] = '\r';
	line[HOOKFILE_MAX_LINE + 1] = '\n';
	line[HOOKFILE_MAX_LINE + 2] = '\0';
	parse_ok(line, 1, &hf, "a line of 4096 bytes and CRLF");
	hookfile_free(&hf);
	line[HOOKFILE_MAX_LINE] = ' ';
	line[HOOKFILE_MAX_LINE + 1] = '\n';
	parse_bad_len(line, HOOKFILE_MAX_LINE + 2, "hooks:1: a line longer "
	    "than 4096 bytes", "a line of 4097 bytes");
	parse_bad_len(line, HOOKFILE_MAX_LINE + 1, "hooks:1: a line longer "
	    "than 4096 bytes", "a last line of 4097 bytes");

	/* 1000 destinations, then 1001 */
	big = malloc(HOOKFILE_MAX_SIZE + 2);
	if (big == NULL)
		bail_out("malloc");
	for (off = 0, i = 0; i < HOOKFILE_MAX_DEST; i++)
		off += (size_t)sprintf(big + off, "d%zu https://h/%zu\n", i, i);
	if (parse_ok(big, HOOKFILE_MAX_DEST, &hf, "1000 destinations")) {
		for (n = 0, i = 0; i < HOOKFILE_MAX_DEST; i++) {
			snprintf(name, sizeof name, "d%zu", i);
			d = hookfile_find(&hf, name, strlen(name));
			n += d != NULL && d == &hf.d[i];
		}
		is_int(n, HOOKFILE_MAX_DEST, "each of 1000 found");
	}
	hookfile_free(&hf);
	sprintf(big + off, "# a comment\nlast https://h\n");
	parse_bad(big, "hooks: more than 1000 destinations");

	/* 1 MiB, then one byte more */
	memset(big, '#', HOOKFILE_MAX_SIZE);
	for (i = 100; i < HOOKFILE_MAX_SIZE; i += 100)
		big[i] = '\n';
	memcpy(big, "z https://h\n", 12);
	parse_bad_len(big, HOOKFILE_MAX_SIZE + 1, "hooks: larger than 1 MiB",
	    "a file of 1 MiB and a byte");
	rc = hookfile_parse(big, HOOKFILE_MAX_SIZE, "hooks", &hf, err,
	    sizeof err);
	is_int(rc, 0, "a file of 1 MiB");
	is_int(hf.n, 1, "a file of 1 MiB: its destination");
	hookfile_free(&hf);

	/* hookfile_load */
	snprintf(path, sizeof path, "%s", write_file(big, HOOKFILE_MAX_SIZE));
	rc = hookfile_load(path, &hf, err, sizeof err);
	is_int(rc, 0, "load a file of 1 MiB");
	hookfile_free(&hf);
	unlink(path);
	snprintf(path, sizeof path, "%s", write_file(big,
	    HOOKFILE_MAX_SIZE + 1));
	rc = hookfile_load(path, &hf, err, sizeof err);
	is_int(rc, -ERR_CONFIG, "load a file of 1 MiB and a byte");
	snprintf(line, sizeof line, "%s: larger than 1 MiB", path);
	is_str(err, line, "load a file too large: message");
	unlink(path);
	snprintf(path, sizeof path, "%s", write_file("x https://h\ny\n", 14));
	rc = hookfile_load(path, &hf, err, sizeof err);
	is_int(rc, -ERR_CONFIG, "load a bad file");
	snprintf(line, sizeof line, "%s:2: no destination after the name y",
	    path);
	is_str(err, line, "load a bad file: its path in the message");
	unlink(path);
	rc = hookfile_load(path, &hf, err, sizeof err);
	is_int(rc, -ERR_NOINPUT, "load a file that is not there");
	snprintf(line, sizeof line, "%s: No such file or directory", path);
	is_str(err, line, "load a missing file: message");
	rc = hookfile_load(tmpdir, &hf, err, sizeof err);
	is_int(rc, -ERR_NOINPUT, "load a directory");
	snprintf(line, sizeof line, "%s: Is a directory", tmpdir);
	is_str(err, line, "load a directory: message");
	free(big);

	/* key and token files */
	secret_ok("k", 1, 4096, "k", 1);
	secret_ok("key\n", 4, 4096, "key", 3);
	secret_ok("key\r\n", 5, 4096, "key", 3);
	secret_ok("key\r", 4, 4096, "key\r", 4);
	secret_ok("a b\t#c\n", 7, 4096, "a b\t#c", 6);
	secret_ok("key\n", 4, 3, "key", 3);
	secret_ok("key\r\n", 5, 3, "key", 3);
	secret_bad("", 0, 256, ERR_CONFIG, "empty (one line of 1 to 256 "
	    "bytes expected)");
	secret_bad("\n", 1, 256, ERR_CONFIG, "empty (one line of 1 to 256 "
	    "bytes expected)");
	secret_bad("\r\n", 2, 256, ERR_CONFIG, "empty (one line of 1 to 256 "
	    "bytes expected)");
	secret_bad("key\n\n", 5, 256, ERR_CONFIG, "a line break inside (one "
	    "line of 1 to 256 bytes expected)");
	secret_bad("a\nb", 3, 256, ERR_CONFIG, "a line break inside (one line "
	    "of 1 to 256 bytes expected)");
	secret_bad("a\0b", 3, 256, ERR_CONFIG, "a NUL byte in it (one line "
	    "of 1 to 256 bytes expected)");
	secret_bad("keys", 4, 3, ERR_CONFIG, "longer than 3 bytes");
	secret_bad("keys\n", 5, 3, ERR_CONFIG, "longer than 3 bytes");
	secret_bad("keys\r\n", 6, 3, ERR_CONFIG, "longer than 3 bytes");
	secret_bad("key\n\n\n\n", 7, 3, ERR_CONFIG, "longer than 3 bytes");
	{
		char *k = malloc(HOOK_SECRET_MAX + 2);

		if (k == NULL)
			bail_out("malloc");
		memset(k, 's', HOOK_SECRET_MAX + 1);
		k[HOOK_SECRET_MAX] = '\n';
		secret_ok(k, HOOK_SECRET_MAX + 1, HOOK_SECRET_MAX, k,
		    HOOK_SECRET_MAX);
		k[HOOK_SECRET_MAX] = 's';
		secret_bad(k, HOOK_SECRET_MAX + 1, HOOK_SECRET_MAX, ERR_CONFIG,
		    "longer than 4096 bytes");
		free(k);
	}
	snprintf(path, sizeof path, "%s/none", tmpdir);
	rc = hookfile_read_secret(path, 256, &buf, &n, err, sizeof err);
	is_int(rc, -ERR_NOINPUT, "a secret file that is not there");
	snprintf(line, sizeof line, "%s: No such file or directory", path);
	is_str(err, line, "a missing secret file: message");
	ok(buf == NULL, "a missing secret file: no buffer");
	rc = hookfile_read_secret(tmpdir, 256, &buf, &n, err, sizeof err);
	is_int(rc, -ERR_NOINPUT, "a directory as a secret file");

	rmdir(tmpdir);
	return done_testing();
}
