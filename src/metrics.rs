//! Prometheus metrics, prefix `smanager_`, never labelled by CID or account.
//!
//! Two kinds, as crates.io splits them: *service* gauges computed from PostgreSQL when `/metrics` is scraped (files by
//! status, pins in flight, cursors), and *instance* counters and histograms the actors update as work happens (pin,
//! seal and cleanup outcomes, durations, RPC latency).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric smanager exports.
pub struct Metrics {
    pub registry: Registry,
    pub files: IntGaugeVec,
    pub pins_in_flight: IntGaugeVec,
    pub reserved_bytes: IntGauge,
    pub free_bytes: IntGaugeVec,
    pub chain_finalized_block: IntGauge,
    pub indexer_block: IntGauge,
    pub indexer_lag_blocks: IntGauge,
    pub scanner_files: IntGauge,
    pub scanner_round: IntGauge,
    pub cleanups: IntGaugeVec,
    pub pins_total: IntCounterVec,
    pub seals_total: IntCounterVec,
    pub cleanups_total: IntCounterVec,
    pub coordinator_failures_total: IntCounterVec,
    pub indexed_orders_total: IntCounter,
    pub undecodable_blocks_total: IntCounter,
    /// Blocks the fast layout reader could not take, read by subxt instead: a steady rise means a runtime whose
    /// shapes the layouts do not know, and a slower indexer.
    pub blocks_read_by_subxt_total: IntCounter,
    pub pin_duration_seconds: HistogramVec,
    pub seal_duration_seconds: HistogramVec,
    pub rpc_duration_seconds: HistogramVec,
    /// Blocks per indexer transaction: near 1 when following the head, 256 to 1,024 in a catch-up (each transaction
    /// has a fixed cost, so small runs in a catch-up mean a slower one).
    pub indexer_write_blocks: Histogram,
    /// Time of each indexer transaction: a catch-up cannot run faster than its writes, so their sum against the blocks
    /// written is the writer's own bound (`smanager bench` reports it next to PostgreSQL's raw copy rate).
    pub indexer_write_seconds: Histogram,
    pub build_info: IntGaugeVec,
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help).namespace("smanager"), labels).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help).namespace("smanager")).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    g
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace("smanager"), labels)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).namespace("smanager").buckets(buckets))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    h
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).namespace("smanager").buckets(buckets),
        labels,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    h
}

/// The process-wide metrics. Registration happens once, with static names, so it cannot fail at runtime.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let long = vec![1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 24.0 * 3600.0];
    let m = Metrics {
        files: gauge_vec(&r, "files", "Files by pipeline status.", &["status"]),
        pins_in_flight: gauge_vec(
            &r,
            "pins_in_flight",
            "Live pins (queued or pinning) per lane.",
            &["lane"],
        ),
        reserved_bytes: gauge(&r, "reserved_bytes", "Bytes reserved by live pins."),
        free_bytes: gauge_vec(&r, "free_bytes", "Free bytes as last reported, by source.", &["source"]),
        chain_finalized_block: gauge(&r, "chain_finalized_block", "Newest finalized block seen on the chain."),
        indexer_block: gauge(&r, "indexer_block", "Last block fully indexed."),
        indexer_lag_blocks: gauge(&r, "indexer_lag_blocks", "Finalized blocks not indexed yet."),
        scanner_files: gauge(&r, "scanner_files", "Files found by the FilesV2 scanner."),
        scanner_round: gauge(&r, "scanner_round", "Completed FilesV2 scan rounds."),
        cleanups: gauge_vec(&r, "cleanups", "Cleanup requests by status.", &["status"]),
        pins_total: counter_vec(&r, "pins_total", "Pin attempts by result.", &["result"]),
        seals_total: counter_vec(&r, "seals_total", "Seal outcomes seen by the sealer.", &["result"]),
        cleanups_total: counter_vec(&r, "cleanups_total", "Cleanup attempts by result.", &["result"]),
        coordinator_failures_total: counter_vec(
            &r,
            "coordinator_failures_total",
            "Seal coordinator calls that failed and were answered by a local decision.",
            &["call"],
        ),
        indexed_orders_total: {
            let c = IntCounter::with_opts(
                Opts::new("indexed_orders_total", "Storage orders indexed from events.").namespace("smanager"),
            )
            .unwrap_or_else(|e| panic!("indexed_orders_total: {e}"));
            r.register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("indexed_orders_total: {e}"));
            c
        },
        undecodable_blocks_total: {
            let c = IntCounter::with_opts(
                Opts::new("undecodable_blocks_total", "Blocks recorded as undecodable and passed.")
                    .namespace("smanager"),
            )
            .unwrap_or_else(|e| panic!("undecodable_blocks_total: {e}"));
            r.register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("undecodable_blocks_total: {e}"));
            c
        },
        blocks_read_by_subxt_total: {
            let c = IntCounter::with_opts(
                Opts::new(
                    "blocks_read_by_subxt_total",
                    "Blocks the layout reader could not take, read by subxt instead.",
                )
                .namespace("smanager"),
            )
            .unwrap_or_else(|e| panic!("blocks_read_by_subxt_total: {e}"));
            r.register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("blocks_read_by_subxt_total: {e}"));
            c
        },
        pin_duration_seconds: histogram_vec(
            &r,
            "pin_duration_seconds",
            "pin/add duration by result.",
            &["result"],
            long.clone(),
        ),
        seal_duration_seconds: histogram_vec(
            &r,
            "seal_duration_seconds",
            "From pin start to the sWorker confirming the seal.",
            &["lane"],
            long,
        ),
        rpc_duration_seconds: histogram_vec(
            &r,
            "rpc_duration_seconds",
            "Calls to the chain, IPFS and the sWorker.",
            &["target", "method"],
            vec![0.005, 0.02, 0.1, 0.5, 2.0, 10.0, 60.0, 600.0],
        ),
        indexer_write_blocks: histogram(
            &r,
            "indexer_write_blocks",
            "Blocks written per indexer transaction.",
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0],
        ),
        indexer_write_seconds: histogram(
            &r,
            "indexer_write_seconds",
            "Duration of each indexer transaction, commit included.",
            vec![0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0],
        ),
        build_info: gauge_vec(
            &r,
            "build_info",
            "Build metadata; the value is always 1.",
            &["version", "commit"],
        ),
        registry: r,
    };
    m.build_info
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            option_env!("SMANAGER_GIT_COMMIT").unwrap_or("unknown"),
        ])
        .set(1);
    m
});

/// Records one call's latency.
pub fn observe_rpc(target: &str, method: &str, took: Duration) {
    METRICS
        .rpc_duration_seconds
        .with_label_values(&[target, method])
        .observe(took.as_secs_f64());
}

/// The text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
