package http

import (
	"bytes"
	"net/http"
	"strconv"
)

// Answers a client can act on when its request is too long.
//
// A request line longer than http_max_header_bytes is answered 414
// Request-URI Too Long, and so is a scrape asking for more than
// max_scrape_infohashes hashes. Transmission, whose multi-scrapes put up
// to a few hundred hashes in one URL, shrinks its batch only when the
// error says "Request-URI Too Long" or "Bad Request"; net/http's own
// answer to an oversized request head, 431 Request Header Fields Too
// Large, would make it fail those scrapes forever.
//
// net/http reads a head of up to MaxHeaderBytes plus 4096 bytes of slack.
// A request line that fits in that reaches the handler, which measures it
// (uriLimit). A longer one makes net/http write its 431 straight to the
// connection; trackedConn follows each head it reads (headScan) and, if
// that 431 comes while the request line has not ended, writes a 414
// instead.

// uriTooLong is the failure reason of a 414, in its body.
const uriTooLong = "Request-URI Too Long"

// uriTooLongResponse is the whole answer to a request line net/http gave
// up reading: the status line Transmission matches, and a bencoded
// failure for clients that read bodies.
var uriTooLongResponse = func() []byte {
	body := appendFailure(nil, uriTooLong)
	return []byte("HTTP/1.1 414 " + uriTooLong + "\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + string(body))
}()

// status431 begins net/http's answer to a request head over its limit.
var status431 = []byte("HTTP/1.1 431 ")

// headScan follows the request heads a connection reads, line by line:
// whether the request line is still arriving, and how long it is so far.
// A blank line ends a head, and what follows is taken for the next
// request line; the tracker's requests have no body (a body would be
// scanned as lines, and at worst turn a 431 into a 414).
type headScan struct {
	line    int  // lines of the current head ended so far: 0 in the request line
	lineLen int  // bytes of the current line so far
	first   byte // the current line's first byte
}

// scan follows b, the next bytes read.
func (h *headScan) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if h.lineLen == 0 {
				h.first = b[0]
			}
			h.lineLen += len(b)
			return
		}
		n := h.lineLen + i
		blank := n == 0
		if n == 1 {
			c := h.first
			if h.lineLen == 0 {
				c = b[0]
			}
			blank = c == '\r'
		}
		switch {
		case blank:
			h.line = 0
		case h.line < 1<<30:
			h.line++
		}
		h.lineLen = 0
		b = b[i+1:]
	}
}

// tooLong reports whether p, about to be written, is net/http's 431 to a
// request line that has not ended.
func (h *headScan) tooLong(p []byte) bool {
	// The prefix first: while a handler runs, net/http's background read
	// may be scanning (writing line and lineLen) in another goroutine, and
	// only its own 431, written when no read runs, starts with status431.
	return bytes.HasPrefix(p, status431) && h.line == 0 && h.lineLen > 0
}

// writeURITooLong writes uriTooLongResponse in place of net/http's 431
// (of n bytes), reporting that write as net/http's.
func (c *trackedConn) writeURITooLong(n int) (int, error) {
	if _, err := c.Write(uriTooLongResponse); err != nil {
		return 0, err
	}
	return n, nil
}

// uriLimit answers 414 to a request whose line is longer than max bytes,
// and passes the others to next.
func uriLimit(max int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Method)+1+len(r.RequestURI)+1+len(r.Proto) > max {
			w.Header()["Content-Type"] = textPlain
			w.WriteHeader(http.StatusRequestURITooLong)
			w.Write(appendFailure(nil, uriTooLong))
			return
		}
		next.ServeHTTP(w, r)
	})
}
