// Package mtasts is the sending side of SMTP MTA Strict Transport Security
// (RFC 8461): a domain publishes a TXT record at _mta-sts.<domain>
// ("v=STSv1; id=..."), and a policy at
// https://mta-sts.<domain>/.well-known/mta-sts.txt saying which MX hosts
// may receive its mail and whether a sender must insist on TLS with a
// certificate valid for them (mode enforce), only report failures (mode
// testing) or nothing (mode none).
//
// ParseRecord and ParsePolicy read the two texts (§3.1, §3.2);
// Policy.Matches applies the "mx:" patterns (§4.1). A Cache finds the
// policy that applies to a domain (Lookup): it checks the TXT record,
// fetches the policy over HTTPS with the restrictions of §3.3 (WebPKI
// certificate for mta-sts.<domain>, no redirects, 200 and text/plain only,
// a size cap and a timeout), keeps policies on disk for their max_age and
// keeps applying a cached policy when the policy host is down or the TXT
// record is gone (§5.1, §10.2), so that an attacker who blocks them cannot
// switch enforcement off. Every error it returns is an *Error, which tells
// TLS-RPT (RFC 8460 §4.3.2.2) its result type.
package mtasts
