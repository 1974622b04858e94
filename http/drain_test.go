package http

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestShutdownAnswersRequestsStillArriving: a request half sent when
// Shutdown begins is answered (net/http alone would drop it), an idle
// keep-alive connection is closed, and new connections are refused.
func TestShutdownAnswersRequestsStillArriving(t *testing.T) {
	s := newTestServer(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	target := query(ih1, peerID(1), 7001, 5)
	// An idle keep-alive connection: one request answered.
	idle, idleR := dial(t, addr)
	io.WriteString(idle, "GET "+target+" HTTP/1.1\r\nHost: t\r\n\r\n")
	if status, _ := idleR.ReadString('\n'); !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("keep-alive request: %q", status)
	}
	// A request half way.
	half, halfR := dial(t, addr)
	io.WriteString(half, "GET "+target+" HTTP/1.1\r\nHost: t\r\n")
	time.Sleep(50 * time.Millisecond)

	// Shut down while a request is still arriving.
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 5s into Shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request still arriving", err)
	case <-time.After(100 * time.Millisecond):
	}

	io.WriteString(half, "\r\n")
	resp, err := io.ReadAll(halfR)
	if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 200") || !strings.Contains(string(resp), "\r\nConnection: close\r\n") {
		t.Errorf("the request finished during Shutdown: %q, %v", resp, err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	// The idle connection was closed (its unread body aside).
	idleR.Discard(idleR.Buffered())
	if _, err := idleR.ReadByte(); err == nil {
		t.Error("the idle keep-alive connection is still open")
	}
}

// TestShutdownGivesUpAtDeadline: a connection that never sends its request
// holds Shutdown no longer than its context.
func TestShutdownGivesUpAtDeadline(t *testing.T) {
	s := newTestServer(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /announce HTTP/1.1\r\n")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with a 200ms deadline", d)
	}
}
