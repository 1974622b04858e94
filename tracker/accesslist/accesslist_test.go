package accesslist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
)

const (
	hashA = "0123456789abcdef0123456789abcdef01234567"
	hashB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
	hashC = "ffffffffffffffffffffffffffffffffffffffff"
)

func hash(t *testing.T, s string) bittorrent.InfoHash {
	t.Helper()
	h, err := bittorrent.ParseInfoHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		text string
		n    int
		err  string
	}{
		{"", 0, ""},
		{"# nothing\n\n", 0, ""},
		{hashA + "\n" + hashB, 2, ""},
		{"  " + hashA + "  \r\n# c\n" + hashA + "\n", 1, ""},
		{hashA + "\n\n" + hashA[:39] + "\n", 0, "line 3: "},
		{hashA + "\nnot a hash\n", 0, `line 2: "not a hash": an info_hash is 40 hex digits`},
		{hashA + " # trailing comment\n", 0, "line 1: "},
		{strings.Repeat("z", 40), 0, "line 1: "},
	} {
		s, err := Parse(strings.NewReader(tc.text))
		switch {
		case tc.err == "" && (err != nil || len(s) != tc.n):
			t.Errorf("%q: %d hashes, %v; want %d", tc.text, len(s), err, tc.n)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.err)
		}
	}
}

func writeList(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReload: a good file replaces the list, a bad one keeps it; Changed
// notices a rewrite by size or time.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeList(t, path, "# allowed\n"+hashA+"\n")
	l, err := Open(config.TorrentList{Mode: config.ListAllow, File: path})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Allowed(hash(t, hashA)) || l.Allowed(hash(t, hashB)) || l.Changed() {
		t.Fatalf("after Open: A %v, B %v, changed %v", l.Allowed(hash(t, hashA)), l.Allowed(hash(t, hashB)), l.Changed())
	}
	writeList(t, path, hashA+"\n"+hashB+"\n")
	if !l.Changed() {
		t.Error("a rewritten file is not Changed")
	}
	if changed, err := l.Reload(); err != nil || !changed || !l.Allowed(hash(t, hashB)) {
		t.Errorf("Reload: %v, %v; B allowed %v", changed, err, l.Allowed(hash(t, hashB)))
	}
	if changed, err := l.Reload(); err != nil || changed {
		t.Errorf("Reload of the same file: %v, %v; want no change", changed, err)
	}
	writeList(t, path, hashA+"\nbad\n")
	if _, err := l.Reload(); err == nil || !strings.Contains(err.Error(), path+": line 2: ") {
		t.Errorf("Reload of a bad file: %v, want the file and line 2 named", err)
	}
	if l.Len() != 2 || !l.Allowed(hash(t, hashB)) {
		t.Error("a bad file changed the list")
	}
	os.Remove(path)
	if _, err := l.Reload(); err == nil || l.Len() != 2 || l.Changed() {
		t.Errorf("Reload of a missing file: %v, %d listed", err, l.Len())
	}
	if _, err := Open(config.TorrentList{Mode: config.ListAllow, File: path}); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

// TestSetListed: the file is rewritten with its comments kept, and the
// list follows at once, in both modes.
func TestSetListed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "list")
	writeList(t, path, "# banned\n"+hashA+"\n"+strings.ToUpper(hashA)+"\n# end") // A twice, no final newline
	l, err := Open(config.TorrentList{Mode: config.ListDeny, File: path})
	if err != nil {
		t.Fatal(err)
	}
	if l.Allowed(hash(t, hashA)) || !l.Allowed(hash(t, hashB)) {
		t.Fatal("deny list: A must be refused, B served")
	}
	if changed, err := l.SetListed(hash(t, hashB), true); err != nil || !changed || l.Allowed(hash(t, hashB)) {
		t.Errorf("listing B: %v, %v", changed, err)
	}
	if changed, err := l.SetListed(hash(t, hashB), true); err != nil || changed {
		t.Errorf("listing B again: %v, %v; want no change", changed, err)
	}
	if changed, err := l.SetListed(hash(t, hashA), false); err != nil || !changed || !l.Allowed(hash(t, hashA)) {
		t.Errorf("unlisting A: %v, %v", changed, err)
	}
	b, _ := os.ReadFile(path)
	if want := "# banned\n# end\n" + strings.ToLower(hashB) + "\n"; string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}
	if l.Changed() {
		t.Error("the list's own rewrite counts as a change")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want the list alone", len(entries))
	}
	// Reopened, as after a restart, the file says the same.
	r, err := Open(config.TorrentList{Mode: config.ListDeny, File: path})
	if err != nil || r.Len() != 1 || r.Allowed(hash(t, hashB)) {
		t.Errorf("reopened: %v, %d listed", err, r.Len())
	}
	// A file broken by hand is not touched.
	writeList(t, path, "oops\n")
	if _, err := l.SetListed(hash(t, hashC), true); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("SetListed on a bad file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "oops\n" {
		t.Errorf("a bad file was rewritten: %q", b)
	}
}

func TestChangedByTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeList(t, path, hashA+"\n")
	l, err := Open(config.TorrentList{Mode: config.ListAllow, File: path})
	if err != nil {
		t.Fatal(err)
	}
	writeList(t, path, hashB+"\n") // same size
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
	if !l.Changed() {
		t.Error("a file of the same size and a new time is not Changed")
	}
}

func TestClientAllowed(t *testing.T) {
	id := func(s string) *bittorrent.PeerID {
		var p bittorrent.PeerID
		copy(p[:], s)
		return &p
	}
	allow := &config.ClientList{Mode: config.ListAllow, Prefixes: []string{"-TR", "-qB4"}}
	deny := &config.ClientList{Mode: config.ListDeny, Prefixes: []string{"-XL0012-"}}
	for _, tc := range []struct {
		list       *config.ClientList
		id         string
		ok, banned bool
	}{
		{nil, "-XL0012-aaaaaaaaaaaa", true, false},
		{allow, "-TR4050-aaaaaaaaaaaa", true, false},
		{allow, "-qB4610-aaaaaaaaaaaa", true, false},
		{allow, "-qB3610-aaaaaaaaaaaa", false, false},
		{deny, "-XL0012-aaaaaaaaaaaa", false, true},
		{deny, "-XL0013-aaaaaaaaaaaa", true, false},
		{&config.ClientList{Mode: config.ListAllow}, "-TR4050-aaaaaaaaaaaa", false, false},
	} {
		if ok, banned := ClientAllowed(tc.list, id(tc.id)); ok != tc.ok || banned != tc.banned {
			t.Errorf("%v %q: ok %v banned %v, want %v %v", tc.list, tc.id, ok, banned, tc.ok, tc.banned)
		}
	}
}
