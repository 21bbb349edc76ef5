package server

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus collectors, in a registry of its own
// so that several servers in one process (tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	sseClients  prometheus.Gauge
	reloads     *prometheus.CounterVec
	handler     http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envplane_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "envplane_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "envplane_config_cache_hits_total",
			Help: "Resolved config reads answered from the in-memory snapshot.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "envplane_config_cache_misses_total",
			Help: "Resolved config reads that had to resolve the release first.",
		}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "envplane_sse_clients",
			Help: "Open server-sent event streams.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envplane_snapshot_reloads_total",
			Help: "Reloads of the in-memory environment snapshot by result.",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.cacheHits, m.cacheMisses, m.sseClients, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// routeMetrics are one route's collectors, resolved once per status code so
// that observing a request does no label lookup.
type routeMetrics struct {
	m        *metrics
	pattern  string
	byStatus [600]atomic.Pointer[statusMetrics]
}

type statusMetrics struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func (m *metrics) route(pattern string) *routeMetrics { return &routeMetrics{m: m, pattern: pattern} }

func (rm *routeMetrics) observe(status int, d time.Duration) {
	if status < 100 || status >= len(rm.byStatus) {
		status = http.StatusInternalServerError
	}
	sm := rm.byStatus[status].Load()
	if sm == nil {
		code := strconv.Itoa(status)
		sm = &statusMetrics{rm.m.requests.WithLabelValues(rm.pattern, code), rm.m.latency.WithLabelValues(rm.pattern, code)}
		rm.byStatus[status].Store(sm)
	}
	sm.count.Inc()
	sm.latency.Observe(d.Seconds())
}
