/* utf8.c: whether bytes are UTF-8, one sequence at a time. */
#include "utf8.h"

size_t
utf8_seq(const unsigned char *s, size_t len, size_t i)
{
	unsigned c = s[i];
	size_t n, k;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (len - i < n)
		return 0;
	for (k = 1; k < n; k++)
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
	/* the shortest form only, no surrogates, nothing past U+10FFFF */
	if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
	    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
		return 0;
	return n;
}
