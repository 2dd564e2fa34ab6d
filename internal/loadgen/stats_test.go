package loadgen

import (
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	ten := []time.Duration{ms(10), ms(1), ms(9), ms(2), ms(8), ms(3), ms(7), ms(4), ms(6), ms(5)}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"one sample p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"ten p50 nearest rank", ten, 50, ms(5)},
		{"ten p90", ten, 90, ms(9)},
		{"ten p91 rounds up", ten, 91, ms(10)},
		{"ten p99", ten, 99, ms(10)},
		{"ten p100 is max", ten, 100, ms(10)},
		{"p0 is min", ten, 0, ms(1)},
		{"above 100 is max", ten, 150, ms(10)},
		{"ties", []time.Duration{ms(2), ms(2), ms(2), ms(9)}, 75, ms(2)},
		{"ties p76", []time.Duration{ms(2), ms(2), ms(2), ms(9)}, 76, ms(9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.samples {
				h.Add(d)
			}
			if got := h.Percentile(tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileHundred(t *testing.T) {
	var h Histogram
	for i := 100; i >= 1; i-- { // reverse order: Percentile must sort
		h.Add(ms(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{1, ms(1)}, {50, ms(50)}, {90, ms(90)}, {99, ms(99)}, {99.5, ms(100)}} {
		if got := h.Percentile(c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	h.Add(0) // adding after a sort must re-sort
	if got := h.Percentile(0.5); got != 0 {
		t.Errorf("p0.5 after adding 0 = %v, want 0", got)
	}
}

func TestSummary(t *testing.T) {
	var a, b Histogram
	for _, d := range []time.Duration{10 * time.Microsecond, 70 * time.Microsecond, 100 * time.Microsecond} {
		a.Add(d)
	}
	b.Add(300 * time.Microsecond)
	a.Merge(&b)
	s := a.Summary()
	if s.Count != 4 || s.Max != 300*time.Microsecond || s.Mean != 120*time.Microsecond || s.P50 != 70*time.Microsecond {
		t.Fatalf("summary = %+v", s)
	}
	// [0,64µs) 1, [64,128) 2, [128,256) 0, [256,512) 1: empty buckets between stay.
	want := []Bucket{
		{0, 64 * time.Microsecond, 1},
		{64 * time.Microsecond, 128 * time.Microsecond, 2},
		{128 * time.Microsecond, 256 * time.Microsecond, 0},
		{256 * time.Microsecond, 512 * time.Microsecond, 1},
	}
	if len(s.Buckets) != len(want) {
		t.Fatalf("buckets = %+v, want %+v", s.Buckets, want)
	}
	for i := range want {
		if s.Buckets[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, s.Buckets[i], want[i])
		}
	}
	var sb strings.Builder
	writeHistogram(&sb, s, 10)
	if got := strings.Count(sb.String(), "\n"); got != 4 {
		t.Errorf("histogram has %d lines, want 4:\n%s", got, sb.String())
	}
	if !strings.Contains(sb.String(), "##########") {
		t.Errorf("the fullest bucket should have a full bar:\n%s", sb.String())
	}
	var slow Histogram
	slow.Add(100 * time.Millisecond)
	slow.Add(140 * time.Millisecond)
	if bs := slow.Summary().Buckets; len(bs) != 2 || bs[0].Count != 1 || bs[0].Low > 100*time.Millisecond || bs[1].High < 140*time.Millisecond {
		t.Errorf("leading empty buckets should be dropped: %+v", bs)
	}
	if (&Histogram{}).Summary().Count != 0 {
		t.Error("empty summary")
	}
}

func TestBodySize(t *testing.T) {
	for _, size := range []int{0, 100, 1024, 1025, 1026, 1027, 100 * 1024} {
		b := Body("a@b.example", "c@d.example", size)
		hdr := strings.Index(string(b), "\r\n\r\n") + 4
		if size >= hdr+3 && len(b) != size {
			t.Errorf("size %d: got %d octets", size, len(b))
		}
		if len(b) > max(size, hdr) {
			t.Errorf("size %d: got %d octets, more than asked", size, len(b))
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\r\n", ""), "\n") || !strings.HasSuffix(string(b), "\r\n") {
			t.Errorf("size %d: not CRLF text", size)
		}
	}
}

func TestProgressLine(t *testing.T) {
	got := ProgressLine(Progress{Sent: 40, Failed: 10, Messages: 100, Elapsed: 2 * time.Second}, 10)
	if !strings.HasPrefix(got, "[=====     ]  50% 40 sent 10 failed 20 msgs/s") {
		t.Errorf("ProgressLine = %q", got)
	}
}
