package greylist

import (
	"strings"
	"testing"
	"time"
)

func FuzzNormalizeSender(f *testing.F) {
	for _, s := range []string{"", "<>", "a@b", "SRS0=h=t=d=l@f", "SRS1=h=f==h=t=d=l@f2", "srs1===", "prvs=x=y@z",
		"btv1====@", "a+b+c@d", "1.2-3_4=5@6", "@", "@@", "srs0-=====@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeSender(s)
		if got == "" {
			t.Fatalf("NormalizeSender(%q) is empty", s)
		}
		if len(got) > len(s) && got != nullSender {
			t.Fatalf("NormalizeSender(%q) = %q grew", s, got)
		}
	})
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"entries":[{"net":"192.0.2.0/24","sender":"a@b","rcpt":"c@d","first":1700000000,"last":1700000300}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"net":"2001:db8::/64","sender":"<>","rcpt":"c@d","first":1700000000}]}`))
	f.Add([]byte(`{"version":1,"entries":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &clock{now: time.Unix(1700000400, 0)}
		l := &List{opts: Options{Delay: DefaultDelay, RetryWindow: DefaultRetryWindow, Expire: DefaultExpire, MaxEntries: 4, Now: c.Now}}
		l.reset()
		if err := l.parse(data); err != nil {
			return
		}
		if len(l.m) != l.pending.Len()+l.passed.Len() || len(l.m) > 4 {
			t.Fatalf("%d entries, lists %d+%d", len(l.m), l.pending.Len(), l.passed.Len())
		}
		for k := range l.m {
			if k.Net != Network(k.Net.Addr()) || strings.TrimSpace(k.Sender) == "" && k.Sender != "" {
				t.Fatalf("bad key %+v", k)
			}
		}
	})
}
