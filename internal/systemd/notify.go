package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Notification states the daemon sends (see sd_notify(3)).
const (
	Ready     = "READY=1"     // start-up, or a reload, is finished
	Reloading = "RELOADING=1" // a reload began; Ready follows when it is done
	Stopping  = "STOPPING=1"  // shutdown began
)

// Notify sends state, one or more newline-separated "KEY=value"
// assignments, to the service manager. Without $NOTIFY_SOCKET (not run by
// systemd, or not Type=notify) it sends nothing and returns nil. The socket
// is a path, or an abstract socket written with a leading '@'.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] != '/' && name[0] != '@' {
		return fmt.Errorf("NOTIFY_SOCKET %q: only unix socket paths and @abstract names are supported", name)
	}
	// Go's syscall turns a leading '@' into the NUL byte that makes the
	// name abstract.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	defer c.Close()
	n, err := c.Write([]byte(state))
	if err == nil && n != len(state) {
		err = errors.New("short write")
	}
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	return nil
}
