package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smtpkit/internal/queue"
)

// The files of packaging/ that name smtpkit's metrics.
const (
	dashboardFile = "../../packaging/grafana/smtpkit.json"
	alertsFile    = "../../packaging/prometheus/alerts.yml"
	alertsTest    = "../../packaging/prometheus/alerts_test.yml"
)

type emptyQueue struct{}

func (emptyQueue) List(context.Context) ([]queue.Summary, error) { return nil, nil }

// exported returns every metric family the binary's Metrics exports, with
// its label names: everything registered by New and the Watch* calls that
// serve makes (queue, greylist, certificates), read from the collectors'
// descriptions, so that vectors without a sample yet count too.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	m := New(Options{})
	m.WatchQueue(emptyQueue{})
	m.WatchGreylist(func() int { return 0 })
	m.WatchCertificates(func() []Certificate { return nil })
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	vl := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	ch := make(chan *prometheus.Desc, 512)
	for _, c := range m.collectors {
		c.Describe(ch)
	}
	close(ch)
	for d := range ch {
		s := d.String()
		name := fq.FindStringSubmatch(s)
		if name == nil {
			t.Fatalf("no fqName in %s", s)
		}
		var labels []string
		if l := vl.FindStringSubmatch(s); l != nil && l[1] != "" {
			labels = strings.Split(l[1], ",")
		}
		out[name[1]] = labels
	}
	if len(out) < 30 {
		t.Fatalf("only %d metric families described: %v", len(out), out)
	}
	return out
}

// family maps a sample name to its family: a histogram's _bucket, _sum
// and _count belong to it.
func family(name string, known map[string][]string) (string, bool) {
	if _, ok := known[name]; ok {
		return name, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, suf); ok {
			if _, ok := known[f]; ok {
				return f, true
			}
		}
	}
	return "", false
}

var (
	metricName = regexp.MustCompile(`\b(?:smtpkit|go|process)_[a-zA-Z0-9_]+`)
	selector   = regexp.MustCompile(`\b((?:smtpkit|go|process)_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
)

// errorer is the part of *testing.T checkExprs reports to.
type errorer interface {
	Helper()
	Errorf(format string, args ...any)
}

// fakeT records what checkExprs reports (TestPackagingChecksItself).
type fakeT struct {
	failed bool
	msgs   []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

// checkExprs checks that every metric an expression names is exported,
// and that its label matchers use labels the metric has (instance and job
// are Prometheus' own). It returns the names seen.
func checkExprs(t errorer, where string, exprs []string, known map[string][]string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range exprs {
		// The labels an aggregation in e may group by: those of the
		// metrics it names, and Prometheus' own.
		groupable := []string{"instance", "job"}
		for _, n := range metricName.FindAllString(e, -1) {
			f, ok := family(n, known)
			if !ok {
				t.Errorf("%s: %s is not a metric smtpkit exports (in %q)", where, n, e)
				continue
			}
			seen[f] = true
			groupable = append(groupable, known[f]...)
			if strings.HasSuffix(n, "_bucket") {
				groupable = append(groupable, "le")
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(e, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !slices.Contains(groupable, l) {
					t.Errorf("%s: no metric in %q has the label %q it groups by", where, e, l)
				}
			}
		}
		for _, s := range selector.FindAllStringSubmatch(e, -1) {
			f, ok := family(s[1], known)
			if !ok {
				continue
			}
			labels := known[f]
			if f != s[1] && strings.HasSuffix(s[1], "_bucket") {
				labels = append(slices.Clone(labels), "le")
			}
			for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
				if l := m[1]; l != "instance" && l != "job" && !slices.Contains(labels, l) {
					t.Errorf("%s: %s has no label %q (it has %v) in %q", where, f, l, labels, e)
				}
			}
		}
	}
	return seen
}

// dashboardExprs returns every "expr" of the dashboard's panels.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// alertExprs returns the expressions of alerts.yml: each "expr:" value,
// with the indented lines of a block scalar ("expr: |").
func alertExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		rest, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "expr:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "|" || rest == ">" {
			indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
			var b strings.Builder
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
				i++
				b.WriteString(lines[i] + "\n")
			}
			rest = b.String()
		}
		out = append(out, rest)
	}
	return out
}

// TestPackagingMetricNames: every metric the Grafana dashboard and the
// Prometheus alert rules use is one smtpkit exports, with the labels it
// has, so that neither rots when a metric is renamed; and the alerts cover
// the queue's age, the deferral rate, TLS failures and certificate expiry.
func TestPackagingMetricNames(t *testing.T) {
	known := exported(t)
	dash := dashboardExprs(t)
	if len(dash) < 20 {
		t.Fatalf("%s: only %d expressions", dashboardFile, len(dash))
	}
	seen := checkExprs(t, dashboardFile, dash, known)
	if len(seen) < 20 {
		t.Errorf("%s uses only %d metrics", dashboardFile, len(seen))
	}
	alerts := alertExprs(t)
	if len(alerts) < 8 {
		t.Fatalf("%s: only %d expressions", alertsFile, len(alerts))
	}
	seenAlerts := checkExprs(t, alertsFile, alerts, known)
	for _, must := range []string{
		"smtpkit_queue_oldest_age_seconds", "smtpkit_delivery_results_total", "smtpkit_outbound_tls_sessions_total",
		"smtpkit_tls_handshake_failures_total", "smtpkit_certificate_not_after_timestamp_seconds",
	} {
		if !seenAlerts[must] {
			t.Errorf("%s has no alert on %s", alertsFile, must)
		}
	}
}

// TestPackagingChecksItself: the name check finds a metric that does not
// exist and a label a metric does not have.
func TestPackagingChecksItself(t *testing.T) {
	known := exported(t)
	for _, bad := range []string{`rate(smtpkit_deliveries_total[5m])`, `smtpkit_queue_recipients{status="deferred"}`,
		`smtpkit_message_size_bytes_bucket{lee="1"}`, `sum by (tls_mech) (rate(smtpkit_delivery_results_total[5m]))`} {
		ft := &fakeT{}
		checkExprs(ft, "test", []string{bad}, known)
		if !ft.failed {
			t.Errorf("%q passed the check", bad)
		}
	}
	ft := &fakeT{}
	checkExprs(ft, "test", []string{`histogram_quantile(0.5, sum by (le) (rate(smtpkit_message_size_bytes_bucket{le="1024"}[5m])))`}, known)
	if ft.failed {
		t.Errorf("a valid expression failed: %v", ft.msgs)
	}
}

// TestPromtoolRules runs Prometheus' own checker over the rules and their
// unit tests (packaging/prometheus/alerts_test.yml: the alerts fire on
// the series they are about). promtool is in Debian's prometheus package;
// with CI=true it must be there.
func TestPromtoolRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is required with CI=true (scripts/install-test-deps.sh installs prometheus): %v", err)
		}
		t.Skipf("promtool not available (run scripts/install-test-deps.sh): %v", err)
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertsFile)}, {"test", "rules", filepath.Base(alertsTest)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
