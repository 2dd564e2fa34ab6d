package inbound

import (
	"bytes"
	"testing"
)

// FuzzARFilter: the filter gives the same bytes however the input is
// split, is idempotent (nothing of ours is left for a second pass), and
// never touches the body.
func FuzzARFilter(f *testing.F) {
	for _, s := range []string{
		"Received: x\r\nAuthentication-Results: mx.example.com; spf=pass\r\nSubject: a\r\n\r\nb\r\n",
		"authentication-results :\r\n  MX.example.com;\r\n\tdkim=pass\r\n\r\n",
		"Authentication-Results: other.example; c=d\r\n\r\nAuthentication-Results: mx.example.com; x\r\n",
		"Authentication-Results: mx.example.com",
		"\r\n\r\n",
		" folded first\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		run := func(in []byte, chunk int) []byte {
			var out bytes.Buffer
			flt := newARFilter(&out, oursStub)
			for p := in; len(p) > 0; {
				n := min(chunk, len(p))
				if _, err := flt.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := flt.Flush(); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		}
		whole := run(in, len(in)+1)
		if split := run(in, int(chunk)+1); !bytes.Equal(split, whole) {
			t.Fatalf("split in %d: %q, whole: %q", chunk+1, split, whole)
		}
		if again := run(whole, len(whole)+1); !bytes.Equal(again, whole) {
			t.Fatalf("not idempotent: %q then %q", whole, again)
		}
		if i := bytes.Index(in, []byte("\r\n\r\n")); i >= 0 && !bytes.HasSuffix(whole, in[i+4:]) {
			t.Fatalf("body changed: %q → %q", in, whole)
		}
	})
}
