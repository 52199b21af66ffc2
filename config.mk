# Build settings; override on the command line: make PREFIX=/usr CC=clang
VERSION  = 0.1.0
PREFIX   = /usr/local
BINDIR   = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/labpulse
MANDIR   = $(PREFIX)/share/man
DATADIR  = $(PREFIX)/share/labpulse
SYSCONFDIR = $(PREFIX)/etc

CC      ?= cc
PKG_CONFIG ?= pkg-config
WARN     = -Wall -Wextra -Wstrict-prototypes -Wwrite-strings -Wshadow -Werror
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -DLABPULSE_VERSION='"$(VERSION)"' \
	-DLABPULSE_LIBEXECDIR='"$(LIBEXECDIR)"' -DLABPULSE_DATADIR='"$(DATADIR)"' \
	-DLABPULSE_SYSCONFDIR='"$(SYSCONFDIR)"' -Ilib
