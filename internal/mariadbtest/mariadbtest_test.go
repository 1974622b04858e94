package mariadbtest

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, dsn, q string) string {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestSharedServerStrictModeAndSchema(t *testing.T) {
	s := Shared(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("server listens on %s, want 127.0.0.1 only", s.Addr)
	}
	schema := filepath.Join(t.TempDir(), "s.sql")
	os.WriteFile(schema, []byte("CREATE DATABASE IF NOT EXISTS other;\nUSE other;\nCREATE TABLE x (v varchar(3) NOT NULL);\n"), 0o644)
	a := s.Database(t, schema)
	b := s.Database(t, schema)
	if a == b {
		t.Fatal("two databases share a DSN")
	}
	if got := query(t, a, "SELECT @@GLOBAL.sql_mode"); !strings.Contains(got, "STRICT_ALL_TABLES") {
		t.Fatalf("sql_mode = %q", got)
	}
	if got := query(t, a, "SELECT @@bind_address"); got != "127.0.0.1" {
		t.Fatalf("bind_address = %q", got)
	}
	db, _ := sql.Open("mysql", a)
	defer db.Close()
	if _, err := db.Exec("INSERT INTO x VALUES ('toolong')"); err == nil {
		t.Fatal("strict mode let a too long value in")
	}
	if got := query(t, b, "SELECT COUNT(*) FROM x"); got != "0" {
		t.Fatal(got)
	}
}

func TestStopRestart(t *testing.T) {
	s := StartServer(t)
	dsn := s.Database(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE k (v int)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO k VALUES (1)"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestMissingBinariesSkipOutsideCI(t *testing.T) {
	savedServer, savedInstall := serverPaths, installPaths
	serverPaths, installPaths = []string{"/nonexistent/mariadbd"}, []string{"/nonexistent/mariadb-install-db"}
	t.Cleanup(func() { serverPaths, installPaths = savedServer, savedInstall })
	t.Setenv("PATH", t.TempDir())
	if _, err := newServer(t.TempDir(), false); err != ErrNotInstalled {
		t.Fatalf("newServer without binaries: %v", err)
	}
	t.Setenv("CI", "")
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		StartServer(t)
	})
	if !skipped {
		t.Error("a missing server did not skip outside CI")
	}
}
