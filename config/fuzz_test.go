package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecode: any input either decodes to a valid configuration, which
// written back as JSON decodes to the same configuration, or gives an
// error that says it is the configuration's. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config") {
				t.Fatalf("%q: error %q does not say where it is", data, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q: decoded, but Validate says %v", data, err)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("%q: decoded, but does not encode: %v", data, err)
		}
		again, err := Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%q: its own encoding %s does not decode: %v", data, out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("%q: encodes as\n%s\nwhich decodes to\n%s", data, out, out2)
		}
		// The same file read twice needs no restart. (Not its re-encoding:
		// Reload compares driver params byte for byte, so a file whose
		// params only changed their spacing asks for a restart.)
		same, _ := Decode(bytes.NewReader(data))
		if merged, restart := cfg.Reload(same); len(restart) != 0 || merged.Validate() != nil {
			t.Fatalf("%q: reloading the same configuration needs a restart for %q", data, restart)
		}
	})
}
