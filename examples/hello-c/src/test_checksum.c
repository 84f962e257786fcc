/* A test program, left out of the image by the recipe's `exclude`. */
#include <stdio.h>
#include <string.h>

#include "checksum.h"

int main(void) {
    return fnv1a("kiln", strlen("kiln")) == 0 ? 1 : 0;
}
