package events

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Observer is what other packages update to report their state: storage,
// uploads, the scan pipeline, garbage collection. Metrics implements it;
// NopObserver does nothing. Methods are safe for concurrent use.
type Observer interface {
	// SetStorageBytes reports the bytes of blob content stored.
	SetStorageBytes(n int64)
	// SetUploadSessions reports the upload sessions open.
	SetUploadSessions(n int)
	// SetScanQueueDepth reports the images waiting to be scanned.
	SetScanQueueDepth(n int)
	// ObserveScan reports one finished scan, its duration and result
	// ("ok", "failed", …: a small fixed set).
	ObserveScan(d time.Duration, result string)
	// AddGCReclaimedBytes reports bytes freed by garbage collection.
	AddGCReclaimedBytes(n int64)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// SetStorageBytes implements Observer.
func (NopObserver) SetStorageBytes(int64) {}

// SetUploadSessions implements Observer.
func (NopObserver) SetUploadSessions(int) {}

// SetScanQueueDepth implements Observer.
func (NopObserver) SetScanQueueDepth(int) {}

// ObserveScan implements Observer.
func (NopObserver) ObserveScan(time.Duration, string) {}

// AddGCReclaimedBytes implements Observer.
func (NopObserver) AddGCReclaimedBytes(int64) {}

// MetricsOptions configures Metrics. The zero value of every field is a
// safe default.
type MetricsOptions struct {
	// Registry receives the metrics. Default: a new registry of its own,
	// with the Go runtime and process collectors.
	Registry *prometheus.Registry
	// Namespace prefixes metric names. Default "berth".
	Namespace string
	// Buckets are the request-duration histogram's upper bounds in
	// seconds. Default from 1 ms to 60 s.
	Buckets []float64
	// ClientAddr returns the client address of a request, when this
	// middleware is the first of the package to see it. Default: the host
	// of RemoteAddr.
	ClientAddr func(*http.Request) string
}

// Metrics counts requests and exposes them, and what other packages
// report through Observer, in the Prometheus text format.
//
// Request metrics are labelled by route template (ParseRoute), method and
// status code, never by repository or path, so that their number stays
// small:
//
//	berth_http_requests_total{route,method,code}
//	berth_http_request_duration_seconds{route,method,code} (histogram)
//	berth_http_request_bytes_total{route}, berth_http_response_bytes_total{route}
//	berth_storage_bytes, berth_upload_sessions, berth_scan_queue_depth
//	berth_scan_duration_seconds{result} (histogram)
//	berth_gc_reclaimed_bytes_total
//	berth_ratelimit_rejections_total{kind} (kind "identity" or "address")
type Metrics struct {
	reg        *prometheus.Registry
	clientAddr func(*http.Request) string

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytesIn   *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	storage   prometheus.Gauge
	uploads   prometheus.Gauge
	scanQueue prometheus.Gauge
	scanDur   *prometheus.HistogramVec
	gc        prometheus.Counter
	rejected  *prometheus.CounterVec

	// series by route, method and status code, resolved once: rows
	// indexed by route and method, each an array indexed by code.
	rows [len(routes) * len(methods)]atomic.Pointer[[600]atomic.Pointer[series]]
}

// routes and methods are the label values of request metrics, in index
// order; routeIndex and methodIndex map to it without hashing.
var (
	routes = [...]string{RouteBase, RouteCatalog, RouteTags, RouteManifest, RouteBlob, RouteUploads, RouteUpload,
		RouteReferrers, RouteV2Other, RouteAPI, RouteMetrics, RouteOther}
	methods = [...]string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "other"}
)

func routeIndex(r string) int {
	switch r {
	case RouteBase:
		return 0
	case RouteCatalog:
		return 1
	case RouteTags:
		return 2
	case RouteManifest:
		return 3
	case RouteBlob:
		return 4
	case RouteUploads:
		return 5
	case RouteUpload:
		return 6
	case RouteReferrers:
		return 7
	case RouteV2Other:
		return 8
	case RouteAPI:
		return 9
	case RouteMetrics:
		return 10
	}
	return 11
}

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "PUT":
		return 2
	case "POST":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	}
	return 7
}

// series are the request metrics of one label combination, resolved once.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
	in, out  prometheus.Counter
}

// NewMetrics returns Metrics registered with opts.Registry.
func NewMetrics(opts *MetricsOptions) (*Metrics, error) {
	var o MetricsOptions
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "berth"
	}
	if o.Buckets == nil {
		o.Buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ns := o.Namespace
	m := &Metrics{
		reg:        o.Registry,
		clientAddr: o.ClientAddr,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "http", Name: "requests_total",
			Help: "Requests served, by route template, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to serve requests, by route template, method and status code.", Buckets: o.Buckets}, []string{"route", "method", "code"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "http", Name: "request_bytes_total",
			Help: "Request body bytes received, by route template."}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "http", Name: "response_bytes_total",
			Help: "Response body bytes sent, by route template."}, []string{"route"}),
		storage: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "storage_bytes",
			Help: "Bytes of blob content stored."}),
		uploads: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "upload_sessions",
			Help: "Upload sessions open."}),
		scanQueue: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "scan_queue_depth",
			Help: "Images waiting to be scanned."}),
		scanDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "scan_duration_seconds",
			Help: "Time to scan an image, by result.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}, []string{"result"}),
		gc: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "gc_reclaimed_bytes_total",
			Help: "Bytes reclaimed by garbage collection."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ratelimit_rejections_total",
			Help: "Requests rejected by rate limits, by kind of key (identity or address)."}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.bytesIn, m.bytesOut, m.storage, m.uploads, m.scanQueue, m.scanDur, m.gc, m.rejected} {
		if err := o.Registry.Register(c); err != nil {
			return nil, errors.Join(errors.New("events: register metrics"), err)
		}
	}
	return m, nil
}

// Registry returns the registry the metrics are in, to add others.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the http.Handler serving the metrics in the Prometheus
// exposition format, to mount at /metrics (on an internal listener, or
// behind authentication: metrics reveal activity).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// series returns the request metrics of a label combination: the route
// template (any other route counts as RouteOther), the method (or
// "other") and the status code (0 when out of range), so that their
// number stays bounded.
func (m *Metrics) series(route, method string, code int) *series {
	ri, mi := routeIndex(route), methodIndex(method)
	if code < 100 || code > 599 {
		code = 0
	}
	row := &m.rows[ri*len(methods)+mi]
	r := row.Load()
	if r == nil {
		row.CompareAndSwap(nil, new([600]atomic.Pointer[series]))
		r = row.Load()
	}
	if s := r[code].Load(); s != nil {
		return s
	}
	c := strconv.Itoa(code)
	rt, mm := routes[ri], methods[mi]
	s := &series{
		requests: m.requests.WithLabelValues(rt, mm, c),
		duration: m.duration.WithLabelValues(rt, mm, c),
		in:       m.bytesIn.WithLabelValues(rt),
		out:      m.bytesOut.WithLabelValues(rt),
	}
	r[code].CompareAndSwap(nil, s)
	return r[code].Load()
}

// Middleware returns next wrapped so that every request is counted and
// timed.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, w, r, _ := begin(w, r, time.Time{}, m.clientAddr)
		next.ServeHTTP(w, r)
		rec.end = time.Now()
		s := m.series(rec.Route, rec.Method, rec.Status)
		s.requests.Inc()
		s.duration.Observe(rec.end.Sub(rec.Start).Seconds())
		if rec.BytesIn > 0 {
			s.in.Add(float64(rec.BytesIn))
		}
		if rec.BytesOut > 0 {
			s.out.Add(float64(rec.BytesOut))
		}
	})
}

// SetStorageBytes implements Observer.
func (m *Metrics) SetStorageBytes(n int64) { m.storage.Set(float64(n)) }

// SetUploadSessions implements Observer.
func (m *Metrics) SetUploadSessions(n int) { m.uploads.Set(float64(n)) }

// SetScanQueueDepth implements Observer.
func (m *Metrics) SetScanQueueDepth(n int) { m.scanQueue.Set(float64(n)) }

// ObserveScan implements Observer.
func (m *Metrics) ObserveScan(d time.Duration, result string) {
	m.scanDur.WithLabelValues(result).Observe(d.Seconds())
}

// AddGCReclaimedBytes implements Observer.
func (m *Metrics) AddGCReclaimedBytes(n int64) {
	if n > 0 {
		m.gc.Add(float64(n))
	}
}

// RateLimited counts a rejection by the rate limit of kind ("identity" or
// "address").
func (m *Metrics) RateLimited(kind string) { m.rejected.WithLabelValues(kind).Inc() }

var (
	_ Observer = (*Metrics)(nil)
	_ Observer = NopObserver{}
)
