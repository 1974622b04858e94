package systemd

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify opens a datagram socket like systemd's notification socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@chihaya-test-%d", time.Now().UnixNano())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := listenNotify(t, tc.socket)
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			for _, state := range []string{Ready, Reloading, "READY=1\nSTATUS=serving"} {
				if err := Notify(state); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, c); got != state {
					t.Errorf("received %q, want %q", got, state)
				}
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify(Ready); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
	for socket, want := range map[string]string{
		"vsock:2:1234":                     "only unix socket paths",
		filepath.Join(t.TempDir(), "gone"): "notifying systemd",
	} {
		t.Setenv("NOTIFY_SOCKET", socket)
		if err := Notify(Ready); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NOTIFY_SOCKET %q: error %v, want %q", socket, err, want)
		}
	}
}
