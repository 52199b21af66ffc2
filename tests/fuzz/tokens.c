/* tokens.c: the fuzz target of lib/tokens.c: any text is parsed or refused
 * with an error naming it; every "TOKEN CLASS" line of a parsed text finds
 * its class, and other strings find none or a real class. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokens.h"

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "tokens fuzz: %s\n", what);
		abort();
	}
}

static int
blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size, *line, *nl, *p;
	const char *w[2], *cls;
	size_t wl[2], n, lines = 0, k;
	struct tokens *t;
	char err[256];
	int nw;

	memset(err, 0, sizeof err);
	t = tokens_parse(s, size, "fuzz", err, sizeof err);
	if (t == NULL) {
		check(strncmp(err, "fuzz", 4) == 0, "an error without the name");
		check(memchr(err, '\0', sizeof err) != NULL, "an unended error");
		return 0;
	}
	check(tokens_count(t) >= 1, "parsed with no tokens");
	for (line = s; line < end; line = nl + 1) {
		lines++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		for (nw = 0, p = line; p < line + n && nw < 2;) {
			while (p < line + n && blank(*p))
				p++;
			if (p == line + n || *p == '#')
				break;
			w[nw] = p;
			while (p < line + n && !blank(*p))
				p++;
			wl[nw] = (size_t)(p - w[nw]);
			nw++;
		}
		if (nw < 2)
			continue;
		cls = tokens_class(t, w[0], wl[0]);
		check(cls != NULL, "a token of the file not found");
		check(strlen(cls) == wl[1] && memcmp(cls, w[1], wl[1]) == 0,
		    "a token found with another class");
	}
	check(tokens_count(t) <= lines, "more tokens than lines");
	/* any other string: no class, or a real one */
	for (k = 0; k < size && k < 64; k += 7) {
		cls = tokens_class(t, s + k, size - k < 9 ? size - k : 9);
		if (cls != NULL) {
			check(cls[0] != '\0', "an empty class");
			for (p = cls; *p; p++)
				check((unsigned char)*p >= 0x20 && *p != 0x7f,
				    "a control byte in a class");
		}
	}
	tokens_free(t);
	return 0;
}
