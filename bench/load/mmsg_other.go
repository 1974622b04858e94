//go:build !linux

package main

import "net"

// newBatchConn returns c, one datagram per system call: sendmmsg and
// recvmmsg are Linux's.
func newBatchConn(c *net.UDPConn, mmsg bool) batchConn { return plainConn{c} }
