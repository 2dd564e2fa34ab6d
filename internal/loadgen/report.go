package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WriteText prints the report for people: throughput, errors by code and
// the latency distributions.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	per := "unlimited"
	if r.PerConnection > 0 {
		per = fmt.Sprint(r.PerConnection)
	}
	fmt.Fprintf(&b, "server %s, tls %s, %d sessions at once, %d-octet messages, %s per session\n",
		r.Server, r.TLS, r.Concurrency, r.Size, per)
	fmt.Fprintf(&b, "elapsed    %s\n", round(r.Elapsed))
	fmt.Fprintf(&b, "messages   %d sent, %d failed, %.1f msgs/s\n", r.Sent, r.Failed, r.MessagesPerSec)
	fmt.Fprintf(&b, "sessions   %d completed, %.1f sessions/s\n", r.Sessions, r.SessionsPerSec)
	if len(r.Errors) > 0 {
		fmt.Fprintln(&b, "errors")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "  %-8s %8d  e.g. %s\n", k, r.Errors[k], r.ErrorSamples[k])
		}
	}
	writeSummary(&b, "message latency (MAIL to the reply after \".\")", r.Message)
	writeSummary(&b, "session latency (connect to the reply to QUIT)", r.Session)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSummary(b *strings.Builder, title string, s Summary) {
	if s.Count == 0 {
		return
	}
	fmt.Fprintf(b, "%s, %d samples\n", title, s.Count)
	fmt.Fprintf(b, "  mean %s  p50 %s  p90 %s  p99 %s  max %s\n",
		round(s.Mean), round(s.P50), round(s.P90), round(s.P99), round(s.Max))
	writeHistogram(b, s, 40)
}

// WriteText prints the idle report.
func (r IdleReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "idle: %d of %d connections held (opened in %s)\n", r.Held, r.Requested, round(r.Open))
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(&b, "  %-8s %8d  e.g. %s\n", k, r.Errors[k], r.Samples[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ProgressLine renders p as one line for a terminal: a bar when the run has
// a target, the counts and the rate.
func ProgressLine(p Progress, width int) string {
	frac := 0.0
	switch {
	case p.Messages > 0:
		frac = float64(p.Sent+p.Failed) / float64(p.Messages)
	case p.Duration > 0:
		frac = float64(p.Elapsed) / float64(p.Duration)
	}
	frac = min(max(frac, 0), 1)
	full := int(frac * float64(width))
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Sent) / s
	}
	return fmt.Sprintf("[%s%s] %3.0f%% %d sent %d failed %.0f msgs/s %s",
		strings.Repeat("=", full), strings.Repeat(" ", width-full), frac*100, p.Sent, p.Failed, rate, p.Elapsed.Round(time.Second))
}
