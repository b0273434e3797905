//! Prometheus metrics, rendered by hand in the text exposition format: per-route request
//! counts by status, per-route latency histograms, and index sizes per gallery.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket; the last slot counts the rest (+Inf).
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

/// Request statistics keyed by (method, route template).
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = routes
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *stats.by_status.entry(status).or_default() += 1;
        let slot = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        stats.buckets[slot] += 1;
        stats.sum_seconds += seconds;
        stats.count += 1;
    }

    /// The text exposition format; `sizes` are `(gallery, identities, faces)`.
    pub fn render(&self, sizes: &[(String, usize, usize)]) -> String {
        let mut out = String::new();
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP faceprint_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE faceprint_http_requests_total counter\n");
        for ((method, route), stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "faceprint_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str("# HELP faceprint_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE faceprint_http_request_duration_seconds histogram\n");
        for ((method, route), stats) in routes.iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += stats.buckets[i];
                let _ = writeln!(
                    out,
                    "faceprint_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "faceprint_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "faceprint_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "faceprint_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        out.push_str("# HELP faceprint_index_faces Faces searchable in each gallery's index.\n");
        out.push_str("# TYPE faceprint_index_faces gauge\n");
        for (gallery, _, faces) in sizes {
            let _ = writeln!(
                out,
                "faceprint_index_faces{{gallery=\"{}\"}} {faces}",
                escape(gallery)
            );
        }
        out.push_str("# HELP faceprint_index_identities Identities in each gallery.\n");
        out.push_str("# TYPE faceprint_index_identities gauge\n");
        for (gallery, identities, _) in sizes {
            let _ = writeln!(
                out,
                "faceprint_index_identities{{gallery=\"{}\"}} {identities}",
                escape(gallery)
            );
        }
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method as a label: one of the standard methods, else `other` — a client may send
/// any token as its method, and each new label value would be a new series forever.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// Middleware: time every request and count it under its method label and route template
/// (`/identities/{id}`, not the concrete path; `unmatched` for every unknown path), so the
/// number of series stays bounded whatever clients send.
pub async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.record(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counts_split_by_status() {
        let metrics = Metrics::default();
        metrics.record("POST", "/identify", 200, 0.003);
        metrics.record("POST", "/identify", 200, 20.0);
        metrics.record("POST", "/identify", 422, 0.0001);
        let text = metrics.render(&[("a\"b".into(), 2, 5)]);
        for line in [
            "faceprint_http_requests_total{method=\"POST\",route=\"/identify\",status=\"200\"} 2",
            "faceprint_http_requests_total{method=\"POST\",route=\"/identify\",status=\"422\"} 1",
            "faceprint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/identify\",le=\"0.001\"} 1",
            "faceprint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/identify\",le=\"0.005\"} 2",
            "faceprint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/identify\",le=\"10\"} 2",
            "faceprint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/identify\",le=\"+Inf\"} 3",
            "faceprint_index_faces{gallery=\"a\\\"b\"} 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
