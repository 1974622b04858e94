package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/chihaya/chihaya/bench/workload"
)

// maxBody bounds an answer's body: a tracker's announce answer is a few
// hundred bytes.
const maxBody = 1 << 20

// httpWorker announces over one HTTP/1.1 connection at a time, by hand
// rather than with net/http's client, so that the load generator takes as
// little of the machine's CPU from the tracker as it can.
type httpWorker struct {
	o     *options
	addr  string
	conn  net.Conn
	br    *bufio.Reader
	fresh bool      // conn was dialled for the request under way
	until time.Time // conn's deadline
	req   []byte
	body  []byte
}

func newHTTPWorker(o *options) *httpWorker {
	return &httpWorker{o: o, addr: o.addr.String(), br: bufio.NewReaderSize(nil, 4096)}
}

func (w *httpWorker) work(p *phase, t *tally) {
	defer w.drop()
	for {
		i, ok := p.take()
		if !ok || p.over(time.Now()) {
			return
		}
		w.req = w.appendRequest(w.req[:0], i)
		start := time.Now()
		status, err := w.roundTrip()
		if err != nil && !w.fresh {
			// The server closed a kept-alive connection: once more on a new one.
			status, err = w.roundTrip()
		}
		if err != nil {
			t.error(err)
			if w.fresh && isRefused(err) {
				time.Sleep(10 * time.Millisecond) // nothing listens: do not spin
			}
			continue
		}
		failed := status != 200 || bytes.Contains(w.body, []byte("failure reason"))
		t.answer(failed, len(w.body), time.Since(start))
	}
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// roundTrip sends w.req and reads the answer's body into w.body.
func (w *httpWorker) roundTrip() (status int, err error) {
	w.fresh = w.conn == nil
	if w.fresh {
		c, err := net.DialTimeout("tcp", w.addr, w.o.timeout)
		if err != nil {
			return 0, err
		}
		w.conn, w.until = c, time.Time{}
		w.br.Reset(c)
	}
	// A deadline per request would cost a timer update each; one that is
	// moved forward every second bounds a stuck request just as well.
	if now := time.Now(); w.until.Sub(now) < w.o.timeout-time.Second {
		w.until = now.Add(w.o.timeout)
		w.conn.SetDeadline(w.until)
	}
	if _, err := w.conn.Write(w.req); err != nil {
		w.drop()
		return 0, err
	}
	status, keep, err := w.readResponse()
	if err != nil {
		w.drop()
		return 0, err
	}
	if !keep || w.o.close {
		if w.o.close {
			// Wait for the server to close first, so that the TIME_WAIT
			// state stays on its side and the client's ports do not run out.
			w.br.Discard(1)
		}
		w.drop()
	}
	return status, nil
}

func (w *httpWorker) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// readResponse reads a status line, headers and a body. keep reports
// whether the connection may carry another request.
func (w *httpWorker) readResponse() (status int, keep bool, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed HTTP status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("malformed HTTP status line %q", line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; we do not ask it to
	length := -1
	for {
		line, err = w.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 || length > maxBody {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("Transfer-Encoding %q is not supported", v)
		}
	}
	if length < 0 { // the body runs to the end of the connection
		w.body = w.body[:0]
		for len(w.body) <= maxBody {
			if len(w.body) == cap(w.body) {
				w.body = append(w.body, 0)[:len(w.body)]
			}
			n, err := w.br.Read(w.body[len(w.body):cap(w.body)])
			w.body = w.body[:len(w.body)+n]
			if err == io.EOF {
				return status, false, nil
			}
			if err != nil {
				return 0, false, err
			}
		}
		return 0, false, fmt.Errorf("answer body over %d bytes", maxBody)
	}
	if cap(w.body) < length {
		w.body = make([]byte, length)
	}
	w.body = w.body[:length]
	if _, err := io.ReadFull(w.br, w.body); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}

const hexDigits = "0123456789ABCDEF"

// appendRequest appends request i's announce: every info_hash byte
// %-escaped, compact answers.
func (w *httpWorker) appendRequest(b []byte, i int) []byte {
	p := workload.Request(i, w.o.torrents)
	b = append(b, "GET "...)
	b = append(b, w.o.target.EscapedPath()...)
	if q := w.o.target.RawQuery; q != "" {
		b = append(b, '?')
		b = append(b, q...)
		b = append(b, "&info_hash="...)
	} else {
		b = append(b, "?info_hash="...)
	}
	for _, c := range workload.InfoHash(p.Torrent) {
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	id := p.PeerID()
	b = append(b, "&peer_id="...)
	b = append(b, id[:]...)
	b = append(b, "&port="...)
	b = strconv.AppendUint(b, uint64(p.Port), 10)
	b = append(b, "&uploaded="...)
	b = strconv.AppendUint(b, p.Uploaded, 10)
	b = append(b, "&downloaded="...)
	b = strconv.AppendUint(b, p.Downloaded, 10)
	b = append(b, "&left="...)
	b = strconv.AppendUint(b, p.Left, 10)
	b = append(b, "&compact=1&numwant="...)
	b = strconv.AppendInt(b, int64(w.o.numwant), 10)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.o.target.Host...)
	if w.o.close {
		b = append(b, "\r\nConnection: close"...)
	}
	return append(b, "\r\n\r\n"...)
}
