# Build settings; override on the command line: make PREFIX=/usr CC=clang
VERSION  = 0.1.0
PREFIX   = /usr/local
BINDIR   = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/labpulse
MANDIR   = $(PREFIX)/share/man
DATADIR  = $(PREFIX)/share/labpulse
SYSCONFDIR = $(PREFIX)/etc
# systemd's units: under PREFIX=/usr where systemd's pkg-config says, else
# PREFIX/lib/systemd/system (systemd reads /usr/local/lib/systemd/system).
UNITDIR  = $(if $(filter /usr,$(PREFIX)),$(shell $(PKG_CONFIG) \
	--variable=systemdsystemunitdir systemd 2>/dev/null || \
	echo /usr/lib/systemd/system),$(PREFIX)/lib/systemd/system)
# The units' environment file: not under PREFIX, since the units name one
# file and Debian's operators look for it in /etc/default.
ENVFILE  = /etc/default/labpulse

CC      ?= cc
PKG_CONFIG ?= pkg-config
WARN     = -Wall -Wextra -Wstrict-prototypes -Wwrite-strings -Wshadow -Werror
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -DLABPULSE_VERSION='"$(VERSION)"' \
	-DLABPULSE_LIBEXECDIR='"$(LIBEXECDIR)"' -DLABPULSE_DATADIR='"$(DATADIR)"' \
	-DLABPULSE_SYSCONFDIR='"$(SYSCONFDIR)"' -Ilib
