package config

import (
	"net/url"
	"strings"
	"time"
)

// Cluster is [cluster]: the outbound queue shared by several nodes in one
// PostgreSQL database (internal/pgqueue, docs/queue.md). Without a
// database the queue is the files in <data_dir>/queue (the default).
type Cluster struct {
	// Database is the PostgreSQL connection string,
	// "postgres://user:password@host:port/dbname?sslmode=…"; "" is off.
	Database string `toml:"database"`
	// Node names this node: the owner of the delivery leases it takes.
	// Every node sharing the database needs its own name. Default: the
	// host name of the machine.
	Node string `toml:"node"`
	// Lease is how long a node owns the recipients it is delivering; a
	// node that dies leaves them to the others after this. Renewed while
	// an attempt runs. Default "60s".
	Lease Duration `toml:"lease"`
	// PollInterval is how often a node looks for due work besides the
	// notifications (LISTEN/NOTIFY) of the others. Default "5s".
	PollInterval Duration `toml:"poll_interval"`
}

// defaultCluster is the [cluster] of Default: off.
func defaultCluster() Cluster {
	return Cluster{Lease: Duration(60 * time.Second), PollInterval: Duration(5 * time.Second)}
}

func (v *validator) cluster(c Cluster) {
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		switch {
		case err != nil:
			v.add("cluster.database", "not a URL: %v", redactURLError(err))
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			v.add("cluster.database", "want a postgres:// URL, got scheme %q", u.Scheme)
		case u.Host == "":
			v.add("cluster.database", "no host in the URL")
		}
	}
	if strings.ContainsAny(c.Node, "/ \t") {
		v.add("cluster.node", "%q: no slash or blank", c.Node)
	}
	if c.Lease.D() < time.Second {
		v.add("cluster.lease", "%s: want at least 1s", c.Lease)
	}
	if c.PollInterval.D() < 10*time.Millisecond {
		v.add("cluster.poll_interval", "%s: want at least 10ms", c.PollInterval)
	}
}

// redactURLError is url.Parse's error without the URL itself, which may
// hold a password.
func redactURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "cannot parse"
}
