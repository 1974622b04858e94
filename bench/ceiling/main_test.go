package main

import (
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"info_hash=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14", string(body)},
		{"info_hash=short", "d14:failure reason17:invalid info_hashe"},
	} {
		w := httptest.NewRecorder()
		handler(w, httptest.NewRequest("GET", "/announce?"+tc.query, nil))
		if got := w.Body.String(); got != tc.want {
			t.Errorf("%s: answer %q, want %q", tc.query, got, tc.want)
		}
	}
	if len(body) != 380 {
		t.Errorf("body is %d bytes, want 380 (50 compact peers)", len(body))
	}
}
