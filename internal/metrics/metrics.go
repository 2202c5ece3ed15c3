// Package metrics holds the console's Prometheus collectors, registered on
// a private registry so that only what snapdeck chooses is exported (and
// tests can build as many as they like).
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Sources are the values read at scrape time rather than counted as they
// happen, because the store or the snapshot store already knows them. Any
// may be nil.
type Sources struct {
	// SnapshotStore returns the snapshot store's blob count and bytes.
	SnapshotStore func(ctx context.Context) (blobs, bytes int64, err error)
	// ConsoleStoreBytes returns the size of console.db and its WAL.
	ConsoleStoreBytes func() int64
	// OpenJobs returns the background jobs queued or running.
	OpenJobs func(ctx context.Context) ([]snapdeck.Job, error)
	// LastSuccess returns, per database, its newest completed snapshot.
	LastSuccess func(ctx context.Context) (map[string]time.Time, error)
	// ReplicationLag returns, per replicated database, how long ago its
	// point-in-time replica last caught up with its WAL.
	ReplicationLag func() map[string]time.Duration
	Logger         *slog.Logger
}

// Metrics are the console's collectors. A nil *Metrics ignores every call,
// so callers need not check.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	snapshots   *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	retries     prometheus.Counter
	skipped     *prometheus.CounterVec
	workers     prometheus.Gauge
	expired     prometheus.Counter
	reclaimed   prometheus.Counter
	sweepErrors prometheus.Counter
	notify      *prometheus.CounterVec
	// The data plane (issue 15).
	streams   prometheus.Gauge
	pipelines prometheus.Counter
	dpErrors  *prometheus.CounterVec
}

// New registers every collector on a new registry.
func New(src Sources) *Metrics {
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdeck_snapshots_total",
			Help: "Snapshots that ended, by type (Scheduled, On-demand, Load) and outcome (completed, failed)."}, []string{"type", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "snapdeck_snapshot_duration_seconds",
			Help:    "How long snapshots took, by type and outcome.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}}, []string{"type", "outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "snapdeck_scheduled_snapshot_retries_total",
			Help: "Scheduled snapshots tried again after a failure."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdeck_scheduled_snapshots_skipped_total",
			Help: "Scheduled runs that took no snapshot, by reason: busy (the database was not running), recent (a snapshot was taken less than half a period ago), in-flight (the previous run had not ended)."}, []string{"reason"}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "snapdeck_snapshot_workers_busy",
			Help: "Scheduler workers taking a snapshot now."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "snapdeck_snapshots_deleted_by_retention_total",
			Help: "Snapshots the retention sweeper deleted."}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{Name: "snapdeck_snapshot_store_reclaimed_bytes_total",
			Help: "Bytes the retention sweeper reclaimed from the snapshot store."}),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "snapdeck_retention_sweep_errors_total",
			Help: "Retention sweeps that failed."}),
		notify: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdeck_notifications_total",
			Help: "Webhook notifications, by outcome (sent, failed, dropped)."}, []string{"outcome"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "snapdeck_dataplane_open_streams",
			Help: "Hrana streams open on the data plane now."}),
		pipelines: prometheus.NewCounter(prometheus.CounterOpts{Name: "snapdeck_dataplane_pipeline_requests_total",
			Help: "Pipeline requests the data plane received."}),
		dpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdeck_dataplane_errors_total",
			Help: "Errors the data plane answered, by Hrana code (UNAUTHORIZED, STREAM_EXPIRED, STREAM_REVOKED, SQLITE_CONSTRAINT, ...)."}, []string{"code"}),
	}
	m.Registry.MustRegister(m.snapshots, m.durations, m.retries, m.skipped, m.workers, m.expired, m.reclaimed, m.sweepErrors, m.notify,
		m.streams, m.pipelines, m.dpErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scraped{src: src})
	return m
}

// Snapshot counts a snapshot that ended; the Manager's observer calls it.
func (m *Metrics) Snapshot(s snapdeck.Snapshot, took time.Duration) {
	if m == nil {
		return
	}
	outcome := "completed"
	if s.Status != snapdeck.SnapshotCompleted {
		outcome = "failed"
	}
	m.snapshots.WithLabelValues(string(s.Type), outcome).Inc()
	m.durations.WithLabelValues(string(s.Type), outcome).Observe(took.Seconds())
}

// Retry counts a scheduled snapshot tried again.
func (m *Metrics) Retry() {
	if m != nil {
		m.retries.Inc()
	}
}

// Skipped counts a scheduled run that took no snapshot.
func (m *Metrics) Skipped(reason string) {
	if m != nil {
		m.skipped.WithLabelValues(reason).Inc()
	}
}

// WorkerBusy adds delta (1 or -1) to the busy workers.
func (m *Metrics) WorkerBusy(delta float64) {
	if m != nil {
		m.workers.Add(delta)
	}
}

// Swept counts what a retention sweep deleted and reclaimed.
func (m *Metrics) Swept(deleted int, reclaimed int64, err error) {
	if m == nil {
		return
	}
	m.expired.Add(float64(deleted))
	m.reclaimed.Add(float64(reclaimed))
	if err != nil {
		m.sweepErrors.Inc()
	}
}

// Notified counts a webhook notification's outcome.
func (m *Metrics) Notified(outcome string) {
	if m != nil {
		m.notify.WithLabelValues(outcome).Inc()
	}
}

var (
	storeBytesDesc   = prometheus.NewDesc("snapdeck_snapshot_store_bytes", "Bytes held by the snapshot store (deduplicated).", nil, nil)
	storeBlobsDesc   = prometheus.NewDesc("snapdeck_snapshot_store_blobs", "Blobs (packs) in the snapshot store.", nil, nil)
	consoleBytesDesc = prometheus.NewDesc("snapdeck_console_store_bytes", "Size of the console's own store, console.db with its WAL.", nil, nil)
	jobsDesc         = prometheus.NewDesc("snapdeck_jobs_running", "Background jobs queued or running, by kind.", []string{"kind"}, nil)
	lastDesc         = prometheus.NewDesc("snapdeck_last_successful_snapshot_timestamp_seconds",
		"When each database's newest completed snapshot was taken, Unix seconds.", []string{"database_id"}, nil)
	lagDesc = prometheus.NewDesc("snapdeck_pitr_replication_lag_seconds",
		"How long ago each replicated database's point-in-time replica last caught up with its WAL; about --pitr-interval when all is well.", []string{"database_id"}, nil)
)

// scraped reads the Sources at each scrape: the figures are always those of
// the store, with nothing to keep in step when databases come and go.
type scraped struct{ src Sources }

func (c *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeBytesDesc, storeBlobsDesc, consoleBytesDesc, jobsDesc, lastDesc, lagDesc} {
		ch <- d
	}
}

func (c *scraped) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f := c.src.SnapshotStore; f != nil {
		if blobs, bytes, err := f(ctx); err != nil {
			c.src.Logger.Warn("metrics: snapshot store stats", "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(bytes))
			ch <- prometheus.MustNewConstMetric(storeBlobsDesc, prometheus.GaugeValue, float64(blobs))
		}
	}
	if f := c.src.ConsoleStoreBytes; f != nil {
		ch <- prometheus.MustNewConstMetric(consoleBytesDesc, prometheus.GaugeValue, float64(f()))
	}
	if f := c.src.OpenJobs; f != nil {
		if jobs, err := f(ctx); err != nil {
			c.src.Logger.Warn("metrics: open jobs", "err", err)
		} else {
			kinds := map[snapdeck.JobKind]int{snapdeck.JobSnapshot: 0, snapdeck.JobRestore: 0, snapdeck.JobLoad: 0, snapdeck.JobExport: 0}
			for _, j := range jobs {
				kinds[j.Kind]++
			}
			for k, n := range kinds {
				ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), string(k))
			}
		}
	}
	if f := c.src.LastSuccess; f != nil {
		if last, err := f(ctx); err != nil {
			c.src.Logger.Warn("metrics: latest snapshots", "err", err)
		} else {
			for id, at := range last {
				ch <- prometheus.MustNewConstMetric(lastDesc, prometheus.GaugeValue, float64(at.UnixMilli())/1000, id)
			}
		}
	}
	if f := c.src.ReplicationLag; f != nil {
		for id, lag := range f() {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag.Seconds(), id)
		}
	}
}

// DataPlaneStreams adds delta (1 or -1) to the open data plane streams.
func (m *Metrics) DataPlaneStreams(delta float64) {
	if m != nil {
		m.streams.Add(delta)
	}
}

// DataPlanePipeline counts a pipeline request.
func (m *Metrics) DataPlanePipeline() {
	if m != nil {
		m.pipelines.Inc()
	}
}

// DataPlaneError counts an error the data plane answered, by its code.
func (m *Metrics) DataPlaneError(code string) {
	if m != nil {
		m.dpErrors.WithLabelValues(code).Inc()
	}
}
