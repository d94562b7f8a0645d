#ifndef GENQ_UUID_H
#define GENQ_UUID_H

/* 1 when s is a UUID in its text form: 36 characters, hyphens at 8, 13, 18
 * and 23, hex digits of either case elsewhere, nothing after; else 0 (NULL
 * included). Says nothing of the version: an id that cannot exist is simply
 * not found. */
int genq_is_uuid(const char *s);

#endif
