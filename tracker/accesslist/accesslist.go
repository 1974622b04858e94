// Package accesslist holds a public tracker's lists of the torrents and
// clients it serves: a torrent list, info_hashes in a file that is re-read
// while the tracker runs, and a client list, peer_id prefixes. Each is an
// allow list (only what is listed is served) or a deny list (what is
// listed is refused), as opentracker's are.
package accesslist

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/config"
	"github.com/chihaya/chihaya/internal/atomicfile"
)

// Torrents is a torrent list: the info_hashes of its file, one a line in
// 40 hex digits (either case), with blank lines and lines starting with #
// skipped. It is safe for concurrent use: Allowed is a map look-up under
// no lock, and a reload swaps the whole set at once.
type Torrents struct {
	mode, path string
	set        atomic.Pointer[set]

	mu   sync.Mutex // serialises reloads and edits of the file
	stat fileStamp  // the file as last read
}

type set map[bittorrent.InfoHash]struct{}

// fileStamp tells a changed file from the one read: its modification
// time and size. An edit that keeps both (within the file system's time
// resolution) goes unnoticed until SIGHUP.
type fileStamp struct {
	mtime time.Time
	size  int64
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{fi.ModTime(), fi.Size()} }

// Open reads the torrent list cfg names.
func Open(cfg config.TorrentList) (*Torrents, error) {
	l := &Torrents{mode: cfg.Mode, path: cfg.File}
	if _, err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Is reports whether l is the list cfg names: the same file in the same
// mode.
func (l *Torrents) Is(cfg config.TorrentList) bool { return l.mode == cfg.Mode && l.path == cfg.File }

// File is the list's file.
func (l *Torrents) File() string { return l.path }

// Len is the number of info_hashes listed.
func (l *Torrents) Len() int { return len(*l.set.Load()) }

// Listed reports whether h is in the list.
func (l *Torrents) Listed(h bittorrent.InfoHash) bool {
	_, ok := (*l.set.Load())[h]
	return ok
}

// Allowed reports whether the tracker serves h: listed in an allow list,
// or not listed in a deny list.
func (l *Torrents) Allowed(h bittorrent.InfoHash) bool {
	return l.Listed(h) == (l.mode == config.ListAllow)
}

// Changed reports whether the file differs from the one last read, by
// its modification time and size. A file that cannot be read counts as
// unchanged: Reload would keep the list as it is.
func (l *Torrents) Changed() bool {
	fi, err := os.Stat(l.path)
	if err != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return stampOf(fi) != l.stat
}

// Reload reads the file again and reports whether the list changed. A
// file that cannot be read or has a bad line changes nothing: the list
// read last stays, and the error names the file and the line.
func (l *Torrents) Reload() (changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return false, fmt.Errorf("torrent_list: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("torrent_list: %w", err)
	}
	next, err := Parse(f)
	if err != nil {
		return false, fmt.Errorf("torrent_list: %s: %w", l.path, err)
	}
	l.stat = stampOf(fi)
	old := l.set.Swap(&next)
	return old == nil || !sameSet(*old, next), nil
}

func sameSet(a, b set) bool {
	if len(a) != len(b) {
		return false
	}
	for h := range a {
		if _, ok := b[h]; !ok {
			return false
		}
	}
	return true
}

// Parse reads a torrent list. The first bad line is an error that gives
// its number.
func Parse(r io.Reader) (set, error) {
	s := make(set)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		h, err := bittorrent.ParseInfoHash(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n, truncate(line), err)
		}
		s[h] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// truncate shortens a bad line for an error message.
func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// SetListed adds h to the list's file (listed) or removes every line of
// it, and reports whether that changed the list. The file is rewritten
// atomically (a temporary file, synced, renamed over it), keeping its
// other lines and comments, so that the change survives a restart and a
// crash never leaves half a file. A file that no longer parses is not
// touched.
func (l *Torrents) SetListed(h bittorrent.InfoHash, listed bool) (changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text, err := os.ReadFile(l.path)
	if err != nil {
		return false, fmt.Errorf("torrent_list: %w", err)
	}
	cur, err := Parse(bytes.NewReader(text))
	if err != nil {
		return false, fmt.Errorf("torrent_list: %s: %w; fix it before changing the list", l.path, err)
	}
	if _, ok := cur[h]; ok == listed {
		return false, nil
	}
	var out []byte
	if listed {
		out = text
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, h.String()+"\n"...)
		cur[h] = struct{}{}
	} else {
		for line := range bytes.Lines(text) {
			if g, err := bittorrent.ParseInfoHash(string(bytes.TrimSpace(line))); err == nil && g == h {
				continue
			}
			out = append(out, line...)
		}
		delete(cur, h)
	}
	if err := atomicfile.Write(l.path, 0o644, func(w io.Writer) error { _, err := w.Write(out); return err }); err != nil {
		return false, fmt.Errorf("torrent_list: %w", err)
	}
	if fi, err := os.Stat(l.path); err == nil {
		l.stat = stampOf(fi)
	}
	l.set.Store(&cur)
	return true, nil
}

// ClientAllowed reports whether the client list cfg (nil: none) lets the
// peer id serve, and if not, whether because it is banned (a deny list)
// rather than not listed (an allow list).
func ClientAllowed(cfg *config.ClientList, id *bittorrent.PeerID) (ok, banned bool) {
	if cfg == nil {
		return true, false
	}
	listed := false
	for _, p := range cfg.Prefixes {
		if string(id[:len(p)]) == p {
			listed = true
			break
		}
	}
	if cfg.Mode == config.ListAllow {
		return listed, false
	}
	return !listed, listed
}
