/* log.c: the one way a labpulse program speaks on stderr. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static const char *progname = "labpulse";
static enum log_level max_level = LOG_INFO;
static const char *const names[] = { "error", "warning", "info", "debug" };

void
log_init(const char *name)
{
	progname = name;
}

const char *
log_progname(void)
{
	return progname;
}

void
log_set_level(enum log_level level)
{
	max_level = level;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, m;

	if (level > max_level)
		return;
	n = snprintf(line, sizeof line, "%s: %s: ", progname, names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line, so lines of concurrent processes do not mix. */
	(void)!write(STDERR_FILENO, line, n);
}
