// Package e2etest runs the end-to-end suite's real processes: the built
// tracker daemon, the BitTorrent clients aria2 and transmission-cli, and
// mktorrent; and it talks to the tracker as a client would (scrape,
// announce, the site's update calls).
//
// Everything stays on loopback: the tracker listens on 127.0.0.1, the
// helpers refuse URLs with any other host, the clients bind to 127.0.0.1
// with DHT, PEX, local peer discovery and port mapping off, and run without
// the environment's proxy variables. Every process is stopped by its PID,
// never by name, and dies with the test binary (SIGKILL on parent death).
//
// The Debian packages the suite needs are installed with apt-get when it
// runs as root on Debian; otherwise Require fails the test and names them.
// A missing tool is always a failure, never a skip.
package e2etest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Tool is a program a test runs, or an absolute path pattern (a library
// it loads, e.g. /usr/lib/python3/dist-packages/libtorrent*.so), and the
// Debian package that provides it.
type Tool struct {
	Cmd     string
	Package string
}

// installed reports whether tl's program or file is there.
func (tl Tool) installed() bool {
	if filepath.IsAbs(tl.Cmd) {
		m, _ := filepath.Glob(tl.Cmd)
		return len(m) > 0
	}
	_, err := LookPath(tl.Cmd)
	return err == nil
}

// Tools are the programs the end-to-end suite runs. (Go is not among them:
// Debian's is older than go.mod requires, and `go test` is already running.)
var Tools = []Tool{
	{"aria2c", "aria2"},
	{"transmission-cli", "transmission-cli"},
	{"mktorrent", "mktorrent"},
	{"mariadbd", "mariadb-server"},
	{"mariadb-install-db", "mariadb-server"},
	// libtorrent-rasterbar for Debian's python3 (/usr/bin/python3): the
	// client that sends BEP 41 URL data (e2e/libtorrent_client.py).
	{"/usr/bin/python3", "python3"},
	{"/usr/lib/python3/dist-packages/libtorrent*.so", "python3-libtorrent"},
}

// sbinDirs hold programs that a user's $PATH may lack (mariadbd is in
// /usr/sbin).
var sbinDirs = []string{"/usr/sbin", "/usr/libexec"}

// LookPath returns the path of the program cmd: in $PATH, or else in
// /usr/sbin or /usr/libexec.
func LookPath(cmd string) (string, error) {
	if p, err := exec.LookPath(cmd); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, cmd)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or %s", cmd, strings.Join(sbinDirs, ", "))
}

// missing returns the packages of the tools that are not installed, each
// once, in the order of tools.
func missing(tools []Tool) []string {
	var pkgs []string
	for _, tl := range tools {
		if !tl.installed() && !slices.Contains(pkgs, tl.Package) {
			pkgs = append(pkgs, tl.Package)
		}
	}
	return pkgs
}

// Require makes sure every tool is installed. Missing ones are installed
// with apt-get when the test runs as root on a machine with apt-get;
// otherwise, or when that fails, tb fails (never skips) and names the
// packages to install.
func Require(tb testing.TB, tools ...Tool) {
	tb.Helper()
	pkgs := missing(tools)
	if len(pkgs) == 0 {
		return
	}
	if apt, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		tb.Logf("installing: %s", strings.Join(pkgs, " "))
		env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		update := exec.Command(apt, "update", "-qq")
		update.Env = env
		out, err := update.CombinedOutput()
		if err == nil {
			install := exec.Command(apt, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
			install.Env = env
			out, err = install.CombinedOutput()
		}
		if err != nil {
			tb.Logf("apt-get: %v\n%s", err, tail(string(out), 20))
		}
		pkgs = missing(tools)
		if len(pkgs) == 0 {
			return
		}
	}
	ci := ""
	if os.Getenv("CI") == "true" {
		ci = " (CI=true: a missing client or server is a failure, not a skip)"
	}
	tb.Fatalf("missing tools%s; install them with: apt-get install -y --no-install-recommends %s",
		ci, strings.Join(pkgs, " "))
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// a client's listening port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("e2etest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Tail returns the last n non-empty lines of the file at path, with
// carriage returns read as line ends (a client's progress lines) and
// aria2's "Progress:" lines left out: the part of a log that explains a
// failed check.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	var keep []string
	for line := range strings.FieldsFuncSeq(string(b), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if !strings.HasPrefix(line, "Progress: ") {
			keep = append(keep, line)
		}
	}
	return "---- tail of " + path + "\n" + tail(strings.Join(keep, "\n"), n)
}
