// Package config is smtpkit's configuration: the TOML schema, the defaults
// (Default for production, DevDefault for running without root), a strict
// decoder that rejects unknown keys with their line numbers, and validation
// that reports every problem at once.
//
// A Config is a plain value. Load, Parse and Resolve return it by value and
// nothing in smtpkit mutates it after validation: treat it as immutable and
// pass copies (or the parts a package needs) down to the packages that use it.
// Only internal/cli imports this package.
package config

import (
	"os"
	"time"
)

// Config is the whole smtpkit configuration, one TOML file.
type Config struct {
	Hostname  string     `toml:"hostname"` // banner and EHLO name (RFC 5321 §4.1.1.1)
	DataDir   string     `toml:"data_dir"` // mail/, queue/, accounts, tls/
	Log       Log        `toml:"log"`
	Maildir   Maildir    `toml:"maildir"`
	Domains   []Domain   `toml:"domain"`
	Listeners []Listener `toml:"listener"`
	TLS       TLS        `toml:"tls"`
	Limits    Limits     `toml:"limits"`
	Outbound  Outbound   `toml:"outbound"`
	Routes    []Route    `toml:"route,omitempty"`
	Metrics   Metrics    `toml:"metrics,omitempty"` // old name of [http] address (http.go)
	HTTP      HTTP       `toml:"http"`              // the loopback HTTP listener (http.go)
	TLSRPT    TLSRPT     `toml:"tlsrpt"`
	SRS       SRS        `toml:"srs"`
	DKIM      []DKIM     `toml:"dkim,omitempty"` // outbound signing keys (dkim.go)
	Verify    Verify     `toml:"verify"`         // inbound verification (verify.go)
	Greylist  Greylist   `toml:"greylist"`       // greylisting on mx (greylist.go)
	// DMARCReports is [dmarc_reports] (dmarcreports.go).
	DMARCReports DMARCReports `toml:"dmarc_reports"`
	// TrustedNetworks are the client networks trusted on every listener
	// that does not set its own (trusted.go): CIDRs or bare addresses,
	// default loopback only.
	TrustedNetworks []string `toml:"trusted_networks"`
	// AccountLimits is [account_limits] (accountlimits.go).
	AccountLimits AccountLimits `toml:"account_limits"`
	// DNSBL lists the block and allow lists asked about mx clients; empty
	// is off (dnsbl.go). DNSBLThreshold is the score that blocks a client
	// (default 1), DNSBLTimeout bounds one client's lookups (default 10s).
	DNSBL          []DNSBL  `toml:"dnsbl,omitempty"`
	DNSBLThreshold int      `toml:"dnsbl_threshold"`
	DNSBLTimeout   Duration `toml:"dnsbl_timeout"`
	// Pregreet is the greeting delay of mx listeners that have no
	// pregreet of their own: a client that talks before the 220 is
	// refused (RFC 5321 §4.3.1). 0 (the default) is off.
	Pregreet Duration `toml:"pregreet"`
	// Milters are the [[milter]] content filters (milter.go).
	Milters []Milter `toml:"milter,omitempty"`
	// Cluster is [cluster]: the queue shared in PostgreSQL (cluster.go).
	Cluster Cluster `toml:"cluster"`
	// ACME is [acme]: certificates from an ACME CA (acme.go).
	ACME ACME `toml:"acme"`
	// Auth is [auth]: the AUTH password checks (auth.go).
	Auth Auth `toml:"auth"`
}

// Log chooses the log/slog handler.
type Log struct {
	Format string `toml:"format"` // text | json
	Level  string `toml:"level"`  // debug | info | warn | error
}

// Maildir chooses how deliveries into the Maildirs are made durable.
type Maildir struct {
	// Sync is "journal" (the default: messages up to 64 KiB are logged in
	// <data_dir>/journal with one fdatasync shared by every delivery in
	// flight, the Maildirs are flushed at checkpoints and replayed from
	// the journal after a crash; larger ones as "filesystem"),
	// "filesystem" (one syncfs(2) per file system shared by every delivery
	// in flight) or "file" (fsync of each message file, a shared fsync of
	// each new/ directory). Every way a message is on disk before its 250.
	Sync string `toml:"sync"`
	// Checkpoint is how often the journal's deliveries are flushed in the
	// Maildirs and dropped from the journal, default 1s.
	Checkpoint Duration `toml:"checkpoint"`
}

// Domain is one local domain: mail for it is delivered to the Maildirs
// under <data_dir>/mail/<domain>/, or handed to an LMTP server.
type Domain struct {
	Name string `toml:"name"`
	// LMTP hands the domain's mailboxes to an LMTP server (RFC 2033, such
	// as Dovecot's) through the queue instead of storing them in Maildirs:
	// "unix:/run/dovecot/lmtp" or "host:port". "" = Maildir.
	LMTP string `toml:"lmtp,omitempty"`
	// LMTPAccounts sets the final delivery of single mailboxes of the
	// domain, by local part: an LMTP server as in LMTP, or "maildir" for
	// the Maildir when the domain's LMTP is set.
	LMTPAccounts map[string]string `toml:"lmtp_accounts,omitempty"`
}

// LMTPMaildir, as a value of Domain.LMTPAccounts, keeps a mailbox in its
// Maildir although the domain's mail goes to LMTP.
const LMTPMaildir = "maildir"

// Listener roles.
const (
	RoleMX          = "mx"          // port 25: mail from other servers, RFC 5321
	RoleSubmission  = "submission"  // port 587 (and 2525): clients, STARTTLS, RFC 6409
	RoleSubmissions = "submissions" // port 465: clients, implicit TLS, RFC 8314 §3.3
	// RoleSink accepts every message and discards it after the whole
	// protocol path (parsing, DATA reader, limits): for benchmarks and
	// tests only, like Postfix's smtp-sink. Never on a real port.
	RoleSink = "sink"
)

// Listener TLS modes.
const (
	TLSNone          = "none"          // no TLS offered
	TLSOpportunistic = "opportunistic" // STARTTLS offered, plaintext allowed
	TLSRequired      = "required"      // STARTTLS offered, MAIL/AUTH refused before it
	TLSImplicit      = "implicit"      // TLS from the first byte (RFC 8314)
)

// Outbound TLS modes (outbound.tls and route.tls).
const (
	OutTLSNone          = "none"          // never STARTTLS
	OutTLSOpportunistic = "opportunistic" // STARTTLS when offered, certificate not verified
	OutTLSRequired      = "required"      // STARTTLS mandatory, certificate not verified
	OutTLSVerify        = "verify"        // STARTTLS mandatory, certificate verified (WebPKI)
)

// Listener is one listening socket; its role decides the protocol rules.
type Listener struct {
	Address string `toml:"address"` // host:port
	Role    string `toml:"role"`    // mx | submission | submissions
	// TLS is opportunistic | required | implicit | none. When a [[listener]]
	// in a file leaves it out, the role decides: mx → opportunistic,
	// submission → required, submissions → implicit.
	TLS string `toml:"tls"`
	// Auth enables SMTP AUTH (RFC 4954). Nil means the role default:
	// on for submission and submissions, off for mx. Use AuthEnabled.
	Auth *bool `toml:"auth,omitempty"`
	// SessionTickets enables TLS session tickets; off by default because of
	// golang/go#70232.
	SessionTickets bool `toml:"session_tickets"`
	// TrustedNetworks overrides the top-level trusted_networks for this
	// listener: nil (absent) = the global list, empty = nobody
	// (trusted.go; use Config.TrustedOn).
	TrustedNetworks *[]string `toml:"trusted_networks,omitempty"`
	// ProxyProtocol: connections from ProxyFrom begin with a PROXY
	// protocol header (v1 or v2) naming the client (frontend.go).
	ProxyProtocol bool     `toml:"proxy_protocol"`
	ProxyFrom     []string `toml:"proxy_from,omitempty"`
	// XClientFrom are the peers allowed XCLIENT and XFORWARD
	// (frontend.go); empty = nobody.
	XClientFrom []string `toml:"xclient_from,omitempty"`
	// Pregreet, when set, is this listener's greeting delay (mx only),
	// overriding the top-level pregreet; use Config.ListenerPregreet.
	Pregreet *Duration `toml:"pregreet,omitempty"`
	// Milters names the [[milter]] entries asked about this listener's
	// sessions, in order. Nil (the key left out) means every [[milter]]
	// on mx and submission listeners; an empty list means none
	// (Config.ListenerMilters).
	Milters *[]string `toml:"milters,omitempty"`
}

// AuthEnabled reports whether the listener offers AUTH: never with tls =
// "none" (the server offers AUTH only inside TLS, RFC 4954 §4, with no
// loopback exception), else the explicit auth setting, else true for
// submission and submissions and false for mx.
func (l Listener) AuthEnabled() bool {
	if l.TLS == TLSNone {
		return false
	}
	if l.Auth != nil {
		return *l.Auth
	}
	return l.Role == RoleSubmission || l.Role == RoleSubmissions
}

// TLS holds the server certificates.
type TLS struct {
	// Certificates are PEM files; the first is the default for clients that
	// send no SNI or an unknown name.
	Certificates []Certificate `toml:"certificate,omitempty"`
	// SelfSigned generates a self-signed certificate in <data_dir>/tls when
	// no certificate is configured. DevDefault sets it.
	SelfSigned bool `toml:"self_signed"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Limits bounds everything a peer controls.
type Limits struct {
	MessageSize      ByteSize `toml:"message_size"`         // SIZE (RFC 1870), default 50MiB
	Recipients       int      `toml:"recipients"`           // per transaction, default 100 (RFC 5321 §4.5.3.1.8: at least 100)
	Errors           int      `toml:"errors"`               // protocol errors per session before 421, default 10
	Connections      int      `toml:"connections"`          // total, default 1000
	ConnectionsPerIP int      `toml:"connections_per_ip"`   // default 20
	CommandTimeout   Duration `toml:"command_timeout"`      // default 5m (RFC 5321 §4.5.3.2.7)
	DataTimeout      Duration `toml:"data_timeout"`         // default 10m (RFC 5321 §4.5.3.2.6)
	SessionTimeout   Duration `toml:"session_timeout"`      // whole-session deadline, default 30m
	ShutdownGrace    Duration `toml:"shutdown_grace"`       // time sessions get to finish on shutdown, default 30s
	ConnectionRate   int      `toml:"connection_rate"`      // new connections per minute from one client IP, default 120
	SessionRcpts     int      `toml:"session_recipients"`   // recipients per session over all transactions, default 1000
	SessionTxns      int      `toml:"session_transactions"` // MAIL transactions per session, then 421; LIMITS MAILMAX (RFC 9422), default 1000 (as Exim's smtp_accept_max_per_connection)
	HeaderSize       ByteSize `toml:"header_size"`          // header block of one message, default 1MiB
	// MinDataRate is the slowest DATA/BDAT transfer accepted, in octets
	// per second after data_timeout's allowance, default 500 (as
	// Postfix's smtpd_min_data_rate).
	MinDataRate int `toml:"min_data_rate"`
	// Stress mode: from stress_threshold percent of connections in use
	// (default 80), waits for commands and data get the stress timeouts
	// (default 10s each, as Postfix's stress mode).
	StressThreshold      int      `toml:"stress_threshold"`
	StressCommandTimeout Duration `toml:"stress_command_timeout"`
	StressDataTimeout    Duration `toml:"stress_data_timeout"`
}

// Outbound configures delivery to other servers.
type Outbound struct {
	TLS      string   `toml:"tls"`       // none | opportunistic | required | verify; default opportunistic
	MaxAge   Duration `toml:"max_age"`   // give up and bounce after this, default 5d
	Resolver string   `toml:"resolver"`  // "" = system resolver (/etc/resolv.conf); else host:port
	RetryMin Duration `toml:"retry_min"` // first retry delay, default 5m
	RetryMax Duration `toml:"retry_max"` // longest retry delay, default 4h
	// DelayWarning sends a "delayed" DSN (RFC 3464) after this long; 0 = off.
	DelayWarning Duration `toml:"delay_warning"`
	// Concurrency is the most parallel deliveries to one destination
	// domain, default 20; each starts at 5 and adapts (internal/queue).
	Concurrency int `toml:"concurrency"`
	// MaxDeliveries bounds the deliveries in flight in total, default 100.
	MaxDeliveries int `toml:"max_deliveries"`
	// ActiveLimit is how many queued messages are kept whole in memory,
	// default 20000; the others are on disk with a small index entry.
	ActiveLimit int `toml:"active_limit"`
	// JournalMax is the largest message (with its envelope) the queue
	// commits through its group-committed journal instead of files of
	// its own, default 256KiB, at most 1MiB (internal/queue/journal.go).
	// Each session in DATA holds up to this much in memory.
	JournalMax ByteSize `toml:"journal_max"`
	// JournalMemory bounds the journaled messages' bytes kept in memory
	// until their files are needed (delivered before that, a message
	// never gets files), default 64MiB; past it files are written at
	// commit.
	JournalMemory ByteSize `toml:"journal_memory"`
	// Port is the port MX hosts are contacted on, default 25. Only tests
	// and special setups change it.
	Port int `toml:"port"`
	// CAFile is a PEM file of root certificates for the verify policy
	// (a relay with a private CA); "" = the system roots.
	CAFile string `toml:"ca_file"`
	// AllowLoopback lets MX records point at loopback addresses. Off in
	// production (a hostile domain could make us deliver to ourselves);
	// tests with a loopback DNS server turn it on.
	AllowLoopback bool `toml:"allow_loopback"`
	// MTASTS applies recipient domains' MTA-STS policies (RFC 8461):
	// fetched over HTTPS, cached in <data_dir>/mta-sts. Default true.
	MTASTS bool `toml:"mta_sts"`
	// DANE applies the TLSA records of MX hosts whose DNS answers are
	// DNSSEC-validated (RFC 7672). The resolver's AD bit is trusted, so
	// outbound.resolver should be a validating resolver on loopback.
	// Default true.
	DANE bool `toml:"dane"`
}

// Route sends mail for a domain to a fixed host (a smarthost) instead of
// its MX records.
type Route struct {
	Domain           string `toml:"domain"`             // recipient domain, or "*" for every remote domain
	Host             string `toml:"host"`               // host or host:port (default port 25)
	TLS              string `toml:"tls"`                // like outbound.tls; "" = outbound.tls
	AuthUser         string `toml:"auth_user"`          // SMTP AUTH user; "" = no AUTH
	AuthPasswordFile string `toml:"auth_password_file"` // file holding the password (first line)
}

// Metrics is [metrics], the old name of [http] (http.go): its address
// is used when http.address is not set.
type Metrics struct {
	Address string `toml:"address"` // host:port; "" = off
}

// DefaultPath is where Resolve looks for a config file when none is named.
const DefaultPath = "/etc/smtpkit/smtpkit.toml"

// DevDefaultSource is the source Resolve reports when it falls back to DevDefault.
const DevDefaultSource = "built-in development default"

// Default returns the production defaults: hostname from os.Hostname,
// data in /var/lib/smtpkit, and the four standard listeners on all
// addresses. It has no domain and no certificate, so it does not validate
// on its own: a config file supplies those.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		Hostname: host,
		DataDir:  "/var/lib/smtpkit",
		Log:      Log{Format: "text", Level: "info"},
		Maildir:  Maildir{Sync: "journal", Checkpoint: Duration(time.Second)},
		Listeners: []Listener{
			{Address: ":25", Role: RoleMX, TLS: TLSOpportunistic},
			{Address: ":587", Role: RoleSubmission, TLS: TLSRequired},
			{Address: ":465", Role: RoleSubmissions, TLS: TLSImplicit},
			{Address: ":2525", Role: RoleSubmission, TLS: TLSRequired},
		},
		Limits: Limits{
			MessageSize:      50 * MiB,
			Recipients:       100,
			Errors:           10,
			Connections:      1000,
			ConnectionsPerIP: 20,
			CommandTimeout:   Duration(5 * time.Minute),
			DataTimeout:      Duration(10 * time.Minute),
			SessionTimeout:   Duration(30 * time.Minute),
			ShutdownGrace:    Duration(30 * time.Second),
			ConnectionRate:   120,
			SessionRcpts:     1000,
			SessionTxns:      1000,
			HeaderSize:       1 << 20,

			MinDataRate:          500,
			StressThreshold:      80,
			StressCommandTimeout: Duration(10 * time.Second),
			StressDataTimeout:    Duration(10 * time.Second),
		},
		Outbound: Outbound{
			TLS:           OutTLSOpportunistic,
			MaxAge:        Duration(5 * 24 * time.Hour),
			RetryMin:      Duration(5 * time.Minute),
			RetryMax:      Duration(4 * time.Hour),
			Concurrency:   20,
			MaxDeliveries: 100,
			ActiveLimit:   20000,
			JournalMax:    256 << 10,
			JournalMemory: 64 << 20,
			Port:          25,
			MTASTS:        true,
			DANE:          true,
		},
		TLSRPT: defaultTLSRPT(),
		SRS:    defaultSRS(),
		Verify: defaultVerify(),

		DMARCReports:    defaultDMARCReports(),
		TrustedNetworks: defaultTrustedNetworks(),
		AccountLimits:   defaultAccountLimits(),

		DNSBLThreshold: DefaultDNSBLThreshold,
		DNSBLTimeout:   Duration(DefaultDNSBLTimeout),

		Greylist: defaultGreylist(),
		Cluster:  defaultCluster(),
		HTTP:     defaultHTTP(),
		ACME:     defaultACME(),
		Auth:     defaultAuth(),
	}
}

// DevDefault returns a configuration that runs without root and without a
// config file: hostname and domain "localhost", data in ./smtpkit-data,
// a generated self-signed certificate, and the four listeners on 127.0.0.1
// at 10025 (mx), 10587 (submission), 10465 (submissions) and 12525
// (submission).
func DevDefault() Config {
	c := Default()
	c.Hostname = "localhost"
	c.DataDir = "smtpkit-data"
	c.Domains = []Domain{{Name: "localhost"}}
	c.TLS.SelfSigned = true
	c.Listeners = []Listener{
		{Address: "127.0.0.1:10025", Role: RoleMX, TLS: TLSOpportunistic},
		{Address: "127.0.0.1:10587", Role: RoleSubmission, TLS: TLSRequired},
		{Address: "127.0.0.1:10465", Role: RoleSubmissions, TLS: TLSImplicit},
		{Address: "127.0.0.1:12525", Role: RoleSubmission, TLS: TLSRequired},
	}
	return c
}
