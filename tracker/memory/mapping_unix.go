//go:build linux || darwin || freebsd || netbsd || openbsd

package memory

import (
	"fmt"
	"syscall"
)

// mapBytes returns n zeroed bytes of anonymous memory outside the Go heap.
// The system backs a page only once it is touched, so an arena's resident
// size is what it used, however large its mapping.
func mapBytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		// As the runtime does when the heap cannot grow: there is no
		// answer to give without the memory.
		panic(fmt.Sprintf("tracker/memory: mapping %d bytes for a shard: %v", n, err))
	}
	return b
}

// unmapBytes releases what mapBytes returned. Nothing may use b afterwards.
func unmapBytes(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic(fmt.Sprintf("tracker/memory: unmapping a shard's %d bytes: %v", len(b), err))
	}
}
