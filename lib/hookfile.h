/* hookfile.h: the hooks file that notify delivers by and route names its
 * hooks from: one destination a line, "NAME DESTINATION [KEY=VALUE...]",
 * the destination a webhook URL or telegram:CHAT; '#' starts a comment. */
#ifndef LABPULSE_HOOKFILE_H
#define LABPULSE_HOOKFILE_H

#include <stddef.h>

enum hook_kind { HOOK_WEBHOOK, HOOK_TELEGRAM };

#define HOOKFILE_MAX_DEST	1000
#define HOOKFILE_MAX_LINE	4096		/* bytes, without the line end */
#define HOOKFILE_MAX_SIZE	(1024 * 1024)
#define HOOK_NAME_MAX		64
#define HOOK_URL_MAX		2048
#define HOOK_SECRET_MAX		4096	/* a secret-file's key */
#define HOOK_TOKEN_MAX		256	/* a token-file's bot token */

/* The rates a line may ask for, per second: 1/h to 1000/s. */
#define HOOK_RATE_MIN		(1.0 / 3600)
#define HOOK_RATE_MAX		1000.0
#define HOOK_BURST_MAX		1000

struct hookdest {
	char name[HOOK_NAME_MAX + 1];
	enum hook_kind kind;
	char target[HOOK_URL_MAX + 1];	/* the URL, or CHAT of telegram:CHAT */
	int group;			/* Telegram: a group or channel chat
					 * (negative id or @username) */
	double rate;			/* per second */
	long burst;
	char *secret_file, *token_file;	/* NULL when not given */
	int line;
};

struct hookfile {
	struct hookdest *d;		/* in the file's order */
	size_t n;
	size_t *byname;			/* indexes of d sorted by name */
};

/* Parse text (len bytes, not necessarily NUL-terminated) read from the file
 * named fname (for messages): 0, or -ERR_CONFIG with "FNAME:LINE: reason"
 * (or "FNAME: reason" for the whole file) in err, -ERR_OS when memory ran
 * out. hf is empty on failure. A file of no destinations is valid. */
int hookfile_parse(const char *text, size_t len, const char *fname,
    struct hookfile *hf, char *err, size_t errlen);
/* Read and parse path: -ERR_NOINPUT when it cannot be read ("PATH:
 * strerror"), else as hookfile_parse. */
int hookfile_load(const char *path, struct hookfile *hf, char *err,
    size_t errlen);
/* The destination named by the namelen bytes at name, or NULL. */
const struct hookdest *hookfile_find(const struct hookfile *hf,
    const char *name, size_t namelen);
/* Release what hf holds and leave it empty (hf may be empty already). */
void hookfile_free(struct hookfile *hf);
/* Read a key or token file: its content less one trailing newline (\n or
 * \r\n), 1 to max bytes, into a malloc'd buf (*len set; a NUL follows the
 * content, not counted). -ERR_NOINPUT (cannot read), -ERR_CONFIG (empty,
 * too long, a NUL or a line break inside), -ERR_OS. Messages name the path
 * and never show the content. */
int hookfile_read_secret(const char *path, size_t max, char **buf,
    size_t *len, char *err, size_t errlen);

#endif
