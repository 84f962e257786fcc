#ifndef HELLO_C_CHECKSUM_H
#define HELLO_C_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 32 bits: the same value on every platform. */
uint32_t fnv1a(const char *data, size_t len);

#endif
