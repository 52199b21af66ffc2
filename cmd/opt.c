/* opt.c: a program's options from its one table: getopt's long options,
 * the defaults, the range checks, the usage and --help. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "prog.h"

#define OPT_MAX	64		/* options in one table */
#define WIDTH	80		/* --help's and usage's columns */
#define HELPCOL	28		/* where --help's descriptions start */

static const struct prog_opts *prog;
static unsigned char given[OPT_MAX];
static int nargs;		/* the command line being parsed */
static char **args;

typedef int (*num_fn)(const char *, long, long, long *, char *, size_t);

static num_fn
number_parser(enum opt_type t)
{
	return t == OT_SIZE ? parse_size : t == OT_DURATION ?
	    parse_duration_ms : parse_long;
}

/* A bound of the table, in the option's units: a bug when it is no
 * number, so EX_SOFTWARE. */
static long
bound(const struct opt *o, const char *s, long dflt)
{
	char err[200];
	long v;

	if (s == NULL)
		return dflt;
	if (number_parser(o->type)(s, LONG_MIN, LONG_MAX, &v, err,
	    sizeof err) < 0)
		die(EX_SOFTWARE, "--%s: bad bound in the option table: %s",
		    o->name, err);
	return v;
}

/* Store what arg means for o in cfg; -1 with the reason in err. */
static int
set_value(const struct opt *o, const char *arg, void *cfg, char *err,
    size_t errlen)
{
	char *at = (char *)cfg + o->off;
	long max;
	int *count;

	switch (o->type) {
	case OT_FLAG:
		*(int *)at = 1;
		return 0;
	case OT_NAME:
		max = bound(o, o->max, LONG_MAX);
		if (*arg == '\0' || strlen(arg) > (size_t)max) {
			snprintf(err, errlen, "must be 1 to %ld bytes", max);
			return -1;
		}
		/* FALLTHROUGH */
	case OT_STR:
		*(const char **)at = arg;
		return 0;
	case OT_LONG:
	case OT_SIZE:
	case OT_DURATION:
		return number_parser(o->type)(arg, bound(o, o->min, LONG_MIN),
		    bound(o, o->max, LONG_MAX), (long *)(void *)at, err, errlen);
	case OT_LIST:
		count = (int *)(void *)((char *)cfg + o->aux);
		max = bound(o, o->max, LONG_MAX);
		if (*count >= max) {
			snprintf(err, errlen, "at most %ld", max);
			return -1;
		}
		((const char **)(void *)at)[(*count)++] = arg;
		return 0;
	case OT_REAL:
		/* the bounds as the table writes them, not as %g would */
		if (parse_real(arg, strtod(o->min, NULL), strtod(o->max, NULL),
		    (double *)(void *)at, err, errlen) < 0) {
			snprintf(err, errlen, "invalid number '%s' (%s to %s)",
			    arg, o->min, o->max);
			return -1;
		}
		return 0;
	case OT_FN:
		return o->fn(o, arg, cfg, err, errlen);
	}
	return -1;
}

static int
count_opts(const struct opt *opts)
{
	int n = 0;

	while (opts[n].name)
		n++;
	if (n > OPT_MAX)
		die(EX_SOFTWARE, "more than %d options in the table", OPT_MAX);
	return n;
}

int
opt_parse(const struct prog_opts *p, int argc, char **argv, void *cfg)
{
	struct option lo[OPT_MAX + 3];
	char shorts[OPT_MAX * 2 + 8] = ":hV", err[300];
	size_t ns = 3;
	int n, i, ch, idx;

	prog = p;
	memset(given, 0, sizeof given);
	nargs = argc;
	args = argv;
	n = count_opts(p->opts);
	for (i = 0; i < n; i++) {
		const struct opt *o = &p->opts[i];

		lo[i].name = o->name;
		lo[i].has_arg = o->type == OT_FLAG ? no_argument :
		    required_argument;
		lo[i].flag = NULL;
		lo[i].val = 256 + i;
		if (o->key) {
			shorts[ns++] = (char)o->key;
			if (o->type != OT_FLAG)
				shorts[ns++] = ':';
		}
		if (o->dflt && set_value(o, o->dflt, cfg, err, sizeof err) < 0)
			die(EX_SOFTWARE, "--%s: bad default in the option "
			    "table: %s", o->name, err);
	}
	shorts[ns] = '\0';
	lo[n] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	lo[n + 2] = (struct option){ NULL, 0, NULL, 0 };
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (ch == 'h') {
			opt_help();
			exit(EX_OK);
		}
		if (ch == 'V') {
			printf("labpulse %s %s\n", p->name, LABPULSE_VERSION);
			exit(EX_OK);
		}
		for (idx = -1, i = 0; i < n && idx < 0; i++)
			if (ch == 256 + i || (ch == p->opts[i].key && ch != 0))
				idx = i;
		if (idx < 0) {
			parse_option_error(ch, optind, argv, err, sizeof err);
			usage_error("%s", err);
		}
		if (set_value(&p->opts[idx], optarg, cfg, err, sizeof err) < 0)
			usage_error("--%s: %s", p->opts[idx].name, err);
		given[idx] = 1;
	}
	if (p->operands == NULL && optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	return optind;
}

const char *
opt_next_word(void)
{
	return optind < nargs ? args[optind++] : NULL;
}

int
opt_given(const char *name)
{
	int i;

	for (i = 0; prog && prog->opts[i].name; i++)
		if (strcmp(prog->opts[i].name, name) == 0)
			return given[i];
	return 0;
}

/* Words of text, wrapped at WIDTH from column col, later lines indented
 * to indent. Returns the column after the last word. */
static int
wrap(FILE *f, const char *text, int col, int indent)
{
	const char *w = text;
	size_t len;

	while (*w) {
		while (*w == ' ')
			w++;
		len = strcspn(w, " ");
		if (len == 0)
			break;
		if (col > indent && col + 1 + (int)len > WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		/* a no-break space (0xa0) holds "--name ARG" together */
		for (size_t i = 0; i < len; i++)
			fputc((unsigned char)w[i] == 0xa0 ? ' ' : w[i], f);
		col += (int)len;
		w += len;
	}
	return col;
}

static void
usage_to(FILE *f)
{
	char word[200];
	int col, i;

	if (prog == NULL)
		return;
	if (prog->usage) {
		fputs(prog->usage, f);
		return;
	}
	col = fprintf(f, "usage: labpulse %s", prog->name);
	for (i = 0; prog->opts[i].name; i++) {
		const struct opt *o = &prog->opts[i];

		if (o->type == OT_FLAG)
			snprintf(word, sizeof word, "[--%s]", o->name);
		else
			snprintf(word, sizeof word, "[--%s\xa0%s]%s", o->name,
			    o->arg, o->type == OT_LIST ? "..." : "");
		col = wrap(f, word, col, 11);
	}
	if (prog->operands)
		col = wrap(f, prog->operands, col, 11);
	fprintf(f, "\n       labpulse %s --help | --version\n", prog->name);
}

void
opt_usage(void)
{
	usage_to(stderr);
}

/* The option's first column, and its text with range and default. */
static void
help_row(const struct opt *o)
{
	char head[200], tail[400];
	int col, n = 0;

	if (o->type == OT_FLAG)
		snprintf(head, sizeof head, "  --%s", o->name);
	else
		snprintf(head, sizeof head, "  --%s %s", o->name, o->arg);
	col = printf("%s", head);
	if (col >= HELPCOL - 1) {
		printf("\n");
		col = 0;
	}
	printf("%*s", HELPCOL - col, "");
	tail[0] = '\0';
	if (o->min && o->max && o->type != OT_NAME)
		n = snprintf(tail, sizeof tail, "%s to %s", o->min, o->max);
	if (o->dflt_text || (o->dflt && o->type != OT_FLAG))
		snprintf(tail + n, sizeof tail - n, "%sdefault: %s",
		    n ? "; " : "", o->dflt_text ? o->dflt_text : o->dflt);
	col = wrap(stdout, o->help, HELPCOL, HELPCOL);
	if (tail[0]) {
		char paren[420];

		snprintf(paren, sizeof paren, "(%s)", tail);
		wrap(stdout, paren, col, HELPCOL);
	}
	printf("\n");
}

void
opt_help(void)
{
	int i;

	usage_to(stdout);
	wrap(stdout, prog->summary, 0, 0);
	printf("\n\n");
	for (i = 0; prog->opts[i].name; i++)
		help_row(&prog->opts[i]);
	printf("  -h, --help%*sshow this help\n", HELPCOL - 12, "");
	printf("  -V, --version%*sshow the version\n", HELPCOL - 15, "");
	if (prog->more)
		printf("\n%s", prog->more);
}
