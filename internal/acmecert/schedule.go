package acmecert

import (
	"crypto/x509"
	"time"
)

// maxRenewBefore caps how long before expiry a certificate is renewed.
const maxRenewBefore = 30 * 24 * time.Hour

// RenewAt is when leaf is renewed: at two thirds of its lifetime, and no
// earlier than 30 days before it expires — day 60 of a 90-day
// certificate, day 4 of a 6-day one (Let's Encrypt's advice for both),
// which leaves a third of the lifetime for retries.
func RenewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-min(life/3, maxRenewBefore))
}

// Backoff is the wait after the nth failed attempt in a row (n ≥ 1):
// retryMin doubled n-1 times, at most retryMax.
func Backoff(n int, retryMin, retryMax time.Duration) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}
