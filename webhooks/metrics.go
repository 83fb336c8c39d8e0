package webhooks

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// metricsTimeout bounds the endpoint read of one scrape (the cache answers
// without MongoDB between refreshes).
const metricsTimeout = 2 * time.Second

// endpointsCollector exports the endpoints' health, read from the
// dispatcher's endpoint cache at each scrape: how many are healthy, failing
// (their current run of failed attempts has not ended) and disabled, and
// how long the oldest current failure has lasted. The alert rules in
// deployments/monitoring page on failing and disabled endpoints from them.
type endpointsCollector struct {
	cache     *endpoint.Cache
	now       func() time.Time
	endpoints *prometheus.Desc
	failing   *prometheus.Desc
}

func newEndpointsCollector(cache *endpoint.Cache) *endpointsCollector {
	return &endpointsCollector{
		cache: cache,
		now:   time.Now,
		endpoints: prometheus.NewDesc("kiln_webhooks_endpoints",
			"Webhook endpoints by state: healthy, failing (deliveries failing, retried until WEBHOOKS_DISABLE_AFTER), disabled.",
			[]string{"state"}, nil),
		failing: prometheus.NewDesc("kiln_webhooks_oldest_failure_seconds",
			"How long the longest current run of failed deliveries to an enabled endpoint has lasted (0 when none fails).", nil, nil),
	}
}

func (c *endpointsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.endpoints
	ch <- c.failing
}

func (c *endpointsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	all, err := c.cache.All(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.endpoints, err)
		return
	}
	var healthy, failing, disabled float64
	var oldest int64
	for _, ep := range all {
		switch {
		case ep.Disabled:
			disabled++
		case ep.FailingSince > 0:
			failing++
			if oldest == 0 || ep.FailingSince < oldest {
				oldest = ep.FailingSince
			}
		default:
			healthy++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.endpoints, prometheus.GaugeValue, healthy, "healthy")
	ch <- prometheus.MustNewConstMetric(c.endpoints, prometheus.GaugeValue, failing, "failing")
	ch <- prometheus.MustNewConstMetric(c.endpoints, prometheus.GaugeValue, disabled, "disabled")
	age := 0.0
	if oldest > 0 {
		age = max(0, c.now().Sub(time.UnixMilli(oldest)).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, age)
}
