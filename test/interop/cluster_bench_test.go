package interop

// BenchmarkCluster: messages per second accepted and delivered by one node
// on the local back-end, and by one and by three nodes on one PostgreSQL
// (same machine, same load: sessions relaying 1 KB messages from the
// trusted network to Postfix's smtp-sink), and the database's commits per
// message (pg_stat_database.xact_commit). Run it alone:
//
//	go test -run '^$' -bench BenchmarkCluster -benchtime 1x ./test/interop/
//
// CLUSTER_MESSAGES (default 2000) and CLUSTER_SESSIONS (default 8) set the
// load. docs/performance.md has the numbers.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/pgtest"
)

const benchSinkIP = "127.17.4.31"

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// startSmtpSink runs Postfix's smtp-sink on a free port of benchSinkIP.
func startSmtpSink(t testing.TB) string {
	t.Helper()
	bin := "/usr/sbin/smtp-sink"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("smtp-sink (postfix) is required with CI=true: %v", err)
		}
		t.Skipf("smtp-sink not available: %v", err)
	}
	l, err := net.Listen("tcp", benchSinkIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{addr, "256"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...) // smtp-sink refuses to run as root
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("smtp-sink not listening")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded above
	}
}

func BenchmarkCluster(b *testing.B) {
	msgs := envInt("CLUSTER_MESSAGES", 2000)
	sessions := envInt("CLUSTER_SESSIONS", 8)
	for _, tc := range []struct {
		name  string
		pg    bool
		nodes int
	}{{"local-1", false, 1}, {"postgres-1", true, 1}, {"postgres-3", true, 3}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				benchCluster(b, tc.pg, tc.nodes, msgs, sessions)
			}
		})
	}
}

func benchCluster(b *testing.B, usePG bool, nodes, msgs, sessions int) {
	sink := startSmtpSink(b)
	_, sinkPort, _ := net.SplitHostPort(sink)
	var pg *pgtest.Server
	if usePG {
		pg = pgtest.Start(b, pgtest.Options{Addr: clusterPGIP + ":0"})
	}
	routes := fmt.Sprintf(`[outbound]
allow_loopback = true
tls = "none"
retry_min = "1s"
retry_max = "2s"

[[route]]
domain = "*"
host = "%s:%s"
tls = "none"
`, benchSinkIP, sinkPort)
	var servers []*Server
	for i := range nodes {
		extra := routes
		if usePG {
			extra = fmt.Sprintf("[cluster]\ndatabase = %q\nnode = \"node%d\"\n\n", pg.DSN(), i+1) + routes
		}
		servers = append(servers, StartServer(b, ServerOptions{IP: clusterNodeIPs[i],
			TopTOML: `trusted_networks = ["127.0.0.0/8"]`, ExtraTOML: extra}))
	}
	commits := func() int64 {
		if pg == nil {
			return 0
		}
		out, err := pg.Exec(`SELECT sum(xact_commit) FROM pg_stat_database`)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		return n
	}
	before := commits()
	body := "From: <sender@client.example>\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 10)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := servers[s%len(servers)]
			ctx := context.Background()
			c, err := client.Dial(ctx, srv.MX, client.Options{LocalName: "client.example"})
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			if err := c.Hello(); err != nil {
				b.Error(err)
				return
			}
			for next.Add(1) <= int64(msgs) {
				res, err := c.Send(ctx, client.Envelope{From: "sender@client.example", To: []string{"user@relay.example"}}, strings.NewReader(body))
				if err != nil || res.Data != nil {
					b.Errorf("send: %v %v", err, res.Data)
					return
				}
			}
			c.Quit()
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	// Delivered: the queue is empty (local) or every recipient delivered.
	delivered := func() bool {
		if pg != nil {
			out, err := pg.Exec(`SELECT count(*) FROM recipients WHERE state <> 'delivered'`)
			return err == nil && strings.TrimSpace(out) == "0"
		}
		return queued(b, servers[0]) == 0
	}
	for deadline := time.Now().Add(5 * time.Minute); !delivered(); {
		if time.Now().After(deadline) {
			b.Fatal("not delivered within 5 minutes")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded above
	}
	all := time.Since(start)
	b.StopTimer()
	time.Sleep(1500 * time.Millisecond) // the statistics collector's flush interval
	after := commits()
	b.ReportMetric(float64(msgs)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(msgs)/all.Seconds(), "delivered/s")
	if pg != nil {
		b.ReportMetric(float64(after-before)/float64(msgs), "commits/msg")
	}
	for _, s := range servers {
		s.Stop(b)
	}
}
