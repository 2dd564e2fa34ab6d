package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Histogram records latencies. It keeps every sample, so percentiles are
// exact; a run is bounded by --messages or --duration, and a million samples
// take 8 MB. The zero value is ready to use; it is not safe for concurrent
// use (each worker has its own and Merge combines them).
type Histogram struct {
	samples []time.Duration
	sorted  bool
}

// Add records one latency.
func (h *Histogram) Add(d time.Duration) {
	h.samples = append(h.samples, d)
	h.sorted = false
}

// Merge adds every sample of o.
func (h *Histogram) Merge(o *Histogram) {
	h.samples = append(h.samples, o.samples...)
	h.sorted = false
}

func (h *Histogram) sort() {
	if !h.sorted {
		slices.Sort(h.samples)
		h.sorted = true
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) by the nearest-rank
// method: the smallest sample such that at least p% of the samples are at
// or below it. An empty histogram gives 0; p ≤ 0 gives the minimum.
func (h *Histogram) Percentile(p float64) time.Duration {
	n := len(h.samples)
	if n == 0 {
		return 0
	}
	h.sort()
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return h.samples[rank-1]
}

// Summary is the digest of a Histogram that reports print.
type Summary struct {
	Count int           `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	// Buckets count the samples per power-of-two range of latency.
	Buckets []Bucket `json:"buckets"`
}

// Bucket counts the samples with Low ≤ latency < High.
type Bucket struct {
	Low   time.Duration `json:"low_ns"`
	High  time.Duration `json:"high_ns"`
	Count int           `json:"count"`
}

// minBucket is the upper bound of the first bucket: everything under 64µs
// is one bucket, then the bounds double.
const minBucket = 64 * time.Microsecond

// Summary computes the percentiles, mean, maximum and buckets.
func (h *Histogram) Summary() Summary {
	s := Summary{Count: len(h.samples)}
	if s.Count == 0 {
		return s
	}
	h.sort()
	var sum time.Duration
	for _, d := range h.samples {
		sum += d
	}
	s.Mean = sum / time.Duration(s.Count)
	s.P50, s.P90, s.P99 = h.Percentile(50), h.Percentile(90), h.Percentile(99)
	s.Max = h.samples[s.Count-1]
	s.Buckets = buckets(h.samples)
	return s
}

// buckets groups sorted samples into [0, 64µs), [64µs, 128µs), ... from
// the bucket holding the smallest sample to the one holding the largest.
// Empty buckets in between are kept so that the printed shape is honest.
func buckets(sorted []time.Duration) []Bucket {
	var out []Bucket
	low, high := time.Duration(0), minBucket
	i := 0
	for i < len(sorted) {
		b := Bucket{Low: low, High: high}
		for i < len(sorted) && sorted[i] < high {
			b.Count++
			i++
		}
		if b.Count > 0 || len(out) > 0 {
			out = append(out, b)
		}
		low, high = high, high*2
	}
	return out
}

// writeHistogram prints the buckets as bars of at most width characters.
func writeHistogram(w io.Writer, s Summary, width int) {
	peak := 0
	for _, b := range s.Buckets {
		peak = max(peak, b.Count)
	}
	for _, b := range s.Buckets {
		bar := 0
		if peak > 0 {
			bar = (b.Count*width + peak - 1) / peak
		}
		pct := 100 * float64(b.Count) / float64(s.Count)
		fmt.Fprintf(w, "    %9s – %-9s %8d %5.1f%% %s\n", round(b.Low), round(b.High), b.Count, pct, strings.Repeat("#", bar))
	}
}

// round shortens a duration for display: three significant digits.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}
