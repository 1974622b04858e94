package testserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bin")
	if err := os.WriteFile(file, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []string
		name  string
		want  string
	}{
		{[]string{filepath.Join(dir, "none"), file}, "", file},
		{[]string{dir}, "", ""}, // a directory is not a binary
		{nil, "no-such-program-here", ""},
	} {
		if got := Find(tc.paths, tc.name); got != tc.want {
			t.Errorf("Find(%q, %q) = %q, want %q", tc.paths, tc.name, got, tc.want)
		}
	}
	if got := Find(nil, "sleep"); got == "" {
		t.Error(`Find(nil, "sleep") found nothing in $PATH`)
	}
}

func sleeper(t *testing.T) *Process {
	bin := Find(nil, "sleep")
	if bin == "" {
		t.Fatal("sleep not found")
	}
	return &Process{Name: "sleep", Bin: bin, Args: []string{"60"}, Dir: t.TempDir()}
}

func TestProcessStartStop(t *testing.T) {
	p := sleeper(t)
	calls := 0
	ready := func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	if err := p.Start(5*time.Second, ready); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("ready called %d times, want 3", calls)
	}
	if err := p.Start(time.Second, ready); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start: %v, want already running", err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(syscall.SIGTERM, 5*time.Second); err != nil { // resumed first, so SIGTERM acts
		t.Fatalf("Stop of a paused process: %v", err)
	}
	if err := p.Stop(syscall.SIGTERM, time.Second); err != nil {
		t.Errorf("Stop of a stopped process: %v", err)
	}
	if err := p.Signal(syscall.SIGCONT); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Signal to a stopped process: %v, want not running", err)
	}
}

func TestProcessStartFails(t *testing.T) {
	p := sleeper(t)
	p.Args = []string{"0"} // exits at once
	p.Log = filepath.Join(p.Dir, "server.log")
	if err := os.WriteFile(p.Log, []byte("why it stopped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	never := func() error { return errors.New("no answer") }
	err := p.Start(5*time.Second, never)
	if err == nil || !strings.Contains(err.Error(), "exited at start-up") || !strings.Contains(err.Error(), "why it stopped") {
		t.Errorf("Start of a process that exits: %v, want exited at start-up with the log's tail", err)
	}

	p = sleeper(t)
	err = p.Start(100*time.Millisecond, never)
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("Start of a process that never answers: %v, want did not answer", err)
	}
	if err := p.Stop(syscall.SIGTERM, time.Second); err != nil {
		t.Errorf("Stop after a failed start: %v", err)
	}
}

func TestStopAtEnd(t *testing.T) {
	stops := 0
	t.Run("server", func(t *testing.T) {
		StopAtEnd(t, "sleep", func() error { stops++; return nil })
		if stops != 0 {
			t.Error("stopped before the test ended")
		}
	})
	if stops != 1 {
		t.Errorf("stopped %d times when the test ended, want 1", stops)
	}
}

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		tries, failures, calls int
		ok                     bool
	}{
		{tries: 3, failures: 0, calls: 1, ok: true},
		{tries: 3, failures: 2, calls: 3, ok: true},
		{tries: 3, failures: 5, calls: 3, ok: false},
	} {
		calls := 0
		err := Retry(tc.tries, func() error {
			if calls++; calls <= tc.failures {
				return errors.New("port in use")
			}
			return nil
		})
		if calls != tc.calls || (err == nil) != tc.ok {
			t.Errorf("Retry(%d) with %d failures: %d calls, %v; want %d calls, ok %v", tc.tries, tc.failures, calls, err, tc.calls, tc.ok)
		}
	}
}
