/* hookfile.c: the fuzz target of lib/hookfile.c: any text is parsed or
 * refused with an error naming it and a line; what is parsed holds only
 * destinations within the file's rules, each found by its name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hookfile.h"

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "hookfile fuzz: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct hookdest *d;
	struct hookfile hf;
	char err[256];
	size_t i, k, nl;
	int rc;

	memset(err, 0, sizeof err);
	rc = hookfile_parse((const char *)data, size, "fuzz", &hf, err,
	    sizeof err);
	if (rc < 0) {
		check(rc == -ERR_CONFIG || rc == -ERR_OS, "an unknown kind");
		check(strncmp(err, "fuzz:", 5) == 0, "an error without the name");
		check(memchr(err, '\0', sizeof err) != NULL, "an unended error");
		check(hf.n == 0 && hf.d == NULL, "not empty after an error");
		return 0;
	}
	for (nl = 0, i = 0; i < size; i++)
		nl += data[i] == '\n';
	check(hf.n <= HOOKFILE_MAX_DEST, "too many destinations");
	check(hf.n <= nl + 1, "more destinations than lines");
	for (i = 0; i < hf.n; i++) {
		d = &hf.d[i];
		k = strlen(d->name);
		check(k >= 1 && k <= HOOK_NAME_MAX, "a name's length");
		check(strspn(d->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
		    "opqrstuvwxyz0123456789_.-") == k, "a name's bytes");
		check(hookfile_find(&hf, d->name, k) == d, "not found by name");
		check(d->rate >= HOOK_RATE_MIN * 0.999999 &&
		    d->rate <= HOOK_RATE_MAX, "a rate out of range");
		check(d->burst >= 1 && d->burst <= HOOK_BURST_MAX, "a burst");
		check(d->line >= 1 && (size_t)d->line <= nl + 1, "a line");
		check(i == 0 || d->line > hf.d[i - 1].line, "lines in order");
		if (d->kind == HOOK_WEBHOOK) {
			check(strncasecmp(d->target, "http", 4) == 0, "a URL");
			check(strlen(d->target) <= HOOK_URL_MAX, "a URL's length");
			check(d->token_file == NULL, "a webhook's token file");
			check(d->group == 0, "a webhook group");
		} else {
			check(d->kind == HOOK_TELEGRAM, "a kind");
			check(d->secret_file == NULL, "a chat's secret file");
			check(d->group == (d->target[0] == '-' ||
			    d->target[0] == '@'), "a chat's group");
		}
		check(d->secret_file == NULL || d->secret_file[0] != '\0',
		    "an empty secret file");
	}
	check(hookfile_find(&hf, "", 0) == NULL, "an empty name found");
	hookfile_free(&hf);
	return 0;
}
