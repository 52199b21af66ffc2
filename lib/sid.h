/* sid.h: Redis stream ids (MS-SEQ, two unsigned 64-bit numbers), as notify
 * reads them from the stream, from ?since= and from Last-Event-ID. */
#ifndef LABPULSE_SID_H
#define LABPULSE_SID_H

#include <stdint.h>

#define SID_LEN		48	/* "MS-SEQ" of two uint64 and a NUL fit */

/* "0-0" is before everything. */
struct sid {
	uint64_t ms, seq;
};

/* Parse s, digits with an optional "-" and digits (a missing SEQ is 0), into
 * *out: 0, or -1 (nothing written) for anything else: a sign, blanks, an
 * empty part, a number past UINT64_MAX, or bytes after it. */
int sid_parse(const char *s, struct sid *out);
/* -1, 0 or 1 as a is before, equal to or after b. */
int sid_cmp(struct sid a, struct sid b);
/* id as "MS-SEQ" in buf, which sid_parse reads back as id. */
void sid_format(struct sid id, char buf[SID_LEN]);
/* The id of a message that has none of its own (an NDJSON line), read at
 * now_ms after the one at *last: now_ms-0, or last's ms with the next seq
 * when the clock has not moved past it; *last becomes it. */
struct sid sid_next(struct sid *last, uint64_t now_ms);

#endif
