package inbound

import (
	"bytes"
	"strings"
	"testing"
)

// oursStub stands in for authres.IsOurs with the id mx.example.com: the
// authserv-id is the first token of the value.
func oursStub(value string) bool {
	id, _, _ := strings.Cut(strings.TrimSpace(value), ";")
	return strings.EqualFold(strings.TrimSpace(id), "mx.example.com")
}

func TestARFilter(t *testing.T) {
	long := "Authentication-Results: other.example; spf=pass" + strings.Repeat("\r\n x", maxARField/3) + "\r\n"
	tests := []struct {
		name, in, want string
		removed        int
	}{
		{name: "no A-R", in: "Received: x\r\nSubject: a\r\n\r\nbody\r\n", want: "Received: x\r\nSubject: a\r\n\r\nbody\r\n"},
		{name: "ours removed", in: "Received: x\r\nAuthentication-Results: mx.example.com; spf=pass\r\nSubject: a\r\n\r\nb\r\n",
			want: "Received: x\r\nSubject: a\r\n\r\nb\r\n", removed: 1},
		{name: "ours, folded, other case", in: "authentication-results :\r\n  MX.example.com;\r\n\tdkim=pass\r\nSubject: a\r\n\r\nb\r\n",
			want: "Subject: a\r\n\r\nb\r\n", removed: 1},
		{name: "another id kept", in: "Authentication-Results: other.example; spf=pass\r\n\r\nb\r\n",
			want: "Authentication-Results: other.example; spf=pass\r\n\r\nb\r\n"},
		{name: "ours twice, other kept", in: "Authentication-Results: mx.example.com; a=b\r\nAuthentication-Results: other.example; c=d\r\nAuthentication-Results: mx.example.com; e=f\r\nX: 1\r\n\r\n",
			want: "Authentication-Results: other.example; c=d\r\nX: 1\r\n\r\n", removed: 2},
		{name: "in the body kept", in: "Subject: a\r\n\r\nAuthentication-Results: mx.example.com; spf=pass\r\n",
			want: "Subject: a\r\n\r\nAuthentication-Results: mx.example.com; spf=pass\r\n"},
		{name: "last field, no body", in: "Subject: a\r\nAuthentication-Results: mx.example.com; spf=pass\r\n",
			want: "Subject: a\r\n", removed: 1},
		{name: "similar names kept", in: "Authentication-Results-Old: mx.example.com; x\r\nX-Authentication-Results: mx.example.com; y\r\n\r\n",
			want: "Authentication-Results-Old: mx.example.com; x\r\nX-Authentication-Results: mx.example.com; y\r\n\r\n"},
		{name: "oversized removed", in: long + "X: 1\r\n\r\n", want: "X: 1\r\n\r\n", removed: 1},
		{name: "no colon", in: strings.Repeat("a", 200) + "\r\nAuthentication-Results: mx.example.com; x\r\n\r\n", want: strings.Repeat("a", 200) + "\r\n\r\n", removed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, 7, 64, 1 << 20} { // split anywhere
				var out bytes.Buffer
				f := newARFilter(&out, oursStub)
				for in := []byte(tt.in); len(in) > 0; {
					n := min(chunk, len(in))
					if m, err := f.Write(in[:n]); err != nil || m != n {
						t.Fatalf("Write: %d, %v", m, err)
					}
					in = in[n:]
				}
				if err := f.Flush(); err != nil {
					t.Fatal(err)
				}
				if out.String() != tt.want || f.removed != tt.removed {
					t.Fatalf("chunks of %d: got %q (%d removed), want %q (%d)", chunk, out.String(), f.removed, tt.want, tt.removed)
				}
			}
		})
	}
}
