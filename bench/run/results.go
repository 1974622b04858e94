package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// ratio is a/b with two decimals, "n/a" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// result is one line of the load generator.
type result struct {
	rps, p50, p90, p99, p999 float64
	failed, errors           int64
	firstError               string
}

func (r result) row() string {
	s := fmt.Sprintf("%9.0f %8.3f %8.3f %8.3f %8.3f %7d %7d", r.rps, r.p50, r.p90, r.p99, r.p999, r.failed, r.errors)
	if r.firstError != "" {
		s += "  first error: " + r.firstError
	}
	return s
}

// parseResult reads the load generator's key=value line.
func parseResult(line string) (result, error) {
	var r result
	line, firstErr, _ := strings.Cut(line, " first_error=")
	if firstErr != "" {
		if s, err := strconv.Unquote(firstErr); err == nil {
			r.firstError = s
		} else {
			r.firstError = firstErr
		}
	}
	floats := map[string]*float64{"rps": &r.rps, "p50_ms": &r.p50, "p90_ms": &r.p90, "p99_ms": &r.p99, "p999_ms": &r.p999}
	ints := map[string]*int64{"failed": &r.failed, "errors": &r.errors}
	seen := 0
	for _, f := range strings.Fields(line)[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return result{}, fmt.Errorf("malformed load line %q", line)
		}
		var err error
		if p := floats[k]; p != nil {
			*p, err = strconv.ParseFloat(v, 64)
			seen++
		} else if p := ints[k]; p != nil {
			*p, err = strconv.ParseInt(v, 10, 64)
			seen++
		}
		if err != nil {
			return result{}, fmt.Errorf("load line: %s=%q: %v", k, v, err)
		}
	}
	if seen != len(floats)+len(ints) {
		return result{}, fmt.Errorf("load line %q lacks some of rps, p50_ms, p90_ms, p99_ms, p999_ms, failed, errors", line)
	}
	return r, nil
}

// median returns the median of each figure of the runs.
func median(runs []result) result {
	pick := func(f func(r result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	return result{
		rps:    pick(func(r result) float64 { return r.rps }),
		p50:    pick(func(r result) float64 { return r.p50 }),
		p90:    pick(func(r result) float64 { return r.p90 }),
		p99:    pick(func(r result) float64 { return r.p99 }),
		p999:   pick(func(r result) float64 { return r.p999 }),
		failed: int64(pick(func(r result) float64 { return float64(r.failed) })),
		errors: int64(pick(func(r result) float64 { return float64(r.errors) })),
	}
}

// runLoad runs the load generator and returns its last line's figures.
func runLoad(ctx context.Context, bin string, args []string) (result, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err != nil {
		return result{}, fmt.Errorf("load %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return parseResult(lines[len(lines)-1])
}
