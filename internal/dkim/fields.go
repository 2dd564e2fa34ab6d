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
// Each field's oversign says whether h= lists its name once more than
// the message has it (RFC 6376 §5.4.2, §8.15): the extra entry signs the
// absence of a further instance, so that a field of that name added later
// — a second From or Subject above ours, a Cc where there was none —
// breaks the signature.
//
//   - always: the fields a reader trusts and a message has at most one of
//     (RFC 5322 §3.6): From, To, Subject, Date and Message-ID, what a reader sees,
//     and Cc, Reply-To, the reply references and the MIME fields (adding a
//     Content-Type changes how the body reads). Their absence is signed too.
//   - present: oversigned only when the message has the field. Mailing
//     lists add Sender and List-* fields to the posts they pass on
//     unchanged (RFC 2369, RFC 2919); signing their absence would break
//     our signature there for no protection a reader notices.
//   - never: signed as often as present, nothing more (trace-like or
//     repeatable fields: Resent-*, the other List-* fields).
var signedFields = []struct {
	name     string
	oversign oversign
}{
	{"From", always},
	{"Sender", present},
	{"Reply-To", always},
	{"To", always},
	{"Cc", always},
	{"Subject", always},
	{"Date", always},
	{"Message-ID", always},
	{"In-Reply-To", always},
	{"References", always},
	{"MIME-Version", always},
	{"Content-Type", always},
	{"Content-Transfer-Encoding", always},
	{"Content-ID", never},
	{"Content-Description", never},
	{"Resent-Date", never},
	{"Resent-From", never},
	{"Resent-Sender", never},
	{"Resent-To", never},
	{"Resent-Cc", never},
	{"Resent-Message-ID", never},
	{"List-Id", present},
	{"List-Help", never},
	{"List-Unsubscribe", present},
	{"List-Unsubscribe-Post", present},
	{"List-Subscribe", never},
	{"List-Post", never},
	{"List-Owner", never},
	{"List-Archive", never},
}

// oversign is when a field's name is listed once more than present.
type oversign int

const (
	never oversign = iota
	always
	present
)

// headerKeys is h= for a message with fields fs: each name of signedFields
// as many times as the message has it, once more when oversigned (so once
// for an "always" field it lacks; a field it lacks and that is not
// "always" is left out). The signer picks instances bottom-up and
// an entry without one signs the empty string (RFC 6376 §5.4.2).
func headerKeys(fs []field) []string {
	count := map[string]int{}
	for _, f := range fs {
		count[strings.ToLower(f.name)]++
	}
	var keys []string
	for _, sf := range signedFields {
		n := count[strings.ToLower(sf.name)]
		if sf.oversign == always || (sf.oversign == present && n > 0) {
			n++
		}
		for range n {
			keys = append(keys, sf.name)
		}
	}
	return keys
}
