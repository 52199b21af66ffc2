/* test_prog.c: the command line every program shares (cmd/opt.c,
 * cmd/prog.c): options from one table, the layout of --help, and the exit
 * statuses by name. A program exits on a bad option, so each parse runs in
 * a child of its own, as a program would, and the parent reads its status,
 * its stdout and its stderr.
 *
 * `test_prog --exit-table` prints exit_table instead, "CODE NAME" a line,
 * for tests/conventions.bats to hold labpulse(7) to it. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "prog.h"
#include "tap.h"

/* A config with a field of every option type. */
struct tcfg {
	long dur;
	int flag;
	long half;
	long key;
	const char *list[3];
	int nlist;
	const char *name;
	long num;
	long size;
	const char *str;
	const char *text;
};

/* An OT_FN parser: an even number from 0 to 100, stored halved. */
static int
opt_half(const struct opt *o, const char *arg, void *cfg, char *err,
    size_t errlen)
{
	long v;

	if (parse_long(arg, 0, 100, &v, err, errlen) < 0)
		return -1;
	if (v % 2) {
		snprintf(err, errlen, "'%s' is odd", arg);
		return -1;
	}
	*(long *)(void *)((char *)cfg + o->off) = v / 2;
	return 0;
}

#define OPT_CFG struct tcfg
static const struct opt options[] = {
	O_DURATION("duration", dur, "10ms", "1h", "30s", "a duration"),
	O_FLAG("flag", flag, "a flag"),
	O_FN("half", "EVEN", half, opt_half, "8", "an even number, kept halved"),
	/* no macro makes a short letter: a row of its own */
	{ OPT_ROW("keyed", 'k', OT_LONG, "N", key), "0", "9", NULL,
	  "a number with a letter", NULL, NULL, 0 },
	O_LIST("list", "ITEM", list, nlist, "3", "none", "repeatable"),
	O_NAME("name", "NAME", name, "8", "default", "a name"),
	O_LONG("num", num, "1", "100", "10", "a number"),
	O_SIZE("size", size, "1KiB", "1GiB", "1MiB", "a size"),
	O_STR("str", "TEXT", str, "dflt", "a text"),
	O_TEXT("text", "TEXT", text, "$HOME, else /", "a text the program "
	    "computes when it is not given"),
	O_END
};

static const struct prog_opts topts = {
	"t", "A program to test the options with.", options, NULL, NULL,
	"More: the environment, examples.\n"
};

/* The same options taking operands. */
static const struct prog_opts topts_files = {
	"t", "The same, with files.", options, "FILE...", NULL, NULL
};

/* Long names and help that must wrap. */
static const struct opt wide_options[] = {
	O_DURATION("a-rather-long-option-name", dur, "0", "1h", "10s",
	    "a help text long enough that it cannot stay on one line of "
	    "eighty columns and wraps"),
	O_LONG("number-with-a-long-name", num, "0", "1000000000", "1000000",
	    "entries past which the whole thing stops, 0 for no bound"),
	O_LIST("x", "HOST:PORT", list, nlist, "3", "127.0.0.1:8000, or "
	    "systemd's sockets", "where to listen"),
	O_END
};

static const struct prog_opts wide = {
	"wide-program-name", "A summary long enough to be wrapped at eighty "
	"columns like the rest of the help, and then some more words.",
	wide_options, "FILE...", NULL, NULL
};

/* A default out of its own range: a bug in the table. */
static const struct opt bad_options[] = {
	O_LONG("num", num, "1", "100", "0", "a number"),
	O_END
};

static const struct prog_opts bad_table = {
	"t", "A bad table.", bad_options, NULL, NULL, NULL
};

/* What a child did: its exit status (128 + the signal when killed),
 * what it wrote on stdout and on stderr. */
struct run {
	int status;
	char out[8192];
	char err[8192];
};

static void
slurp(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Run fn(arg) in a child with its stdout and stderr in files. */
static void
run_child(void (*fn)(void *), void *arg, struct run *r)
{
	FILE *out = tmpfile(), *err = tmpfile();
	pid_t pid;
	int st;

	if (out == NULL || err == NULL)
		bail_out("tmpfile failed");
	fflush(NULL);
	if ((pid = fork()) < 0)
		bail_out("fork failed");
	if (pid == 0) {
		dup2(fileno(out), STDOUT_FILENO);
		dup2(fileno(err), STDERR_FILENO);
		log_init("test_prog");
		fn(arg);
		fflush(NULL);
		_exit(EX_OK);
	}
	if (waitpid(pid, &st, 0) < 0)
		bail_out("waitpid failed");
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp(out, r->out, sizeof r->out);
	slurp(err, r->err, sizeof r->err);
}

struct parse {
	const struct prog_opts *p;
	int argc;
	char *argv[32];
};

static const char *
str(const char *s)
{
	return s ? s : "NULL";
}

/* In the child: parse, then print the config and the options given. */
static void
parse_child(void *arg)
{
	struct parse *a = arg;
	struct tcfg c;
	int first, i;

	memset(&c, 0, sizeof c);
	optind = 0;
	first = opt_parse(a->p, a->argc, a->argv, &c);
	printf("dur=%ld flag=%d half=%ld key=%ld list=%d", c.dur, c.flag,
	    c.half, c.key, c.nlist);
	for (i = 0; i < c.nlist; i++)
		printf("%c%s", i ? ',' : ':', c.list[i]);
	printf(" name=%s num=%ld size=%ld str=%s text=%s first=%d given=",
	    str(c.name), c.num, c.size, str(c.str), str(c.text), first);
	for (i = 0; a->p->opts[i].name; i++)
		if (opt_given(a->p->opts[i].name))
			printf("%s,", a->p->opts[i].name);
	printf("\n");
}

/* Parse args (ending at NULL) in a child. */
static void
parse_args(struct run *r, const struct prog_opts *p, const char *const *args)
{
	struct parse a;

	a.p = p;
	a.argc = 0;
	a.argv[a.argc++] = (char *)"t";
	while (*args && a.argc < 31)
		a.argv[a.argc++] = (char *)*args++;
	a.argv[a.argc] = NULL;
	run_child(parse_child, &a, r);
}

/* The same with the arguments after p. */
static void
parse(struct run *r, const struct prog_opts *p, ...)
{
	const char *args[32];
	va_list ap;
	int n = 0;

	va_start(ap, p);
	while (n < 31 && (args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	args[n] = NULL;
	parse_args(r, p, args);
}

/* The first line of text, in a buffer of its own. */
static const char *
first_line(const char *text)
{
	static char line[1024];
	size_t n = strcspn(text, "\n");

	if (n >= sizeof line)
		n = sizeof line - 1;
	memcpy(line, text, n);
	line[n] = '\0';
	return line;
}

static void
test_defaults(void)
{
	struct run r;

	parse(&r, &topts, NULL);
	is_int(r.status, EX_OK, "no options: exit status");
	is_str(r.out, "dur=30000 flag=0 half=4 key=0 list=0 name=default "
	    "num=10 size=1048576 str=dflt text=NULL first=1 given=\n",
	    "no options: every default from the table's text, none given");
	is_str(r.err, "", "no options: nothing on stderr");
}

static void
test_types(void)
{
	struct run r;

	parse(&r, &topts, "--duration", "500ms", "--flag", "--half", "6",
	    "-k", "3", "--list", "a", "--list", "b", "--name", "12345678",
	    "--num", "100", "--size", "512KiB", "--str", "s", "--text", "t",
	    NULL);
	is_int(r.status, EX_OK, "every type: exit status");
	is_str(r.out, "dur=500 flag=1 half=3 key=3 list=2:a,b name=12345678 "
	    "num=100 size=524288 str=s text=t first=22 given=duration,flag,"
	    "half,keyed,list,name,num,size,str,text,\n",
	    "every type: values in their units, each given");

	parse(&r, &topts, "--num=7", "--str=a=b", "--duration=2m",
	    "--list=x", NULL);
	is_str(r.out, "dur=120000 flag=0 half=4 key=0 list=1:x name=default "
	    "num=7 size=1048576 str=a=b text=NULL first=5 given=duration,list,"
	    "num,str,\n", "--name=value: the value after the first '='");

	parse(&r, &topts, "--num", "5", "--num", "6", "--size", "1k",
	    "--size", "2048", NULL);
	is_str(r.out, "dur=30000 flag=0 half=4 key=0 list=0 name=default "
	    "num=6 size=2048 str=dflt text=NULL first=9 given=num,size,\n",
	    "an option given twice: the last wins");

	parse(&r, &topts, "--num", "1", "--size", "1GiB", "--duration",
	    "10ms", NULL);
	is_str(r.out, "dur=10 flag=0 half=4 key=0 list=0 name=default "
	    "num=1 size=1073741824 str=dflt text=NULL first=7 given=duration,"
	    "num,size,\n", "the bounds themselves are in range");
}

/* Command lines refused: the message that comes first on stderr. */
static const struct {
	const char *args[9];
	const char *msg;
	const char *what;
} refusals[] = {
	{ { "--num", "0" }, "--num: number '0' out of range (1 to 100)",
	  "below the range" },
	{ { "--num=101" }, "--num: number '101' out of range (1 to 100)",
	  "above the range" },
	{ { "--num", "ten" }, "--num: invalid number 'ten'", "not a number" },
	{ { "--size", "1023" },
	  "--size: size '1023' out of range (1024 to 1073741824)",
	  "a size out of range, in bytes" },
	{ { "--duration", "2h" },
	  "--duration: duration '2h' out of range (10 to 3600000)",
	  "a duration out of range, in milliseconds" },
	{ { "--duration", "5y" },
	  "--duration: invalid duration '5y': unknown unit 'y'",
	  "a duration in an unknown unit" },
	{ { "-k", "10" }, "--keyed: number '10' out of range (0 to 9)",
	  "a short option is named by its long name" },
	{ { "--name", "" }, "--name: must be 1 to 8 bytes", "an empty name" },
	{ { "--name", "123456789" }, "--name: must be 1 to 8 bytes",
	  "a name too long" },
	{ { "--half", "3" }, "--half: '3' is odd",
	  "an O_FN parser's own reason" },
	{ { "--list", "a", "--list", "b", "--list", "c", "--list", "d" },
	  "--list: at most 3", "a list past its bound" },
	{ { "--bogus" }, "unknown option '--bogus'", "an unknown option" },
	{ { "--bogus=1" }, "unknown option '--bogus'",
	  "an unknown option=value" },
	{ { "-x" }, "unknown option '-x'", "an unknown short option" },
	{ { "--num" }, "option '--num' needs a value", "a missing value" },
	{ { "--flag", "file" }, "unexpected argument 'file'",
	  "an operand where none are taken" },
};

/* Each refused with status 64, its message first on stderr, then the
 * usage; nothing on stdout. */
static void
test_refused(void)
{
	struct run r;
	char want[512];
	size_t i;

	for (i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const char *what = refusals[i].what;

		parse_args(&r, &topts, refusals[i].args);
		snprintf(want, sizeof want, "test_prog: error: %s",
		    refusals[i].msg);
		is_int(r.status, EX_USAGE, "%s: exit status", what);
		is_str(first_line(r.err), want, "%s: message", what);
		ok(strstr(r.err, "\nusage: labpulse t [--duration DURATION]") !=
		    NULL, "%s: usage follows on stderr", what);
		is_str(r.out, "", "%s: nothing on stdout", what);
	}
	parse(&r, &topts, "--flag=1", NULL);
	is_int(r.status, EX_USAGE, "a value for a flag: exit status");
}

static void
test_operands(void)
{
	struct run r;

	parse(&r, &topts_files, "--num", "5", "a", "b", NULL);
	is_int(r.status, EX_OK, "operands taken: exit status");
	ok(strstr(r.out, " num=5 ") && strstr(r.out, " first=3 "),
	    "operands taken: the index of the first one");
	parse(&r, &topts_files, "a", "--num", "5", "b", NULL);
	ok(strstr(r.out, " num=5 ") && strstr(r.out, " first=3 "),
	    "options after operands are read too");
	parse(&r, &topts_files, "--num", "5", "--", "--flag", NULL);
	ok(strstr(r.out, " flag=0 ") && strstr(r.out, " first=4 "),
	    "after --, an operand");
}

static const char help_want[] =
"usage: labpulse t [--duration DURATION] [--flag] [--half EVEN] [--keyed N]\n"
"           [--list ITEM]... [--name NAME] [--num N] [--size SIZE] [--str TEXT]\n"
"           [--text TEXT]\n"
"       labpulse t --help | --version\n"
"A program to test the options with.\n"
"\n"
"  --duration DURATION       a duration (10ms to 1h; default: 30s)\n"
"  --flag                    a flag\n"
"  --half EVEN               an even number, kept halved (default: 8)\n"
"  --keyed N                 a number with a letter (0 to 9)\n"
"  --list ITEM               repeatable (default: none)\n"
"  --name NAME               a name (default: default)\n"
"  --num N                   a number (1 to 100; default: 10)\n"
"  --size SIZE               a size (1KiB to 1GiB; default: 1MiB)\n"
"  --str TEXT                a text (default: dflt)\n"
"  --text TEXT               a text the program computes when it is not given\n"
"                            (default: $HOME, else /)\n"
"  -h, --help                show this help\n"
"  -V, --version             show the version\n"
"\n"
"More: the environment, examples.\n";

static void
test_help(void)
{
	struct run r;

	parse(&r, &topts, "--help", NULL);
	is_int(r.status, EX_OK, "--help: exit status");
	is_str(r.out, help_want, "--help: usage, summary, one row an option "
	    "with its range and default, then the rest");
	is_str(r.err, "", "--help: nothing on stderr");
	parse(&r, &topts, "-h", "--bogus", NULL);
	is_int(r.status, EX_OK, "-h answers before a later bad option");
	parse(&r, &topts, "--version", NULL);
	is_int(r.status, EX_OK, "--version: exit status");
	ok(strncmp(r.out, "labpulse t ", 11) == 0 &&
	    strchr(r.out, '\n') == r.out + strlen(r.out) - 1,
	    "--version: one line, 'labpulse NAME VERSION'");
}

/* Every line of text at most 80 columns. */
static int
fits(const char *text)
{
	const char *p = text;
	size_t n;

	for (; *p; p += n + (p[n] == '\n')) {
		n = strcspn(p, "\n");
		if (n > 80) {
			diag("    %zu columns: %.*s", n, (int)n, p);
			return 0;
		}
	}
	return 1;
}

static void
test_wrap(void)
{
	struct run r;
	const char *indent = "\n                            ";

	parse(&r, &wide, "--help", NULL);
	is_int(r.status, EX_OK, "wide --help: exit status");
	if (!ok(fits(r.out), "wide --help: no line past 80 columns"))
		diag("%s", r.out);
	ok(strstr(r.out, "DURATION]\n           [--number-with-a-long-name N] "
	    "[--x HOST:PORT]... FILE...\n") != NULL,
	    "usage: wraps at 80, lines indented under the command");
	ok(strstr(r.out, "\n  --a-rather-long-option-name DURATION\n"
	    "                            a help text") != NULL,
	    "a head too wide for its column: the text starts on the next line");
	ok(strstr(r.out, "\n  --x HOST:PORT             where to listen "
	    "(default: 127.0.0.1:8000, or") != NULL &&
	    strstr(r.out, "or\n                            systemd's sockets)\n")
	    != NULL, "a shown default wraps like words");
	ok(strstr(r.out, "(0 to 1000000000; default:") != NULL ||
	    strstr(r.out, "(0 to 1000000000;\n") != NULL,
	    "range and default in one parenthesis");
	ok(strstr(r.out, indent) != NULL, "continuation lines at column 28");
	ok(strstr(r.out, "\nA summary long enough to be wrapped at eighty "
	    "columns like the rest of the help,\nand then") != NULL,
	    "the summary wraps at 80 too");
}

static void
test_bad_table(void)
{
	struct run r;

	parse(&r, &bad_table, NULL);
	is_int(r.status, EX_SOFTWARE, "a default out of range in the table: "
	    "EX_SOFTWARE");
	is_str(first_line(r.err), "test_prog: error: --num: bad default in "
	    "the option table: number '0' out of range (1 to 100)",
	    "a bad default: the message names the option");
}

static void
test_exit_status(void)
{
	static const struct {
		int kind, status;
	} kinds[] = {
		{ ERR_USAGE, EX_USAGE },
		{ ERR_DATA, EX_DATAERR },
		{ ERR_NOINPUT, EX_NOINPUT },
		{ ERR_UNAVAILABLE, EX_UNAVAILABLE },
		{ ERR_SOFTWARE, EX_SOFTWARE },
		{ ERR_OS, EX_OSERR },
		{ ERR_IO, EX_IOERR },
		{ ERR_TEMP, EX_TEMPFAIL },
		{ ERR_CONFIG, EX_CONFIG },
	};
	size_t i;

	is_int(sizeof kinds / sizeof kinds[0], ERR__COUNT - 1,
	    "every kind of err.h is tested here");
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		is_int(exit_status(kinds[i].kind), kinds[i].status,
		    "exit_status(kind %d)", kinds[i].kind);
		is_int(exit_status(-kinds[i].kind), kinds[i].status,
		    "exit_status(-kind %d), as lib/ returns it", kinds[i].kind);
	}
	is_int(exit_status(0), EX_OSERR, "exit_status(0): EX_OSERR");
	is_int(exit_status(ERR__COUNT), EX_OSERR, "an unknown kind: EX_OSERR");
	is_int(exit_status(-1000), EX_OSERR, "a far kind: EX_OSERR");
}

static int
in_table(int code)
{
	int i;

	for (i = 0; exit_table[i].name; i++)
		if (exit_table[i].code == code)
			return 1;
	return 0;
}

static void
test_exit_table(void)
{
	int i, j, dup = 0, bad = 0, n;

	for (n = 0; exit_table[n].name; n++) {
		if (exit_table[n].code < 0 || exit_table[n].code > 125 ||
		    exit_table[n].meaning == NULL ||
		    exit_table[n].meaning[0] == '\0') {
			diag("    row %d: %d %s", n, exit_table[n].code,
			    exit_table[n].name);
			bad++;
		}
		for (j = 0; j < n; j++)
			if (exit_table[j].code == exit_table[n].code ||
			    strcmp(exit_table[j].name, exit_table[n].name) == 0) {
				diag("    rows %d and %d: %d %s, %d %s", j, n,
				    exit_table[j].code, exit_table[j].name,
				    exit_table[n].code, exit_table[n].name);
				dup++;
			}
	}
	ok(n > 0, "exit_table has rows");
	is_int(dup, 0, "exit_table: every code and every name once");
	is_int(bad, 0, "exit_table: codes from 0 to 125, each with a meaning");
	ok(in_table(EX_OK) && in_table(EX_CHECK) && in_table(EX_USAGE),
	    "exit_table holds EX_OK, EX_CHECK and EX_USAGE");
	for (bad = 0, i = 1; i < ERR__COUNT; i++)
		if (!in_table(exit_status(i))) {
			diag("    kind %d: %d", i, exit_status(i));
			bad++;
		}
	is_int(bad, 0, "exit_table holds the status of every kind");
	is_int(exit_table[n].code, 0, "exit_table ends at a zero row");
}

static void
call_die(void *arg)
{
	(void)arg;
	die(EX_CONFIG, "bad %s", "config");
}

static void
call_die_kind(void *arg)
{
	optind = 0;
	opt_parse(&topts, 1, (char *[]){ (char *)"t", NULL }, &(struct tcfg){ 0 });
	die_kind(*(int *)arg, "kind %d", *(int *)arg);
}

static void
call_nomem(void *arg)
{
	(void)arg;
	die_nomem();
}

static void
call_usage_error(void *arg)
{
	optind = 0;
	opt_parse(&topts, 1, (char *[]){ (char *)"t", NULL }, &(struct tcfg){ 0 });
	usage_error("%s and %s conflict", (const char *)arg, "--flag");
}

static int
unknown(const char *msg, int code)
{
	(void)code;
	printf("hook: %s\n", msg);
	return 3;
}

static void
call_hooked(void *arg)
{
	(void)arg;
	prog_fatal_hook = unknown;
	die(EX_UNAVAILABLE, "gone");
}

static void
test_die(void)
{
	struct run r;
	int kind;

	run_child(call_die, NULL, &r);
	is_int(r.status, EX_CONFIG, "die: its status");
	is_str(r.err, "test_prog: error: bad config\n", "die: one log line");
	kind = -ERR_UNAVAILABLE;
	run_child(call_die_kind, &kind, &r);
	is_int(r.status, EX_UNAVAILABLE, "die_kind(-ERR_UNAVAILABLE): "
	    "EX_UNAVAILABLE");
	ok(strstr(r.err, "usage:") == NULL, "die_kind: no usage for a kind "
	    "other than ERR_USAGE");
	kind = -ERR_USAGE;
	run_child(call_die_kind, &kind, &r);
	is_int(r.status, EX_USAGE, "die_kind(-ERR_USAGE): EX_USAGE");
	ok(strstr(r.err, "\nusage: labpulse t ") != NULL,
	    "die_kind(-ERR_USAGE): the usage follows");
	run_child(call_nomem, NULL, &r);
	is_int(r.status, EX_OSERR, "die_nomem: EX_OSERR");
	is_str(r.err, "test_prog: error: out of memory\n",
	    "die_nomem: its message");
	run_child(call_usage_error, (void *)"--num", &r);
	is_int(r.status, EX_USAGE, "usage_error: EX_USAGE");
	is_str(first_line(r.err), "test_prog: error: --num and --flag "
	    "conflict", "usage_error: its message first");
	ok(strstr(r.err, "\nusage: labpulse t ") != NULL &&
	    strstr(r.err, "--help | --version\n") != NULL,
	    "usage_error: then the whole usage");
	run_child(call_hooked, NULL, &r);
	is_int(r.status, 3, "prog_fatal_hook chooses the status");
	is_str(r.out, "hook: gone\n", "prog_fatal_hook gets the message");
}

int
main(int argc, char **argv)
{
	int i;

	if (argc == 2 && strcmp(argv[1], "--exit-table") == 0) {
		for (i = 0; exit_table[i].name; i++)
			printf("%d %s\n", exit_table[i].code,
			    exit_table[i].name);
		return EX_OK;
	}
	test_defaults();
	test_types();
	test_refused();
	test_operands();
	test_help();
	test_wrap();
	test_bad_table();
	test_exit_status();
	test_exit_table();
	test_die();
	return done_testing();
}
