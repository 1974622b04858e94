//go:build !linux

package udp

import "net"

func newBatcher(conn *net.UDPConn, _ int) (batcher, error) { return newSingle(conn), nil }
