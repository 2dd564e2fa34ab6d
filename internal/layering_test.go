// Package internal_test holds the dependency rules between smtpkit's
// packages (docs/architecture.md): dependencies point down, the protocol
// vocabulary imports nothing of ours, the server never sees the queue or
// Maildir, and only cli sees the config.
package internal_test

// allowed lists, for each package under internal/, the smtpkit packages
// its non-test files import (TestLayering in map_test.go checks it). A
// package missing from the table fails the test, so a new package must
// state its place; an import not in its row fails, and so does an edge in
// the table that no file uses, so the table is the map as it is.
var allowed = map[string][]string{
	"smtp":        {},
	"atomicfile":  {"vfs"},
	"statefile":   {}, // the schedule and start-up rules of the report stores
	"vfs":         {},
	"vfs/crashfs": {"vfs"},
	"testcert":    {}, // test helper: throwaway certificates
	"pgtest":      {}, // test helper: throwaway PostgreSQL servers
	"sasl":        {},
	"proxyproto":  {}, // the PROXY protocol header, v1 and v2
	"config":      {},
	"certs":       {"atomicfile"},
	"acmecert":    {"atomicfile"}, // certificates from an ACME CA (RFC 8555)
	"wal":         {"vfs"},
	"maildir":     {"vfs", "wal"},
	"local":       {"smtp", "maildir", "userdb"},
	"compose":     {},
	"mimeconv":    {}, // 8-bit and binary MIME to 7 bit (RFC 6152, RFC 3030 downgrade)
	"userdb":      {"atomicfile", "sasl"},
	"pguserdb":    {"userdb"}, // the account store in PostgreSQL (cluster mode)
	"tlspolicy":   {"smtp", "dns", "dane", "tlsrpt"},
	"control":     {},
	"dns":         {},
	"dns/dnstest": {},
	"tlsrpt":      {"atomicfile", "dns", "statefile"},
	"dmarcrpt":    {"atomicfile", "authres", "compose", "dns", "statefile"},
	"mtasts":      {"dns", "atomicfile", "tlsrpt"},
	"dane":        {"dns", "tlsrpt"},
	"dsn":         {"smtp"},
	"srs":         {"smtp"},
	"dkim":        {},
	"authres":     {"dns", "smtp"},
	"dnsbl":       {"dns"},
	"milter":      {"smtp"},
	"route":       {"dns", "smtp", "tlspolicy", "mtasts"},
	"server":      {"smtp", "sasl", "proxyproto"},
	"client":      {"smtp", "sasl"},
	"queue":       {"smtp", "dsn", "vfs", "wal"},
	"greylist":    {"atomicfile", "statefile"},
	"sendlimit":   {"atomicfile", "statefile"}, // per-account sending limits
	"inbound":     {"smtp", "server", "local", "queue", "srs", "authres", "dnsbl", "greylist", "milter", "sendlimit"},
	"delivery":    {"smtp", "sasl", "client", "route", "tlspolicy", "tlsrpt", "queue", "local", "mimeconv", "dkim"},
	"probe":       {"smtp", "client", "dane", "dns", "route", "tlspolicy", "mtasts", "tlsrpt"},
	"metrics":     {"queue", "smtp", "tlsrpt"},
	"loadgen":     {"smtp", "client", "sasl", "tlspolicy"},
	"submit":      {"smtp", "client", "compose", "sasl"},
	"web":         {"certs", "metrics", "queue", "tlsrpt", "userdb"}, // the status page on the HTTP listener
	"cli":         nil,                                               // wiring: may import everything

	// The postgres back-end of the queue, and the conformance suite
	// (a test helper) every back-end runs.
	"pgqueue":         {"queue", "dsn", "smtp"},
	"queue/queuetest": {"queue", "smtp"},
}
