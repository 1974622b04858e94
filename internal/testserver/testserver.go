// Package testserver runs one server process for a test: found among
// known paths or in $PATH, started with its own working directory and
// never outliving the test binary, waited for until it answers, and
// stopped by PID. internal/redistest and internal/mariadbtest build their
// throw-away servers on it.
package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Find returns the first of paths that is a file, or else name's path in
// $PATH, or "" when neither exists.
func Find(paths []string, name string) string {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// SkipOrFail stops tb for err. A server that is not installed (err is
// notInstalled) skips the test, naming the Debian packages to install,
// except when the environment says CI=true: there, as for any other error,
// the test fails, so a CI machine without the server never passes by
// skipping.
func SkipOrFail(tb testing.TB, err, notInstalled error, packages string) {
	tb.Helper()
	if errors.Is(err, notInstalled) && os.Getenv("CI") != "true" {
		tb.Skipf("%v; e.g. apt-get install -y --no-install-recommends %s", err, packages)
	}
	tb.Fatal(err)
}

// StopAtEnd has stop called when tb ends, and reports its error as the
// test's: a server that would not stop is named in the failure.
func StopAtEnd(tb testing.TB, name string, stop func() error) {
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("stopping %s: %v", name, err)
		}
	})
}

// LogTail returns the last 4000 bytes of the log file at path, after a
// line naming it, or "" when it cannot be read: what explains a server
// that would not start.
func LogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\n" + path + ":\n" + string(b)
}

// Process is one server process, running or stopped; Start may run it
// again after Stop. Its methods may be called from several goroutines.
type Process struct {
	// Name names the server in errors, e.g. "redis-server".
	Name string
	// Bin and Args are the command line; Dir, when not empty, is the
	// working directory.
	Bin  string
	Args []string
	Dir  string
	// Log is the path of the server's log file, whose tail a failed start
	// quotes.
	Log string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	paused bool
}

// Start runs the process and calls ready until it returns nil. It fails,
// quoting the server's output and log, when the process exits first or
// ready still fails after timeout (the process is then killed).
func (p *Process) Start(timeout time.Duration, ready func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("testserver: %s already running", p.Name)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Dir = p.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testserver: starting %s: %v", p.Bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done, p.paused = cmd, done, false
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("testserver: %s exited at start-up: %s%s", p.Name, out.String(), LogTail(p.Log))
		default:
		}
		if time.Now().After(deadline) {
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
			p.cmd = nil
			return fmt.Errorf("testserver: %s did not answer within %v: %v%s", p.Name, timeout, err, LogTail(p.Log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Retry calls start up to tries times, 200 ms apart, until it succeeds,
// and returns its last error: a server started again on its old address
// may find the port not yet free.
func Retry(tries int, start func() error) error {
	var err error
	for range tries {
		if err = start(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Signal sends sig to the running process. SIGSTOP pauses it (nothing
// answers, connections stay open) and SIGCONT resumes it.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("testserver: %s not running", p.Name)
	}
	if sig == syscall.SIGSTOP || sig == syscall.SIGCONT {
		p.paused = sig == syscall.SIGSTOP
	}
	return syscall.Kill(p.cmd.Process.Pid, sig)
}

// Stop sends sig to the process (resuming it first if paused, as a stopped
// process does not act on SIGTERM) and waits for it to exit, killing it
// if it still runs after grace. Stopping a stopped process does nothing.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	cmd, done := p.cmd, p.done
	p.cmd = nil
	pid := cmd.Process.Pid
	if p.paused {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(pid, syscall.SIGKILL)
	<-done
	return fmt.Errorf("testserver: %s ignored %v for %v and was killed", p.Name, sig, grace)
}
