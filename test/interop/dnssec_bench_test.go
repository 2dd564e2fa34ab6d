package interop

// The DNSSEC bench of the enforced-TLS tests (issue #13): real,
// independent DNS software on loopback. nsd serves the test zones on
// benchNSDAddr — signed with ldns-keygen/ldns-signzone, one deliberately
// bogus (every signature corrupted after signing), one unsigned — and
// unbound on benchResolverAddr validates them with the signed zones' DS
// records as trust anchors: AD on answers from a signed zone, SERVFAIL for
// the bogus zone, no AD for the unsigned one (domain-insecure). unbound
// reads neither the system config nor the root hints: every name outside
// the test zones goes to nsd too (a stub for "."), which refuses it, so no
// query ever leaves the machine.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// The bench's fixed addresses in helper G's loopback range 127.13.7.0/24.
// They are fixed (not free ports) because DNS delegation and the daemon's
// port 25 need well-known ports: the tests that use them do not run in
// parallel with each other.
const (
	benchNSDIP        = "127.13.7.53"
	benchResolverIP   = "127.13.7.54"
	benchNSDAddr      = benchNSDIP + ":53"
	benchResolverAddr = benchResolverIP + ":53"
	benchDNSTimeout   = 2 * time.Second // one query of the readiness poll
	benchTTL          = 300             // of every record in the test zones
	// benchLockFile serialises the tests that use the fixed addresses
	// across processes: two runs of this package (a full suite and a -run
	// from another checkout) must not start two nsds on one address.
	benchLockFile = "/tmp/smtpkit-interop-127.13.7.lock"
	benchLockWait = 5 * time.Minute // longer than the whole bench set takes
)

// lockBench takes the bench's cross-process lock (flock(2) on
// benchLockFile) for the rest of the test, waiting up to benchLockWait for
// another process's test to finish. A test calls it once, before it binds
// any 127.13.7.x address.
func lockBench(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(benchLockFile, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(benchLockWait); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("locking %s (another test run uses 127.13.7.0/24): %v", benchLockFile, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a lock another process holds, bounded above
	}
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}

// zoneKind is how a test zone is published.
type zoneKind int

const (
	zoneSigned   zoneKind = iota // signed; its DS is an unbound trust anchor
	zoneBogus                    // signed, then every RRSIG corrupted; anchored too
	zoneUnsigned                 // no signatures; domain-insecure in unbound
)

func (k zoneKind) String() string {
	return [...]string{"signed", "bogus", "unsigned"}[k]
}

// benchZone is one zone of the bench. Records are zone-file lines with
// absolute owner names ("mx.dane.example. IN A 127.13.7.10"); the SOA, the
// NS record and the name server's address are added.
type benchZone struct {
	Name    string // without the trailing dot, e.g. "dane.example"
	Kind    zoneKind
	Records []string
}

// dnsBench is a running nsd and unbound serving a set of zones.
type dnsBench struct {
	Resolver string // unbound's host:port, for outbound.resolver
	dir      string
	nsdLog   string      // nsd's logfile
	unbound  *syncBuffer // unbound's stderr (logfile "")
	// The programs, and each signed zone's key (K<zone>.+013+<tag>, kept
	// across Republish so that the trust anchors stay valid).
	nsdBin, unboundBin, keygen, signzone string
	keys                                 map[string]string
	procs                                []*benchProc // the running nsd and unbound
}

// benchProc is a daemon the bench started.
type benchProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has been waited for
}

// needDNSBench returns the paths of the programs the bench runs, skipping
// the test (failing it under CI=true) when one is missing, or when not
// root: nsd and unbound bind port 53.
func needDNSBench(t *testing.T) (nsd, unbound, keygen, signzone string) {
	t.Helper()
	nsd, unbound = Need(t, "nsd"), Need(t, "unbound")
	keygen, signzone = Need(t, "ldns-keygen"), Need(t, "ldns-signzone")
	if os.Geteuid() != 0 {
		missing(t, "root (nsd and unbound bind port 53)", fmt.Errorf("euid %d", os.Geteuid()))
	}
	return nsd, unbound, keygen, signzone
}

// startDNSBench writes, signs and serves zones and starts the validating
// resolver in front of them, holding the bench lock (lockBench) for the
// rest of the test: call it before binding any other 127.13.7.x address.
// Both daemons are stopped when the test ends; their logs are printed when
// it fails.
func startDNSBench(t *testing.T, zones ...benchZone) *dnsBench {
	t.Helper()
	nsd, unbound, keygen, signzone := needDNSBench(t)
	lockBench(t)
	b := &dnsBench{
		Resolver: benchResolverAddr, dir: t.TempDir(), unbound: &syncBuffer{},
		nsdBin: nsd, unboundBin: unbound, keygen: keygen, signzone: signzone, keys: map[string]string{},
	}
	b.nsdLog = filepath.Join(b.dir, "nsd.log")
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			log, _ := os.ReadFile(b.nsdLog)
			t.Logf("nsd log:\n%s\nunbound log:\n%s", log, b.unbound.String())
		}
	})
	b.publish(t, zones)
	return b
}

// Republish replaces what the bench serves by zones — the same zone
// names, other records (say, a deleted _mta-sts TXT record). nsd and
// unbound are restarted, so no cached answer survives; signed zones are
// signed again with their keys, so the trust anchors still hold.
func (b *dnsBench) Republish(t *testing.T, zones ...benchZone) {
	t.Helper()
	b.stop()
	fmt.Fprintf(b.unbound, "--- bench: republished\n")
	b.publish(t, zones)
}

// publish writes and signs zones, the configs, and starts both daemons.
func (b *dnsBench) publish(t *testing.T, zones []benchZone) {
	t.Helper()
	var anchors []string
	for _, z := range zones {
		file := b.writeZone(t, z)
		if z.Kind != zoneUnsigned {
			anchors = append(anchors, b.signZone(t, z, file))
		}
	}
	b.writeConf(t, "nsd.conf", zones, anchors)
	b.writeConf(t, "unbound.conf", zones, anchors)
	b.run(t, b.nsdBin, &syncBuffer{}, "-d", "-c", filepath.Join(b.dir, "nsd.conf"))
	for _, z := range zones {
		waitDNS(t, benchNSDAddr, z.Name+".", mdns.TypeSOA, func() string { log, _ := os.ReadFile(b.nsdLog); return string(log) })
	}
	b.run(t, b.unboundBin, b.unbound, "-d", "-c", filepath.Join(b.dir, "unbound.conf"))
	for _, z := range zones {
		if z.Kind != zoneBogus {
			waitDNS(t, benchResolverAddr, z.Name+".", mdns.TypeSOA, b.unbound.String)
		}
	}
}

// stop stops the running daemons, unbound first.
func (b *dnsBench) stop() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		stopProcess(b.procs[i].cmd, b.procs[i].done)
	}
	b.procs = nil
}

// writeZone writes z's zone file and returns its path.
func (b *dnsBench) writeZone(t *testing.T, z benchZone) string {
	t.Helper()
	var zf strings.Builder
	fmt.Fprintf(&zf, "$TTL %d\n", benchTTL)
	fmt.Fprintf(&zf, "%s. IN SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 %d\n", z.Name, benchTTL)
	fmt.Fprintf(&zf, "%s. IN NS ns.%[1]s.\n", z.Name)
	fmt.Fprintf(&zf, "ns.%s. IN A %s\n", z.Name, benchNSDIP)
	for _, r := range z.Records {
		zf.WriteString(r + "\n")
	}
	file := filepath.Join(b.dir, z.Name+".zone")
	if err := os.WriteFile(file, []byte(zf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// signZone makes a key for z unless it has one (ECDSA P-256, RFC 6605,
// flagged as a key signing key), signs file with it into file+".signed" — valid from an hour
// ago, so that no clock question arises — corrupts the signatures of a
// bogus zone, and returns the path of the key's DS record, unbound's trust
// anchor for the zone.
func (b *dnsBench) signZone(t *testing.T, z benchZone, file string) string {
	t.Helper()
	key := b.keys[z.Name]
	if key == "" {
		keyDir := filepath.Join(b.dir, "keys-"+z.Name)
		if err := os.Mkdir(keyDir, 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(b.keygen, "-a", "ECDSAP256SHA256", "-k", z.Name)
		cmd.Dir = keyDir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ldns-keygen %s: %v", z.Name, err)
		}
		key = filepath.Join(keyDir, strings.TrimSpace(string(out))) // K<zone>.+013+<tag>
		b.keys[z.Name] = key
	}
	inception := time.Now().UTC().Add(-time.Hour).Format("20060102150405")
	mustRun(t, nil, b.signzone, "-i", inception, "-f", file+".signed", file, key)
	if z.Kind == zoneBogus {
		corruptSignatures(t, file+".signed")
	}
	return key + ".ds"
}

// corruptSignatures flips one base64 character in the signature of every
// RRSIG in the zone file: the records and keys stay as published, but no
// signature verifies, so a validator must call every answer bogus
// (RFC 4035 §5.5) and a stub sees SERVFAIL.
func corruptSignatures(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	n := 0
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != "RRSIG" {
			continue
		}
		sig := []byte(f[len(f)-1])
		c := &sig[len(sig)/2] // a character in the middle: never padding
		if *c == 'A' {
			*c = 'B'
		} else {
			*c = 'A'
		}
		f[len(f)-1] = string(sig)
		lines[i] = strings.Join(f, "\t")
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no RRSIG to corrupt", file)
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// benchConf fills the templates in testdata/dnssec.
type benchConf struct {
	Dir, NSDIP, ResolverIP string
	Zones                  []benchZone
	Anchors                []string
}

// writeConf renders testdata/dnssec/name into the bench directory.
func (b *dnsBench) writeConf(t *testing.T, name string, zones []benchZone, anchors []string) {
	t.Helper()
	c := benchConf{Dir: b.dir, NSDIP: benchNSDIP, ResolverIP: benchResolverIP, Zones: zones, Anchors: anchors}
	renderBenchTemplate(t, name, filepath.Join(b.dir, name), c)
}

// run starts a daemon in the foreground; stop (or the end of the test)
// stops it with SIGTERM, SIGKILL after stopTimeout.
func (b *dnsBench) run(t *testing.T, bin string, logs *syncBuffer, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &benchProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	b.procs = append(b.procs, p)
}

// stopProcess sends SIGTERM to a process the test started and waits for
// it, killing it after stopTimeout.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
	}
}

// waitDNS polls server with name/qtype until it answers NOERROR, failing
// the test after readyTimeout with logs().
func waitDNS(t *testing.T, server, name string, qtype uint16, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		r, err := benchQuery(server, name, qtype)
		if err == nil && r.Rcode == mdns.RcodeSuccess {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer for %s %s after %v (%v, %v)\n%s",
				server, name, mdns.TypeToString[qtype], readyTimeout, r, err, logs())
		}
		time.Sleep(pollStep) // polling a starting daemon, bounded above
	}
}

// benchQuery asks server for name/qtype over UDP with the DO bit (RFC
// 3225) and AD set (RFC 6840 §5.7), the way a validating stub asks.
func benchQuery(server, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	m.AuthenticatedData = true
	m.SetEdns0(1232, true)
	c := &mdns.Client{Timeout: benchDNSTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), benchDNSTimeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, server)
	return r, err
}
