package e2etest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// MakePayload writes dir/payload.bin: 1 to 4 MiB of random bytes, a size
// that is not a multiple of any piece size (so that the last piece is
// short). It returns the file's path and contents.
func MakePayload(dir string) (string, []byte, error) {
	mib, _ := rand.Int(rand.Reader, big.NewInt(4))
	less, _ := rand.Int(rand.Reader, big.NewInt(32768))
	b := make([]byte, (mib.Int64()+1)<<20-1-less.Int64())
	rand.Read(b)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "payload.bin")
	return path, b, os.WriteFile(path, b, 0o644)
}

// MakeTorrent runs mktorrent to make out, a torrent of file announcing to
// announceURL (opts are further mktorrent options, e.g. -p -l 18), and
// returns its info_hash in hex.
func MakeTorrent(file, out, announceURL string, opts ...string) (string, error) {
	args := append(append([]string{}, opts...), "-a", announceURL, "-o", out, file)
	bin, err := LookPath("mktorrent")
	if err != nil {
		return "", err
	}
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mktorrent %v: %v\n%s", args, err, tail(string(b), 20))
	}
	return InfoHash(out)
}

// InfoHash returns the info_hash, in hex, of the torrent file at path.
func InfoHash(path string) (string, error) {
	mi, err := metainfo.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %v", path, err)
	}
	return mi.HashInfoBytes().HexString(), nil
}

// WaitIdentical waits until the file at path holds exactly want; it gives
// up at the deadline, or when c (the client writing the file) has ended
// without it.
func WaitIdentical(want []byte, path string, within time.Duration, c *Client) bool {
	deadline := time.Now().Add(within)
	for {
		running := c.Running() // before the read: a last look after it ended
		if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, want) {
			return true
		}
		if !running || time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
