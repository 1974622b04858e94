package http

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/config"
)

// rawExchange sends req on a new connection to addr and returns the
// answer's status line and body.
func rawExchange(t *testing.T, addr, req string) (status, body string) {
	t.Helper()
	c, br := dial(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, string(b)
}

// TestTooLongAnswers414: a request line longer than http_max_header_bytes,
// whether net/http reads it whole (within its slack) or gives up on it,
// and a scrape asking for more than max_scrape_infohashes hashes are
// answered 414, on which Transmission shrinks its multi-scrape; headers
// that are too long keep net/http's 431.
func TestTooLongAnswers414(t *testing.T) {
	const max = 2048
	addr, _ := serve(t, true, func(c *config.Config) {
		c.MaxHeaderBytes = max
		c.MaxScrapeInfoHashes = 4
	})
	line := func(n int) string { // a request line of n bytes
		const head, tail = "GET /scrape?info_hash=", " HTTP/1.1"
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	scrape := func(hashes int) string {
		return "GET /scrape?" + strings.Repeat("info_hash="+ih1+"&", hashes) + " HTTP/1.1"
	}
	for _, tc := range []struct {
		name, req, status, body string
	}{
		{"line at the limit", line(max) + "\r\nHost: t\r\n\r\n", "200 OK", "info_hash must be 20 bytes"},
		{"line one byte over", line(max+1) + "\r\nHost: t\r\n\r\n", "414 Request URI Too Long", "Request-URI Too Long"},
		{"line past net/http's slack", line(4*max) + "\r\nHost: t\r\n\r\n", "414 Request-URI Too Long", "Request-URI Too Long"},
		{"line that never ends", line(16 * max), "414 Request-URI Too Long", "Request-URI Too Long"},
		{"headers too long", "GET /scrape HTTP/1.1\r\nHost: t\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 100) + "\r\n",
			"431 Request Header Fields Too Large", "431 Request Header Fields Too Large"},
		{"scrape within the cap", scrape(4) + "\r\nHost: t\r\n\r\n", "200 OK", "d5:filesd20:" + ih1},
		{"scrape over the cap", scrape(5) + "\r\nHost: t\r\n\r\n", "414 Request URI Too Long", "Request-URI Too Long: too many info_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawExchange(t, addr, tc.req)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("answer %q %q, want %q and a body containing %q", status, body, tc.status, tc.body)
			}
			// What Transmission 3.00 acts on (multiscrape_too_big): the status
			// code, which it names "Request-URI Too Long" itself.
			if strings.HasPrefix(tc.status, "414 ") && !strings.HasPrefix(status, "414 ") {
				t.Errorf("status %q, want 414", status)
			}
		})
	}
	// A keep-alive connection's second request line is measured from its
	// own start.
	c, br := dial(t, addr)
	io.WriteString(c, scrape(1)+"\r\nHost: t\r\n\r\n"+line(4*max)+"\r\nHost: t\r\n\r\n")
	for i, want := range []int{200, 414} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("pipelined request %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
}

// TestHeadScan follows heads split across reads at every byte.
func TestHeadScan(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		line, len    int
	}{
		{"nothing", "", 0, 0},
		{"partial request line", "GET /announce?in", 0, 16},
		{"after the request line", "GET / HTTP/1.1\r\nHo", 1, 2},
		{"after a head", "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0, 0},
		{"bare newlines", "GET / HTTP/1.0\nHost: t\n\nGET /x", 0, 6},
		{"two heads", "GET / HTTP/1.1\r\nA: b\r\n\r\nGET / HTTP/1.1\r\nA: b\r\nC", 2, 1},
		{"a CR alone is not a blank line's end", "GET / HTTP/1.1\r\n\r", 1, 1},
		{"a header of one character", "GET / HTTP/1.1\r\nx\r\nGET", 2, 3},
	} {
		for split := 0; split <= len(tc.stream); split++ {
			var h headScan
			h.scan([]byte(tc.stream[:split]))
			h.scan([]byte(tc.stream[split:]))
			if h.line != tc.line || h.lineLen != tc.len {
				t.Errorf("%s, split at %d: line %d, %d bytes; want line %d, %d bytes", tc.name, split, h.line, h.lineLen, tc.line, tc.len)
			}
		}
	}
	var h headScan
	h.scan([]byte("GET /" + strings.Repeat("a", 100)))
	if !h.tooLong([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\n")) || h.tooLong([]byte("HTTP/1.1 200 OK\r\n")) {
		t.Error("tooLong: want only a 431 during the request line")
	}
	h.scan([]byte("\r\n"))
	if h.tooLong([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\n")) {
		t.Error("tooLong: a 431 after the request line ended is the headers'")
	}
}

// TestURITooLongResponseParses: the hand-written 414 is a well-formed
// HTTP answer with a bencoded failure.
func TestURITooLongResponseParses(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(uriTooLongResponse))), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if m := decodeCanonical(t, body); resp.StatusCode != 414 || m["failure reason"] != uriTooLong || !resp.Close {
		t.Errorf("%d %v close=%v", resp.StatusCode, m, resp.Close)
	}
}

// BenchmarkHeadScan: the cost headScan adds to reading a typical
// announce (a few tens of nanoseconds beside the microseconds of the
// request).
func BenchmarkHeadScan(b *testing.B) {
	req := []byte("GET /announce?" + benchQuery(7) + " HTTP/1.1\r\nHost: tracker.example:6881\r\nUser-Agent: Transmission/3.00\r\nAccept: */*\r\nAccept-Encoding: gzip;q=1.0, deflate, identity\r\n\r\n")
	b.SetBytes(int64(len(req)))
	var h headScan
	for b.Loop() {
		h.scan(req)
	}
}
