/* tokens.h: ingest's token file: one "TOKEN CLASS" a line, CLASS a class
 * name or "*" for any class (site-wide clients); '#' starts a comment. */
#ifndef LABPULSE_TOKENS_H
#define LABPULSE_TOKENS_H

#include <stddef.h>

struct tokens;

/* Parse a token file's text; name is what errors call it. NULL with err
 * ("NAME:LINE: reason") on a bad line, an empty file or no memory. */
struct tokens *tokens_parse(const char *text, size_t len, const char *name,
    char *err, size_t errlen);
/* Read and parse the file at path; NULL with err. */
struct tokens *tokens_load(const char *path, char *err, size_t errlen);
/* The class bound to the presented token: a class name, "*" for any class,
 * or NULL when no token matches. Takes the same time whichever token (if
 * any) matches: tokens are secrets. */
const char *tokens_class(const struct tokens *t, const char *presented,
    size_t len);
size_t tokens_count(const struct tokens *t);
void tokens_free(struct tokens *t);

/* A token's digest as PostgreSQL keeps it (instructors.token_hash) and as
 * notify's cache and revocations name it: the SHA-256 of the len bytes at
 * data, in lowercase hex, NUL-terminated in hex. */
#define TOKENS_HEX_SIZE	65
void tokens_sha256_hex(const void *data, size_t len, char hex[TOKENS_HEX_SIZE]);
/* The HMAC-SHA256 of the len bytes at data under the keylen bytes at key,
 * the same way (a webhook's signature). */
void tokens_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
    size_t len, char hex[TOKENS_HEX_SIZE]);
/* The n bytes at p in lowercase hex, NUL-terminated: out holds 2n + 1. */
void tokens_hex(const void *p, size_t n, char *out);

#endif
