// Package greet is a small vendored module: kiln builds with -mod=vendor when a module has a
// vendor/ directory, so no module proxy is needed.
package greet

import "fmt"

// Hello greets name.
func Hello(name string) string {
	return fmt.Sprintf("hello from Go, %s", name)
}
