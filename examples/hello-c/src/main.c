#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checksum.h"

#if defined(__x86_64__)
#define ARCH "x86_64"
#elif defined(__aarch64__)
#define ARCH "aarch64"
#elif defined(__arm__)
#define ARCH "arm"
#else
#define ARCH "unknown"
#endif

int main(void) {
    const char *word = "kiln";
    printf("%s on %s: fnv1a(%s)=%08x sqrt(2)=%.6f\n", GREETING, ARCH, word,
           (unsigned)fnv1a(word, strlen(word)), sqrt(2.0));
    return 0;
}
