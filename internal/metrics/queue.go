package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smtpkit/internal/queue"
)

// QueueStats is what the queue collector reads at each scrape
// (queue.Backend implements it).
type QueueStats interface {
	List(ctx context.Context) ([]queue.Summary, error)
}

// queueCounter is a back-end that keeps the numbers itself (the files'
// queue: its index holds messages whose envelopes are only on disk, and a
// List would read every one at every scrape).
type queueCounter interface {
	Counts(ctx context.Context) (queue.Counts, error)
}

// listTimeout bounds the List of one scrape (a database back-end).
const listTimeout = 5 * time.Second

// WatchQueue registers a collector that reports q's size, its recipients
// by state and the age of its oldest message at scrape time. Call it once.
func (m *Metrics) WatchQueue(q QueueStats) {
	m.register(&queueCollector{q: q, m: m})
}

var (
	descQueueMessages = prometheus.NewDesc(namespace+"_queue_messages", "Messages in the outbound queue.", nil, nil)
	descQueueHeld     = prometheus.NewDesc(namespace+"_queue_held_messages", "Messages in the outbound queue held by the operator.", nil, nil)
	descQueueBytes    = prometheus.NewDesc(namespace+"_queue_bytes", "Octets of the messages in the outbound queue.", nil, nil)
	descQueueRcpts    = prometheus.NewDesc(namespace+"_queue_recipients", "Recipients of queued messages, by state.", []string{"state"}, nil)
	descQueueOldest   = prometheus.NewDesc(namespace+"_queue_oldest_age_seconds", "Age of the oldest message in the outbound queue; 0 when it is empty.", nil, nil)
)

// queueStates are reported even when no recipient is in them, so that the
// series exist from the first scrape.
var queueStates = []queue.State{queue.Queued, queue.Deferred, queue.Delivered, queue.Failed}

// queueCollector turns a List snapshot into gauges.
type queueCollector struct {
	q QueueStats
	m *Metrics
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueMessages, descQueueHeld, descQueueBytes, descQueueRcpts, descQueueOldest} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if qc, ok := c.q.(queueCounter); ok {
		n, err := qc.Counts(ctx)
		if err != nil {
			return
		}
		var oldest float64
		if !n.Oldest.IsZero() {
			oldest = max(c.m.now().Sub(n.Oldest).Seconds(), 0)
		}
		gauge(descQueueMessages, float64(n.Messages))
		gauge(descQueueHeld, float64(n.Held))
		gauge(descQueueBytes, float64(n.Bytes))
		gauge(descQueueOldest, oldest)
		for _, s := range queueStates {
			gauge(descQueueRcpts, float64(n.Recipients[s]), string(s))
		}
		return
	}
	msgs, err := c.q.List(ctx)
	if err != nil {
		return // no queue gauges in this scrape rather than wrong ones
	}
	now := c.m.now()
	var held, bytes, oldest float64
	byState := make(map[queue.State]float64, len(queueStates))
	for _, s := range queueStates {
		byState[s] = 0
	}
	for _, s := range msgs {
		if s.Held {
			held++
		}
		bytes += float64(s.Size)
		if age := now.Sub(s.Arrival).Seconds(); age > oldest {
			oldest = age
		}
		for _, r := range s.Recipients {
			byState[r.State]++
		}
	}
	gauge(descQueueMessages, float64(len(msgs)))
	gauge(descQueueHeld, held)
	gauge(descQueueBytes, bytes)
	gauge(descQueueOldest, oldest)
	for s, n := range byState {
		gauge(descQueueRcpts, n, string(s))
	}
}
