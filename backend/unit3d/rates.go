package unit3d

import (
	"math"
	"strconv"
	"sync"
	"time"
)

// rates are GET stats' figures (unit3d.md §2.4.3): exponentially decaying
// counts of requests and of announce responses over five windows.
type rates struct {
	mu                  sync.Mutex
	created             float64
	requests, responses decaying
}

var windows = [...]float64{1, 10, 60, 900, 7200}

type decaying struct {
	count [len(windows)]float64
	last  float64 // unix seconds of the last event
}

func (d *decaying) event(now float64) {
	for i, w := range windows {
		d.count[i] = d.count[i]*math.Exp(-(now-d.last)/w) + 1
	}
	d.last = now
}

func (r *rates) init(now time.Time) {
	t := unixFloat(now)
	r.created, r.requests.last, r.responses.last = t, t, t
}

// request counts a request that reached a route (announces and API calls).
func (r *rates) request(now time.Time) {
	r.mu.Lock()
	r.requests.event(unixFloat(now))
	r.mu.Unlock()
}

// response counts an announce that was processed to its end.
func (r *rates) response(now time.Time) {
	r.mu.Lock()
	r.responses.event(unixFloat(now))
	r.mu.Unlock()
}

// appendJSON writes the thirteen keys, every one a float with a decimal
// point: UNIT3D checks them with is_float.
func (r *rates) appendJSON(b []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b = append(b, `{"created_at":`...)
	b = appendFloat(b, r.created)
	b = append(b, `,"last_request_at":`...)
	b = appendFloat(b, r.requests.last)
	b = append(b, `,"last_announce_response_at":`...)
	b = appendFloat(b, r.responses.last)
	for _, f := range []struct {
		name string
		d    *decaying
	}{{"requests", &r.requests}, {"announce_responses", &r.responses}} {
		for i, w := range windows {
			v := f.d.count[i]
			if i > 0 {
				v /= w
			}
			b = append(b, `,"`+f.name+`_per_`+strconv.Itoa(int(w))+`s":`...)
			b = appendFloat(b, v)
		}
	}
	return append(b, '}')
}

// appendFloat writes v as a JSON number that PHP's json_decode reads as a
// float: always with a decimal point or an exponent (60.0, not 60).
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	for _, c := range b[start:] {
		if c == '.' || c == 'e' {
			return b
		}
	}
	return append(b, ".0"...)
}

// jsonFloat is a float64 that marshals as appendFloat writes it.
type jsonFloat float64

// MarshalJSON writes f with a decimal point or an exponent.
func (f jsonFloat) MarshalJSON() ([]byte, error) { return appendFloat(nil, float64(f)), nil }
