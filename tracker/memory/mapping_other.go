//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package memory

// mapBytes returns n zeroed bytes. Without mmap they come from the Go heap,
// which works the same but is resident and counted by the collector.
func mapBytes(n int) []byte { return make([]byte, n) }

// unmapBytes leaves b to the collector.
func unmapBytes([]byte) {}
