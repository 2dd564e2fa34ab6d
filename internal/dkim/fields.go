package dkim

import "strings"

// signedFields are the header fields a signature covers, in the order h=
// lists them. RFC 6376 §5.4.1 recommends From (required, §5.4), Reply-To,
// Subject, Date, To, Cc, Resent-Date, Resent-From, Resent-To, Resent-Cc,
// In-Reply-To, References and the List-* fields, and warns against trace
// fields (Received, Return-Path) that later hops add; the MIME fields and
// Message-ID are added as current practice (they change how the body
// reads, or identify it). List-Unsubscribe-Post must be signed for
// one-click unsubscription (RFC 8058 §4).
//
// oversign marks the fields whose name h= lists once more than the message
// has them (RFC 6376 §5.4.2, §8.15): the extra entry signs the absence of
// a further instance, so a field of that name added later — a second From
// or Subject above ours, or a Cc where there was none — breaks the
// signature. The issue asks this of From, To, Subject, Date and
// Message-ID; Cc, Reply-To, Sender, the MIME fields and the reply
// references get it too, as a message has at most one of each (RFC 5322
// §3.6) and a forger adding one is exactly what §8.15 describes.
var signedFields = []struct {
	name     string
	oversign bool
}{
	{"From", true},
	{"Sender", true},
	{"Reply-To", true},
	{"To", true},
	{"Cc", true},
	{"Subject", true},
	{"Date", true},
	{"Message-ID", true},
	{"In-Reply-To", true},
	{"References", true},
	{"MIME-Version", true},
	{"Content-Type", true},
	{"Content-Transfer-Encoding", true},
	{"Content-ID", false},
	{"Content-Description", false},
	{"Resent-Date", false},
	{"Resent-From", false},
	{"Resent-Sender", false},
	{"Resent-To", false},
	{"Resent-Cc", false},
	{"Resent-Message-ID", false},
	{"List-Id", true},
	{"List-Help", false},
	{"List-Unsubscribe", true},
	{"List-Unsubscribe-Post", true},
	{"List-Subscribe", false},
	{"List-Post", false},
	{"List-Owner", false},
	{"List-Archive", false},
}

// headerKeys is h= for a message with fields fs: each name of signedFields
// as many times as the message has it, once more for an oversigned one
// (so once for an oversigned field it lacks; a field it lacks and that is
// not oversigned is left out). The signer picks instances bottom-up and
// an entry without one signs the empty string (RFC 6376 §5.4.2).
func headerKeys(fs []field) []string {
	count := map[string]int{}
	for _, f := range fs {
		count[strings.ToLower(f.name)]++
	}
	var keys []string
	for _, sf := range signedFields {
		n := count[strings.ToLower(sf.name)]
		if sf.oversign {
			n++
		}
		for range n {
			keys = append(keys, sf.name)
		}
	}
	return keys
}
