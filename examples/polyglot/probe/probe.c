/* probe is the C program of the polyglot example. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#define ARCH "x86_64"
#elif defined(__aarch64__)
#define ARCH "aarch64"
#else
#define ARCH "arm"
#endif

int main(void) {
    const char *s = "kiln";
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < strlen(s); i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    printf("probe (C) on %s: fnv1a(kiln)=%08x\n", ARCH, (unsigned)h);
    return 0;
}
