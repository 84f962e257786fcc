// hello-go prints a greeting from a vendored module, the platform it runs on and a value
// computed with the standard library, the same on every platform.
package main

import (
	"crypto/sha256"
	"fmt"
	"runtime"

	"example.com/greet"
)

// version is set at link time: ldflags "-X main.version=…" in kiln.kdl.
var version = "dev"

func main() {
	sum := sha256.Sum256([]byte("kiln"))
	fmt.Printf("%s (version %s) on %s/%s: sha256(kiln)=%x\n", greet.Hello("kiln"), version, runtime.GOOS, runtime.GOARCH, sum[:4])
}
