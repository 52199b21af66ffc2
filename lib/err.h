/* err.h: the kind of a failure, returned beside its message.
 *
 * lib/ never prints or exits. A function that can fail in more than one
 * way returns -KIND (still below zero, so `< 0` tests keep working) and
 * writes its message to the caller's err buffer, as hiredis keeps err
 * beside errstr. cmd/prog.c maps each kind to an exit status of
 * <sysexits.h> in one table; nothing picks a status by reading the text. */
#ifndef LABPULSE_ERR_H
#define LABPULSE_ERR_H

enum err_kind {
	ERR_USAGE = 1,		/* the caller's words are off: a bad address */
	ERR_DATA,		/* input that is not what it must be */
	ERR_NOINPUT,		/* an input that cannot be opened */
	ERR_UNAVAILABLE,	/* a service that is not there */
	ERR_SOFTWARE,		/* labpulse's own bug */
	ERR_OS,			/* the system refused: a socket, memory */
	ERR_IO,			/* reading or writing failed */
	ERR_TEMP,		/* a failure that may pass */
	ERR_CONFIG,		/* a configuration file or setting is wrong */
	ERR__COUNT
};

#endif
