package interop

// MTA-STS (RFC 8461) end to end, issue #13: the daemon under test with
// `[outbound] mta_sts = true` fetches policies over HTTPS from
// 127.13.7.40–.49:443 (certificates from the test CA, trusted through
// SSL_CERT_FILE) and delivers to receivers on 127.13.7.20–.39:25. The
// policy domains live in an unsigned zone, so DANE never applies.

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// stsDomain is one policy domain of the test: <label>.sts.example, its MX
// mx.<label>.sts.example on 127.13.7.<mx>, its policy host
// mta-sts.<label>.sts.example on 127.13.7.<policy>.
type stsDomain struct {
	label      string
	mx, policy int
}

func (d stsDomain) domain() string { return d.label + ".sts.example" }
func (d stsDomain) mxHost() string { return "mx." + d.domain() }
func (d stsDomain) rcpt() string   { return "bob@" + d.domain() }

// records are the zone lines of d: MX, the MX host's address, the
// _mta-sts TXT record (RFC 8461 §3.1) and the policy host's address.
func (d stsDomain) records(id string) []string {
	return []string{
		d.domain() + ". IN MX 10 " + d.mxHost() + ".",
		d.mxHost() + ". IN A " + benchIP(d.mx),
		"_mta-sts." + d.domain() + `. IN TXT "v=STSv1; id=` + id + `"`,
		"mta-sts." + d.domain() + ". IN A " + benchIP(d.policy),
	}
}

func TestTLS13MTASTS(t *testing.T) {
	ca := newBenchCA(t)
	var (
		good       = stsDomain{"good", 20, 40}        // enforce, CA-issued cert at Postfix: delivered
		selfsigned = stsDomain{"selfsigned", 21, 41}  // enforce, self-signed: deferred
		notInMX    = stsDomain{"notinpolicy", 22, 42} // enforce, MX not matching mx: — deferred
		stripped   = stsDomain{"stripped", 23, 43}    // enforce, no STARTTLS: nothing sent
		expired    = stsDomain{"expired", 24, 44}     // enforce, expired CA-issued cert: deferred
		wrongName  = stsDomain{"wrongname", 25, 45}   // enforce, CA-issued cert for another name: deferred
		testMode   = stsDomain{"testing", 26, 46}     // testing, self-signed: delivered (and counted)
		hostDown   = stsDomain{"hostdown", 27, 47}    // TXT but no policy server, nothing cached: delivered
		wildcard   = stsDomain{"wild", 28, 48}        // enforce, "mx: *.wild.sts.example": delivered
	)
	domains := []stsDomain{good, selfsigned, notInMX, stripped, expired, wrongName, testMode, hostDown, wildcard}
	var records []string
	for _, d := range domains {
		records = append(records, d.records("20261202T0100")...)
	}
	// Two MX hosts under "mx: *.fallback.sts.example": the preferred one
	// has a self-signed certificate, so the next one is tried (RFC 8461
	// §4.2) and delivered to.
	fallback := stsDomain{"fallback", 29, 49}
	records = append(records, fallback.records("20261202T0100")...)
	records = append(records,
		fallback.domain()+". IN MX 20 mx2."+fallback.domain()+".",
		"mx2."+fallback.domain()+". IN A "+benchIP(32))
	startDNSBench(t, benchZone{Name: "sts.example", Kind: zoneUnsigned, Records: records})

	policy := func(d stsDomain, mode string, mx ...string) {
		if len(mx) == 0 {
			mx = []string{d.mxHost()}
		}
		startSTSServer(t, benchIP(d.policy), ca.valid(t, "mta-sts."+d.domain()), stsPolicy(mode, 86400, mx...))
	}
	policy(good, "enforce")
	policy(selfsigned, "enforce")
	policy(notInMX, "enforce", "mx.elsewhere.sts.example", "*.other.sts.example")
	policy(stripped, "enforce")
	policy(expired, "enforce")
	policy(wrongName, "enforce")
	policy(testMode, "testing")
	policy(wildcard, "enforce", "*.wild.sts.example")
	policy(fallback, "enforce", "*.fallback.sts.example")
	// hostDown has no policy server: the fetch fails, nothing is cached.

	goodMX := startBenchPostfix(t, benchIP(good.mx), good.mxHost(), "may", ca.valid(t, good.mxHost()), good.rcpt())
	mx := func(d stsDomain, cert tls.Certificate) mxSpec {
		return mxSpec{benchIP(d.mx), d.mxHost(), "opportunistic", cert, []string{d.rcpt()}}
	}
	mxs := startBenchMXs(t,
		mx(selfsigned, selfSigned(t, selfsigned.mxHost())),
		mx(notInMX, ca.valid(t, notInMX.mxHost())),
		mx(expired, ca.expired(t, expired.mxHost())),
		mx(wrongName, ca.valid(t, "mx.someone-else.example")),
		mx(testMode, selfSigned(t, testMode.mxHost())),
		mx(hostDown, selfSigned(t, hostDown.mxHost())),
		mx(wildcard, ca.valid(t, wildcard.mxHost())),
		mx(fallback, selfSigned(t, fallback.mxHost())),
		mxSpec{benchIP(32), "mx2." + fallback.domain(), "opportunistic", ca.valid(t, "mx2."+fallback.domain()), []string{fallback.rcpt()}},
	)
	selfsignedMX, notInMXMX, expiredMX, wrongNameMX, testingMX := mxs[0], mxs[1], mxs[2], mxs[3], mxs[4]
	hostDownMX, wildcardMX, fallback1, fallback2 := mxs[5], mxs[6], mxs[7], mxs[8]
	strippedMX := startPlainPeer(t, benchIP(stripped.mx))

	a := benchSender(t, ca, "mta_sts = true")
	runCases(t, a, []benchCase{
		{name: "enforce valid cert", rcpt: good.rcpt(), want: delivered, received: atPostfix(goodMX, good.rcpt()), mech: "mta-sts", report: "sts"},
		{name: "enforce self-signed", rcpt: selfsigned.rcpt(), want: deferred, status: "4.7.", received: atSmtpkit(selfsignedMX, selfsigned.rcpt()), report: "sts certificate-not-trusted"},
		{name: "enforce MX not in policy", rcpt: notInMX.rcpt(), want: deferred, status: "4.", received: atSmtpkit(notInMXMX, notInMX.rcpt()), report: "sts validation-failure"},
		{name: "enforce STARTTLS stripped", rcpt: stripped.rcpt(), want: deferred, status: "4.7.", received: strippedMX.received, report: "sts starttls-not-supported"},
		{name: "enforce expired cert", rcpt: expired.rcpt(), want: deferred, status: "4.7.", received: atSmtpkit(expiredMX, expired.rcpt()), report: "sts certificate-expired"},
		{name: "enforce wrong name", rcpt: wrongName.rcpt(), want: deferred, status: "4.7.", received: atSmtpkit(wrongNameMX, wrongName.rcpt()), report: "sts certificate-host-mismatch"},
		{name: "testing self-signed", rcpt: testMode.rcpt(), want: delivered, received: atSmtpkit(testingMX, testMode.rcpt()), mech: "mta-sts", report: "sts certificate-not-trusted"},
		{name: "policy host down, nothing cached", rcpt: hostDown.rcpt(), want: delivered, received: atSmtpkit(hostDownMX, hostDown.rcpt()), mech: "default", report: "sts sts-policy-fetch-error"},
		{name: "enforce wildcard mx", rcpt: wildcard.rcpt(), want: delivered, received: atSmtpkit(wildcardMX, wildcard.rcpt()), mech: "mta-sts", report: "sts"},
		{name: "enforce, first MX self-signed, second valid", rcpt: fallback.rcpt(), want: delivered, received: atSmtpkit(fallback2, fallback.rcpt())},
	})
	if n := fallback1.CountFiles(t, fallback.rcpt(), "new"); n != 0 {
		t.Errorf("the self-signed MX under an enforce policy got %d messages", n)
	}

	// The probe's verdicts agree with what delivery did.
	checkProbe(t, a,
		probeSTSMatch.on(good.domain()), probeSTSMatch.on(wildcard.domain()),
		probeSTSFails.on(selfsigned.domain()), probeSTSFails.on(expired.domain()), probeSTSFails.on(wrongName.domain()),
		probeSTSRefused.on(notInMX.domain()), probeSTSFails.on(stripped.domain()),
		probeSTSTesting.on(testMode.domain()), probeSTSNoPolicy.on(hostDown.domain()))
	if cmds := strippedMX.commands(); slices.Contains(cmds, "MAIL") {
		t.Errorf("the server without STARTTLS was sent %q under an enforce policy", cmds)
	}
}

// TestTLS13MTASTSCached: a policy fetched once stays in force for its
// max_age (RFC 8461 §5.1, §10.2: an attacker who can make the policy host
// unreachable or delete the TXT record must not switch enforcement off).
// Two domains get a message delivered to an MX with a valid certificate,
// which caches their enforce policies. Then one's policy host goes down and
// the other's _mta-sts TXT record is deleted (nsd and unbound restarted);
// the daemon restarts, so only the on-disk cache is left; an attacker's
// server with a self-signed certificate takes each MX's address. Neither
// gets the next message, and neither policy is fetched again.
func TestTLS13MTASTSCached(t *testing.T) {
	ca := newBenchCA(t)
	down, gone := stsDomain{"cached", 30, 49}, stsDomain{"txtgone", 31, 48}
	zone := func(withGoneTXT bool) benchZone {
		records := append(down.records("20261202T0100"), gone.records("20261202T0100")...)
		if !withGoneTXT {
			records = slices.DeleteFunc(records, func(r string) bool { return strings.HasPrefix(r, "_mta-sts."+gone.domain()+".") })
		}
		return benchZone{Name: "sts.example", Kind: zoneUnsigned, Records: records}
	}
	bench := startDNSBench(t, zone(true))
	var servers []*stsServer
	for _, d := range []stsDomain{down, gone} {
		servers = append(servers, startSTSServer(t, benchIP(d.policy), ca.valid(t, "mta-sts."+d.domain()), stsPolicy("enforce", 86400, d.mxHost())))
	}
	a := benchSender(t, ca, "mta_sts = true")

	good := startBenchMXs(t,
		mxSpec{benchIP(down.mx), down.mxHost(), "opportunistic", ca.valid(t, down.mxHost()), []string{down.rcpt()}},
		mxSpec{benchIP(gone.mx), gone.mxHost(), "opportunistic", ca.valid(t, gone.mxHost()), []string{gone.rcpt()}},
	)
	runCases(t, a, []benchCase{
		{name: "policy fetched, delivered", rcpt: down.rcpt(), want: delivered, received: atSmtpkit(good[0], down.rcpt()), mech: "mta-sts"},
		{name: "policy fetched, delivered too", rcpt: gone.rcpt(), want: delivered, received: atSmtpkit(good[1], gone.rcpt()), mech: "mta-sts"},
	})
	for i, srv := range servers {
		if n := srv.Requests(); n != 1 {
			t.Fatalf("policy %d fetched %d times, want 1", i, n)
		}
	}

	servers[0].Stop()
	bench.Republish(t, zone(false))
	if r, err := benchQuery(bench.Resolver, "_mta-sts."+gone.domain(), mdns.TypeTXT); err != nil || r.Rcode != mdns.RcodeNameError {
		t.Fatalf("the TXT record is still there after Republish: %v %v", r, err)
	}
	a.Restart(t)
	for _, s := range good {
		s.Stop(t)
	}
	attackers := startBenchMXs(t,
		mxSpec{benchIP(down.mx), down.mxHost(), "opportunistic", selfSigned(t, down.mxHost()), []string{down.rcpt()}},
		mxSpec{benchIP(gone.mx), gone.mxHost(), "opportunistic", selfSigned(t, gone.mxHost()), []string{gone.rcpt()}},
	)
	runCases(t, a, []benchCase{
		{name: "policy host down, cached enforce", rcpt: down.rcpt(), want: deferred, status: "4.7.", received: atSmtpkit(attackers[0], down.rcpt())},
		{name: "TXT record deleted, cached enforce", rcpt: gone.rcpt(), want: deferred, status: "4.7.", received: atSmtpkit(attackers[1], gone.rcpt())},
	})
	if n := servers[1].Requests(); n != 1 {
		t.Errorf("the policy whose TXT record is gone was fetched %d times, want 1", n)
	}
}
