/* utf8.h: UTF-8 as RFC 3629 has it, for every reader of untrusted text
 * (JSON bodies, token files, query strings). */
#ifndef LABPULSE_UTF8_H
#define LABPULSE_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the UTF-8 sequence at s[i], i < len, or 0 when
 * none starts there: a stray continuation byte, an overlong form, a
 * surrogate, a value past U+10FFFF, or a sequence cut by len. */
size_t utf8_seq(const unsigned char *s, size_t len, size_t i);

#endif
