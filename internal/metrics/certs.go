package metrics

// certs.go: the expiry of the certificates the listeners serve.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate is one served certificate, as the expiry gauge reports it.
type Certificate struct {
	File     string // the PEM file, unique per certificate
	Name     string // its first DNS name
	NotAfter time.Time
}

var descCertNotAfter = prometheus.NewDesc(namespace+"_certificate_not_after_timestamp_seconds",
	"Expiry (notAfter, Unix time) of each certificate the TLS listeners serve, by file and first DNS name.", []string{"file", "name"}, nil)

// WatchCertificates registers a collector that reports, at scrape time,
// the expiry of the certificates list returns (after a reload, the new
// ones). Call it once.
func (m *Metrics) WatchCertificates(list func() []Certificate) {
	m.register(certCollector(list))
}

type certCollector func() []Certificate

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCertNotAfter }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, cert := range c() {
		if seen[cert.File] { // the same file listed twice: one series
			continue
		}
		seen[cert.File] = true
		ch <- prometheus.MustNewConstMetric(descCertNotAfter, prometheus.GaugeValue,
			float64(cert.NotAfter.Unix()), cert.File, cert.Name)
	}
}
