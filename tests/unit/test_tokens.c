/* test_tokens.c: the token file of tokens.h: what a line may hold, the
 * errors naming FILE:LINE, and lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokens.h"
#include "tap.h"

static struct tokens *
parse(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return tokens_parse(text, strlen(text), "tok", err, errlen);
}

static void
class_is(const struct tokens *t, const char *tok, const char *want)
{
	const char *got = tokens_class(t, tok, strlen(tok));

	is_str(got ? got : "(none)", want ? want : "(none)",
	    "token '%s': class %s", tok, want ? want : "none");
}

static void
test_good(void)
{
	char err[256];
	struct tokens *t;

	t = parse("# token class\n"
	    "secret-a CS101\n"
	    "\n"
	    "   \t\n"
	    "secret-b\t MATH2   # a comment after the fields\n"
	    "  site-wide *\n"
	    "crlf-token PHYS1\r\n"
	    "last-line-no-newline \xc3\xa9t\xc3\xa9", err, sizeof err);
	if (!ok(t != NULL, "a file with comments, blanks, * and CRLF: parsed"))
		diag("    %s", err);
	is_int(tokens_count(t), 5, "five tokens");
	class_is(t, "secret-a", "CS101");
	class_is(t, "secret-b", "MATH2");
	class_is(t, "site-wide", "*");
	class_is(t, "crlf-token", "PHYS1");
	class_is(t, "last-line-no-newline", "\xc3\xa9t\xc3\xa9");
	class_is(t, "secret", NULL);
	class_is(t, "secret-a ", NULL);
	class_is(t, "secret-aa", NULL);
	class_is(t, "", NULL);
	class_is(t, "# token", NULL);
	ok(tokens_class(t, "secret-a\0x", 10) == NULL,
	    "a token with a NUL after it: no match");
	ok(tokens_class(t, "secret-a", 8) != NULL, "length-bounded lookup");
	ok(tokens_class(NULL, "secret-a", 8) == NULL, "no tokens: no match");
	tokens_free(t);
	tokens_free(NULL);
	is_int(tokens_count(NULL), 0, "no tokens: count 0");
}

static void
test_bad(void)
{
	static const struct {
		const char *name, *text, *err;
	} bad[] = {
		{ "one field", "good CS1\n\nbad\n", "tok:3: expected TOKEN CLASS" },
		{ "three fields", "a CS1 extra\n",
		    "tok:1: expected TOKEN CLASS, found more fields" },
		{ "four fields", "# c\na b c d\n",
		    "tok:2: expected TOKEN CLASS, found more fields" },
		{ "empty", "", "tok: no tokens" },
		{ "comments only", "# a\n  # b\n\n", "tok: no tokens" },
		{ "a control byte in the token", "a\x01" "b CS1\n",
		    "tok:1: control byte in the token" },
		{ "DEL in the class", "ab CS\x7f" "1\n",
		    "tok:1: control byte or not UTF-8 in the class" },
		{ "a CR inside", "ab C\rS1\n",
		    "tok:1: control byte or not UTF-8 in the class" },
		{ "Latin-1 class", "ab caf\xe9\n",
		    "tok:1: control byte or not UTF-8 in the class" },
		{ "a token given twice", "a X\nb Y\na Z\n",
		    "tok:3: token given twice (first on line 1)" },
	};
	char err[256], big[2100];
	struct tokens *t;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t = parse(bad[i].text, err, sizeof err);
		ok(t == NULL, "%s: refused", bad[i].name);
		is_str(err, bad[i].err, "%s: the error", bad[i].name);
		tokens_free(t);
	}
	/* a NUL byte in the text, which strlen would hide */
	t = tokens_parse("a\0b CS1\n", 8, "tok", err, sizeof err);
	ok(t == NULL, "a NUL in the token: refused");
	is_str(err, "tok:1: control byte in the token", "a NUL: the error");

	/* the bounds: token 256, class 128, line 1023 bytes */
	memset(big, 'a', 256);
	strcpy(big + 256, " CS1\n");
	t = parse(big, err, sizeof err);
	ok(t != NULL, "a token of 256 bytes: taken");
	tokens_free(t);
	memset(big, 'a', 257);
	strcpy(big + 257, " CS1\n");
	t = parse(big, err, sizeof err);
	is_str(err, "tok:1: token longer than 256 bytes", "a token of 257 bytes");
	strcpy(big, "tk ");
	memset(big + 3, 'c', 129);
	strcpy(big + 132, "\n");
	t = parse(big, err, sizeof err);
	is_str(err, "tok:1: class longer than 128 bytes", "a class of 129 bytes");
	strcpy(big, "tk CS1 #");
	memset(big + 8, 'x', 1016);
	strcpy(big + 1024, "\n");
	t = parse(big, err, sizeof err);
	is_str(err, "tok:1: line longer than 1023 bytes",
	    "a line of 1024 bytes (a comment counts)");
	big[1023] = '\0';
	t = parse(big, err, sizeof err);
	ok(t != NULL, "a line of 1023 bytes: taken");
	tokens_free(t);
}

static void
test_load(void)
{
	char path[] = "/tmp/test_tokens.XXXXXX", err[512];
	struct tokens *t;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		skip(4, "no temporary file");
		return;
	}
	fputs("# tokens\nk1 CS1\nk2 *\n", f);
	fclose(f);
	t = tokens_load(path, err, sizeof err);
	ok(t != NULL && tokens_count(t) == 2, "load: two tokens");
	class_is(t, "k2", "*");
	tokens_free(t);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("k1 CS1\nk2\n", f);
		fclose(f);
	}
	t = tokens_load(path, err, sizeof err);
	{
		char want[600];

		snprintf(want, sizeof want, "%s:2: expected TOKEN CLASS", path);
		is_str(err, want, "load: the error names the file and line");
	}
	unlink(path);
	t = tokens_load(path, err, sizeof err);
	ok(t == NULL && strstr(err, "cannot open token file") != NULL,
	    "load: a missing file: %s", err);
}

/* The digest instructors.token_hash keeps: FIPS 180-2's "abc" vector. */
static void
test_hex(void)
{
	char hex[TOKENS_HEX_SIZE];

	tokens_sha256_hex("abc", 3, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad", "sha256 hex of abc");
	tokens_sha256_hex("a\0b", 3, hex);
	ok(strlen(hex) == 64, "sha256 hex of bytes with a NUL: 64 digits");
	/* a webhook's signature: RFC 4231's test case 2 */
	tokens_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28,
	    hex);
	is_str(hex, "5bdcc146bf60754e6a042426089575c7"
	    "5a003f089d2739839dec58b964ec3843", "hmac-sha256 hex, RFC 4231 2");
	tokens_hex("\x00\xff\x10", 3, hex);
	is_str(hex, "00ff10", "hex of three bytes");
}

int
main(void)
{
	test_good();
	test_bad();
	test_load();
	test_hex();
	return done_testing();
}
