/* labpulse: the front. `labpulse NAME ARGS` runs the program NAME from the
 * build tree or the install's libexec folder; up, down, status and env manage
 * a private local stack. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"

static const struct command {
	const char *name;
	const char *what;
	const char *prog;	/* what runs it, when not the program NAME */
} commands[] = {
	{ "batch-commit", "commit events to PostgreSQL in batches, each once",
			NULL },
	{ "down",	"stop the local stack", "stack" },
	{ "env",	"print the local stack's shell assignments", "stack" },
	{ "ingest",	"accept events over HTTP and queue them durably", NULL },
	{ "instructor",	"add, list and revoke instructors and their tokens",
			"stack" },
	{ "loadgen",	"simulate a class and check latency and delivery targets",
			NULL },
	{ "migrate-indexes", "apply and check schema and index migrations",
			NULL },
	{ "notify",	"serve live class dashboards (WebSocket, SSE)", NULL },
	{ "poolstat",	"show pools, queues and delivery of every daemon", NULL },
	{ "route",	"turn events into class messages with jq rules", NULL },
	{ "setup",	"make this host's PostgreSQL and Redis ready for the units",
			"setup" },
	{ "status",	"show what runs in the local stack", "stack" },
	{ "up",		"start a private local stack (PostgreSQL, Redis, daemons)",
			"stack" },
};

static const char usage_text[] =
"usage: labpulse COMMAND [ARGS ...]\n"
"       labpulse up | down | status | env\n"
"       labpulse instructor add NAME CLASS... | list | revoke NAME\n"
"       labpulse setup [--no-redis] [--redis URL] [--set-redis]\n"
"       labpulse -h | --help | -V | --version\n";

static void
list_commands(FILE *f)
{
	size_t i;

	fputs("\ncommands:\n", f);
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].what);
	fputs("\n`labpulse COMMAND --help` tells more; see labpulse(1).\n", f);
}

static void __attribute__((noreturn))
usage(int code)
{
	FILE *f = code ? stderr : stdout;

	fputs(usage_text, f);
	list_commands(f);
	exit(code);
}

/* The folder to run programs from: $LABPULSE_EXEC_PATH, else our own folder
 * when the program is there (a build tree), else ../libexec/labpulse beside
 * us (an install, wherever it was moved), else the configured libexec. */
static void
find_program(const char *prog, char *out, size_t len)
{
	const char *env = getenv("LABPULSE_EXEC_PATH");
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s/%s", env, prog);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/%s", self, prog);
			if (access(out, X_OK) == 0)
				return;
			snprintf(out, len, "%s/../libexec/labpulse/%s", self, prog);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "%s/%s", LABPULSE_LIBEXECDIR, prog);
}

int
main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	char path[PATH_MAX + 64];
	size_t i;

	log_init("labpulse");
	if (argc < 2)
		usage(EX_USAGE);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		usage(EX_OK);
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("labpulse %s\n", LABPULSE_VERSION);
		return EX_OK;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		if (argv[1][0] == '-')
			log_error("unknown option '%s'", argv[1]);
		else
			log_error("unknown command '%s'", argv[1]);
		usage(EX_USAGE);
	}
	find_program(cmd->prog ? cmd->prog : cmd->name, path, sizeof path);
	if (cmd->prog) {
		/* the stack and setup scripts take the command as their
		 * first argument */
		argv[0] = path;
		execv(path, argv);
	} else {
		argv[1] = path;
		execv(path, argv + 1);
	}
	log_error("cannot run %s: %s", path, strerror(errno));
	return errno == ENOENT ? EX_UNAVAILABLE : EX_OSERR;
}
