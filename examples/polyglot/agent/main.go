// agent is the Go program of the polyglot example: the standard library only.
package main

import (
	"fmt"
	"hash/fnv"
	"runtime"
)

func main() {
	h := fnv.New32a()
	h.Write([]byte("kiln"))
	fmt.Printf("agent (Go) on %s: fnv1a(kiln)=%08x\n", runtime.GOARCH, h.Sum32())
}
