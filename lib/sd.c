/* sd.c: READY=1 on NOTIFY_SOCKET and LISTEN_FDS adoption, as in systemd's
 * sd_notify(3) and sd_listen_fds(3), self-contained. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd.h"

int
sd_notify_state(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t pl;
	int fd;
	ssize_t n;

	if (path == NULL || *path == '\0')
		return 0;
	pl = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || pl >= sizeof sun.sun_path) {
		errno = EINVAL;
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, pl);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + pl;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	close(fd);
	return n < 0 ? -1 : 0;
}

int
sd_listen_fds_adopt(void)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	char *end;
	long pid, n;
	int i, r = 0;

	if (pid_s == NULL || fds_s == NULL)
		goto out;
	errno = 0;
	pid = strtol(pid_s, &end, 10);
	if (errno || *end || pid != (long)getpid())
		goto out;
	n = strtol(fds_s, &end, 10);
	if (errno || *end || n <= 0 || n > 1024)
		goto out;
	for (i = 0; i < n; i++)
		fcntl(SD_LISTEN_FDS_START + i, F_SETFD, FD_CLOEXEC);
	r = (int)n;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}
