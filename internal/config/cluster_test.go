package config

import (
	"strings"
	"testing"
	"time"
)

func TestCluster(t *testing.T) {
	tests := []struct {
		name string
		toml string
		keys []string // problem keys
		want Cluster
	}{
		{name: "defaults: off", want: Cluster{Lease: Duration(time.Minute), PollInterval: Duration(5 * time.Second)}},
		{name: "on", toml: "[cluster]\ndatabase = \"postgres://smtpkit:pw@127.0.0.1:5432/mail?sslmode=disable\"\nnode = \"mx1\"\nlease = \"30s\"\npoll_interval = \"1s\"\n",
			want: Cluster{Database: "postgres://smtpkit:pw@127.0.0.1:5432/mail?sslmode=disable", Node: "mx1",
				Lease: Duration(30 * time.Second), PollInterval: Duration(time.Second)}},
		{name: "postgresql scheme", toml: "[cluster]\ndatabase = \"postgresql://db.example/mail\"\n",
			want: Cluster{Database: "postgresql://db.example/mail", Lease: Duration(time.Minute), PollInterval: Duration(5 * time.Second)}},
		{name: "not postgres", toml: "[cluster]\ndatabase = \"mysql://db/mail\"\n", keys: []string{"cluster.database"}},
		{name: "no host", toml: "[cluster]\ndatabase = \"postgres:///mail\"\n", keys: []string{"cluster.database"}},
		{name: "bad url", toml: "[cluster]\ndatabase = \"postgres://u:secret@[::1/x\"\n", keys: []string{"cluster.database"}},
		{name: "node with slash", toml: "[cluster]\nnode = \"a/prepare\"\n", keys: []string{"cluster.node"}},
		{name: "short lease and poll", toml: "[cluster]\nlease = \"100ms\"\npoll_interval = \"1ms\"\n",
			keys: []string{"cluster.lease", "cluster.poll_interval"}},
		{name: "unknown key", toml: "[cluster]\nnodes = 3\n", keys: []string{"cluster.nodes"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the problem shows the password: %v", err)
			}
			if err == nil && c.Cluster != tt.want {
				t.Errorf("got %+v, want %+v", c.Cluster, tt.want)
			}
		})
	}
}
