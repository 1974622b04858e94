package e2etest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/tracker"
	"github.com/anacrolix/torrent/tracker/udp"
)

// client talks to the tracker directly: no proxy from the environment,
// which would send loopback requests elsewhere.
var client = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   3 * time.Second,
}

// Get fetches rawURL, which must be on 127.0.0.1, and returns the body of
// a 200 response.
func Get(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Hostname() != "127.0.0.1" {
		return "", fmt.Errorf("e2etest: refusing the non-loopback URL %q", rawURL)
	}
	resp, err := client.Get(rawURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	return string(b), nil
}

// decode decodes a tracker response strictly: one canonical bencoded
// dictionary (sorted unique keys, canonical integers and lengths) and
// nothing after it, as strict clients such as anacrolix require. Canonical
// means that encoding the value again gives the same bytes.
func decode(body string) (map[string]any, error) {
	var v any
	if err := bencode.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("bencode: %v in %q", err, body)
	}
	again, err := bencode.Marshal(v)
	if err != nil || !bytes.Equal(again, []byte(body)) {
		return nil, fmt.Errorf("bencode: not canonical (re-encoded %q) in %q", again, body)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bencode: not a dictionary: %q", body)
	}
	return d, nil
}

// Counts are a torrent's scrape numbers.
type Counts struct {
	Complete, Downloaded, Incomplete int64
}

func (c Counts) String() string {
	return fmt.Sprintf("complete=%d downloaded=%d incomplete=%d", c.Complete, c.Downloaded, c.Incomplete)
}

func (c Counts) field(name string) (int64, bool) {
	switch name {
	case "complete":
		return c.Complete, true
	case "downloaded":
		return c.Downloaded, true
	case "incomplete":
		return c.Incomplete, true
	}
	return 0, false
}

// Scrape scrapes the torrent hexHash (its info_hash in hex) at scrapeURL.
func Scrape(scrapeURL, hexHash string) (Counts, error) {
	ih, err := hex.DecodeString(hexHash)
	if err != nil || len(ih) != 20 {
		return Counts{}, fmt.Errorf("scrape: bad info_hash %q", hexHash)
	}
	body, err := Get(scrapeURL + "?info_hash=" + url.QueryEscape(string(ih)))
	if err != nil {
		return Counts{}, err
	}
	d, err := decode(body)
	if err != nil {
		return Counts{}, fmt.Errorf("scrape: %v", err)
	}
	if r, ok := d["failure reason"]; ok {
		return Counts{}, fmt.Errorf("scrape: failure reason %q", r)
	}
	files, _ := d["files"].(map[string]any)
	f, ok := files[string(ih)].(map[string]any)
	if !ok {
		return Counts{}, fmt.Errorf("scrape: %s missing from files: %q", hexHash, body)
	}
	var c Counts
	for _, k := range []struct {
		name string
		to   *int64
	}{{"complete", &c.Complete}, {"downloaded", &c.Downloaded}, {"incomplete", &c.Incomplete}} {
		n, ok := f[k.name].(int64)
		if !ok {
			return Counts{}, fmt.Errorf("scrape: no integer %q in %q", k.name, body)
		}
		*k.to = n
	}
	return c, nil
}

// Cond is a condition on Counts, written as the field, an operator and a
// number: "complete==1", "downloaded>=1", "incomplete<2".
type Cond string

// holds reports whether c holds for counts; an error for a malformed c.
func (c Cond) holds(counts Counts) (bool, error) {
	s := string(c)
	for _, op := range []string{">=", "<=", "==", ">", "<"} {
		field, num, ok := strings.Cut(s, op)
		if !ok {
			continue
		}
		have, known := counts.field(strings.TrimSpace(field))
		want, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if !known || err != nil {
			break
		}
		switch op {
		case ">=":
			return have >= want, nil
		case "<=":
			return have <= want, nil
		case "==":
			return have == want, nil
		case ">":
			return have > want, nil
		default:
			return have < want, nil
		}
	}
	return false, fmt.Errorf("e2etest: bad scrape condition %q (want e.g. complete==1)", s)
}

// WaitScrape polls the scrape until every condition holds, and returns the
// counts that satisfied them; or, at the deadline, an error with the last
// counts (or the last scrape's error).
func WaitScrape(scrapeURL, hexHash string, within time.Duration, conds ...Cond) (Counts, error) {
	deadline := time.Now().Add(within)
	for {
		c, err := Scrape(scrapeURL, hexHash)
		if err == nil {
			all := true
			for _, cond := range conds {
				ok, cerr := cond.holds(c)
				if cerr != nil {
					return c, cerr
				}
				all = all && ok
			}
			if all {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			last := c.String()
			if err != nil {
				last = err.Error()
			}
			return c, fmt.Errorf("wanted %v within %v; last: %s", conds, within, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Announce sends one announce of a made-up peer (event started, left 1)
// for hexHash to announceURL (http:// or udp://, on 127.0.0.1), and returns
// "failure reason: R" or "interval=N peers=P". Over UDP the URL's path
// goes as BEP 41 URL data.
func Announce(announceURL, hexHash string) (string, error) {
	ih, err := hex.DecodeString(hexHash)
	if err != nil || len(ih) != 20 {
		return "", fmt.Errorf("announce: bad info_hash %q", hexHash)
	}
	if strings.HasPrefix(announceURL, "udp://") {
		return announceUDP(announceURL, [20]byte(ih))
	}
	q := url.Values{
		"info_hash":  {string(ih)},
		"peer_id":    {"-E2E001-" + strings.ToUpper(RandomHex(6))},
		"port":       {"6999"},
		"uploaded":   {"0"},
		"downloaded": {"0"},
		"left":       {"1"},
		"event":      {"started"},
		"compact":    {"1"},
	}
	body, err := Get(announceURL + "?" + q.Encode())
	if err != nil {
		return "", err
	}
	d, err := decode(body)
	if err != nil {
		return "", fmt.Errorf("announce: %v", err)
	}
	if r, ok := d["failure reason"].(string); ok {
		return "failure reason: " + r, nil
	}
	interval, _ := d["interval"].(int64)
	peers, _ := d["peers"].(string)
	return fmt.Sprintf("interval=%d peers=%d", interval, len(peers)/6), nil
}

// announceUDP is Announce over BEP 15, with anacrolix's tracker client.
func announceUDP(announceURL string, ih [20]byte) (string, error) {
	u, err := url.Parse(announceURL)
	if err != nil {
		return "", err
	}
	if u.Hostname() != "127.0.0.1" {
		return "", fmt.Errorf("e2etest: refusing the non-loopback URL %q", announceURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var peerID [20]byte
	copy(peerID[:], "-E2E001-"+strings.ToUpper(RandomHex(6)))
	resp, err := tracker.Announce{
		TrackerUrl: announceURL,
		Context:    ctx,
		Request: tracker.AnnounceRequest{
			InfoHash: ih, PeerId: peerID, Left: 1, Port: 6999, Event: tracker.Started, NumWant: -1,
		},
	}.Do()
	var er udp.ErrorResponse
	if errors.As(err, &er) {
		return "failure reason: " + strings.TrimRight(er.Message, "\x00"), nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("interval=%d peers=%d", resp.Interval, len(resp.Peers)), nil
}

// RandomHex returns n random bytes in hex (2n characters): passkeys,
// secrets.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
