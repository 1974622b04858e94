// Package mariadbtest runs a real, throw-away MariaDB server for tests: a
// fresh data directory in a temporary directory, listening on a free port of
// 127.0.0.1 (and a Unix socket beside it) and nowhere else, in the strict
// sql_mode that Gazelle (OPS) runs with.
//
// Start gives one test its own server and a database; Shared starts one
// server per test binary and Server.Database gives each test a fresh
// database on it. Stop and Restart simulate a database outage.
//
// The server binaries come from the Debian packages mariadb-server and
// mariadb-client. When they are missing a test is skipped, naming the package
// to install, except when the environment says CI=true: there it fails, so a
// CI machine without MariaDB can never pass by skipping.
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/testserver"

	"github.com/go-sql-driver/mysql"
)

// SQLMode is the sql_mode every server runs with: OPS Gazelle's
// (docker-compose.yml, misc/gitlab-ci.yml), under which Ocelot's statements
// fail on bad data instead of truncating it.
const SQLMode = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY"

// Package is the Debian package that provides the server binaries.
const Package = "mariadb-server"

// Where the binaries are looked for, besides $PATH.
var (
	serverPaths  = []string{"/usr/sbin/mariadbd", "/usr/libexec/mariadbd", "/usr/sbin/mysqld"}
	installPaths = []string{"/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"}
)

// ErrNotInstalled is returned when the server binaries cannot be found.
var ErrNotInstalled = errors.New("mariadbtest: mariadbd or mariadb-install-db not found (install the " + Package + " package)")

// Server is one running (or stopped) mariadbd.
type Server struct {
	// Addr is the TCP address, always on 127.0.0.1.
	Addr string
	// Socket is the Unix socket path.
	Socket string

	dir    string // holds data/, the socket, the pid file and the log
	ownDir bool   // dir was made by us (not t.TempDir) and must be removed
	proc   testserver.Process
}

// skipOrFail stops tb for a missing server: a failure on CI, a skip elsewhere.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	testserver.SkipOrFail(tb, err, ErrNotInstalled, Package+" mariadb-client")
}

// Start starts a server of the test's own, stopped when the test ends, and
// returns the DSN (go-sql-driver syntax, over TCP) of a fresh database on
// it in which every file of schema was run.
func Start(tb testing.TB, schema ...string) string {
	tb.Helper()
	s := StartServer(tb)
	return s.Database(tb, schema...)
}

// StartServer starts a server of the test's own, with its data directory in
// tb.TempDir(), stopped (by PID) when the test ends.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := newServer(tb.TempDir(), false)
	if err != nil {
		skipOrFail(tb, err)
	}
	testserver.StopAtEnd(tb, "mariadbd", s.Close)
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's shared server, starting it on first use.
// The binary's TestMain must call StopShared after m.Run, as Main does.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "mariadbtest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.s, shared.err = newServer(dir, true)
		if shared.err != nil {
			os.RemoveAll(dir)
		}
	})
	if shared.err != nil {
		skipOrFail(tb, shared.err)
	}
	return shared.s
}

// StopShared stops the shared server, if one was started, and removes its
// files. Call it from TestMain after m.Run.
func StopShared() error {
	if shared.s == nil {
		return nil
	}
	return shared.s.Close()
}

// Main is the TestMain of a test binary that uses Shared: it runs the
// tests, stops the shared server and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the shared MariaDB:", err)
	}
	os.Exit(code)
}

func newServer(dir string, ownDir bool) (*Server, error) {
	bin := testserver.Find(serverPaths, "mariadbd")
	install := testserver.Find(installPaths, "mariadb-install-db")
	if bin == "" || install == "" {
		return nil, ErrNotInstalled
	}
	s := &Server{dir: dir, ownDir: ownDir}
	s.Socket = filepath.Join(dir, "sock")
	if len(s.Socket) > 100 { // sun_path holds 108 bytes
		short, err := os.MkdirTemp("", "mdb-")
		if err != nil {
			return nil, err
		}
		s.dir, s.ownDir = short, true
		s.Socket = filepath.Join(short, "sock")
	}
	data := filepath.Join(s.dir, "data")
	// A temporary directory of the server's own: in a shared /tmp,
	// concurrent servers (and mariadb-install-db runs) remove each other's
	// temporary tables and fail or crash.
	tmp := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	common := []string{
		"--no-defaults", // ignore /etc/mysql: nothing of the system's server applies
		"--datadir=" + data,
		"--tmpdir=" + tmp,
		"--innodb-log-file-size=8M",
		"--innodb-buffer-pool-size=32M",
	}
	root := os.Geteuid() == 0
	if root {
		common = append(common, "--user=root")
	}
	installArgs := append([]string{common[0], "--auth-root-authentication-method=normal", "--skip-test-db"}, common[1:]...)
	out, err := exec.Command(install, installArgs...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: %s: %v\n%s", install, err, out)
	}
	// The port is free when chosen but could be taken before mariadbd binds
	// it (other tests pick ports too): a failed start is tried again on
	// another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		err = s.startOn(bin, port, common)
		if err == nil {
			return s, nil
		}
		s.Stop()
		if attempt == 3 {
			s.Close()
			return nil, err
		}
	}
}

func (s *Server) startOn(bin string, port int, common []string) error {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.proc = testserver.Process{Name: "mariadbd", Bin: bin, Log: filepath.Join(s.dir, "error.log")}
	s.proc.Args = append(slices.Clip(common),
		"--socket="+s.Socket,
		"--port="+strconv.Itoa(port),
		"--skip-networking=0",
		"--bind-address=127.0.0.1",
		"--skip-name-resolve",
		"--pid-file="+filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error="+filepath.Join(s.dir, "error.log"),
		"--sql-mode="+SQLMode,
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--innodb-flush-log-at-trx-commit=2",
		"--skip-log-bin",
		"--max-connections=500",
	)
	// Root may log in over TCP from 127.0.0.1 without a password
	// (mariadb-install-db made root@127.0.0.1), which is what every DSN uses.
	return s.start()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs mariadbd and waits until it accepts connections.
func (s *Server) start() error {
	db, err := sql.Open("mysql", s.rootDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	return s.proc.Start(60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx)
	})
}

// Stop shuts the server down (SIGTERM to its PID, SIGKILL after 30 s) and
// waits for it to exit. The data directory stays: Restart brings the same
// server back on the same address.
func (s *Server) Stop() error { return s.proc.Stop(syscall.SIGTERM, 30*time.Second) }

// Restart starts a stopped server again, on the same address and data.
func (s *Server) Restart() error { return testserver.Retry(5, s.start) }

// Close stops the server and, for the shared server, removes its files.
func (s *Server) Close() error {
	err := s.Stop()
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
	return err
}

func (s *Server) rootDSN(db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = s.Addr
	c.DBName = db
	c.Timeout = 2 * time.Second
	c.MultiStatements = true
	return c.FormatDSN()
}

// DSN returns the DSN of database db, over TCP as root.
func (s *Server) DSN(db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = s.Addr
	c.DBName = db
	return c.FormatDSN()
}

var dbSeq atomic.Uint64

var (
	createDB = regexp.MustCompile(`(?im)^\s*CREATE\s+DATABASE\b[^;]*;\s*$`)
	useDB    = regexp.MustCompile(`(?im)^\s*USE\s+[^;]*;\s*$`)
)

// Database creates a fresh database, runs every file of schema in it and
// returns its DSN. The database is dropped when the test ends (unless the
// server is down by then). The files' own CREATE DATABASE and USE
// statements are ignored, so a schema dump written for one database name
// can be loaded under any.
func (s *Server) Database(tb testing.TB, schema ...string) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), sanitize(tb.Name()))
	if len(name) > 64 {
		name = name[:64]
	}
	admin, err := sql.Open("mysql", s.rootDSN(""))
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"); err != nil {
		tb.Fatalf("mariadbtest: %v", err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("mysql", s.rootDSN(""))
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
	})
	db, err := sql.Open("mysql", s.rootDSN(name))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for _, f := range schema {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatalf("mariadbtest: schema: %v", err)
		}
		text := useDB.ReplaceAllString(createDB.ReplaceAllString(string(b), ""), "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if _, err := db.Exec(text); err != nil {
			tb.Fatalf("mariadbtest: loading %s: %v", f, err)
		}
	}
	return s.DSN(name)
}

func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
