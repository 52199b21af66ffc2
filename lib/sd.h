/* sd.h: systemd's readiness and socket-activation protocols, without
 * libsystemd. */
#ifndef LABPULSE_SD_H
#define LABPULSE_SD_H

#define SD_LISTEN_FDS_START 3

/* Send state (e.g. "READY=1") to $NOTIFY_SOCKET. 0 when sent or when there is
 * no socket to send to; -1 on error. */
int sd_notify_state(const char *state);

/* Descriptors passed by socket activation, for this pid: their number (0 when
 * none). Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so that children do
 * not adopt them too, and marks the descriptors close-on-exec. */
int sd_listen_fds_adopt(void);

#endif
