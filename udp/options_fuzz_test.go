package udp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// referenceOptions reads BEP 41 options the plain way, with a
// bytes.Reader: EndOfOptions stops, NOP is one byte, every other option
// is a type, a length and that many bytes, and URLData's bytes are the
// URL's next part.
func referenceOptions(opt []byte) ([]byte, error) {
	r := bytes.NewReader(opt)
	url := []byte{}
	for {
		typ, err := r.ReadByte()
		if err == io.EOF {
			return url, nil
		}
		switch typ {
		case optionEnd:
			return url, nil
		case optionNOP:
			continue
		}
		n, err := r.ReadByte()
		if err != nil {
			return nil, errors.New("no length")
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, errors.New("short data")
		}
		if typ == optionURLData {
			url = append(url, data...)
		}
	}
}

// FuzzOptions checks the BEP 41 option parser against referenceOptions.
// The seed corpus is in testdata/fuzz/FuzzOptions.
func FuzzOptions(f *testing.F) {
	w := newWorker(newTestServer(f, nil, nil))
	f.Fuzz(func(t *testing.T, opt []byte) {
		got, err := w.options(opt)
		want, wantErr := referenceOptions(opt)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("% x: error %v, reference %v", opt, err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("% x: URL data %q, reference %q", opt, got, want)
		}
		if err != nil && err != errBadOptions {
			t.Fatalf("% x: error %v, want errBadOptions", opt, err)
		}
	})
}
