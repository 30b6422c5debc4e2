//! The daemon's HTTP endpoint (`run --metrics-addr`): `GET /metrics` (Prometheus text
//! format), `GET /healthz` (the process is alive), `GET /readyz` (200 while the last pass
//! of every flow succeeded, else 503 and one line saying why), and the status page: `GET /`
//! and `GET /day/STREAM/YYYY-MM-DD` (HTML, `status_page`). Any other path is 404, any
//! other method 405; hyper answers malformed requests itself. Each connection is its own task
//! on the daemon's runtime, and passes run on blocking threads, so a slow or hostile client
//! never holds up a pass. A page is rendered on a blocking thread from the sensor flow's last
//! [`Board`] page, never from the store: it waits for no pass, and no pass waits for it.
//!
//! At most 64 connections are served at once, and a new connection is never made to wait for
//! a slot: it takes the slot of the oldest connection, which is dropped. Clients that hold
//! sockets open (a slowloris, thousands of idle connections) therefore cannot take the file
//! descriptors a pass needs, nor keep a scrape waiting: a scrape connects, asks and is
//! answered at once, while the flood's connections are the oldest and go first. (Waiting for
//! a slot once kept scrapes waiting 20–25 s behind such a flood, longer than Prometheus's
//! scrape timeout.)

use super::shutdown::Shutdown;
use crate::error::{Error, Result};
use crate::metrics::{Flow, Metrics, CONTENT_TYPE};
use crate::status_page::{html, Board, Links, View};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, CONTENT_SECURITY_POLICY, CONTENT_TYPE as CONTENT_TYPE_HEADER,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A client that has not sent its request headers by then is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; a further one takes the oldest one's slot.
const MAX_CONNECTIONS: usize = 64;

/// Binds `addr` (port 0: any free port); the error names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("--metrics-addr {addr}: cannot listen"), e))
}

/// Answers requests on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    board: Arc<Board>,
    shutdown: Shutdown,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let open = Arc::new(Connections::default());
    loop {
        let stream = tokio::select! {
            biased;
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("metrics endpoint: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        open.make_room(MAX_CONNECTIONS - 1);
        let id = open.next_id();
        let task = tokio::spawn(connection(
            stream,
            Arc::clone(&metrics),
            Arc::clone(&board),
            Arc::clone(&open),
            id,
        ));
        open.insert(id, task.abort_handle());
    }
}

/// One connection, served until the client closes it, the header timeout drops it, or a newer
/// connection takes its slot.
async fn connection(
    stream: TcpStream,
    metrics: Arc<Metrics>,
    board: Arc<Board>,
    open: Arc<Connections>,
    id: u64,
) {
    let service = service_fn(move |req| {
        let (metrics, board) = (Arc::clone(&metrics), Arc::clone(&board));
        async move { Ok::<_, Infallible>(respond(metrics, board, req).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("metrics endpoint: a connection ended: {e}");
    }
    open.remove(id);
}

/// The connections being served, oldest first (ids grow with each accept).
#[derive(Default)]
struct Connections {
    tasks: Mutex<BTreeMap<u64, AbortHandle>>,
    ids: AtomicU64,
}

impl Connections {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn insert(&self, id: u64, task: AbortHandle) {
        let mut tasks = self.lock();
        // A connection that already ended is not kept (one ending right now may stay until
        // it is the oldest: aborting a finished task does nothing).
        if !task.is_finished() {
            tasks.insert(id, task);
        }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Drops the oldest connections until at most `keep` are left.
    fn make_room(&self, keep: usize) {
        let mut tasks = self.lock();
        while tasks.len() > keep {
            if let Some((_, oldest)) = tasks.pop_first() {
                oldest.abort();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, AbortHandle>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A page of the status page: `/` or one day of one stream.
enum PagePath {
    Index,
    Day(String, chrono::NaiveDate),
}

/// The page `path` names, if it names one.
fn page_path(path: &str) -> Option<PagePath> {
    if path == "/" {
        return Some(PagePath::Index);
    }
    let (stream, date) = path.strip_prefix("/day/")?.split_once('/')?;
    let stream = percent_encoding::percent_decode_str(stream)
        .decode_utf8()
        .ok()?;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    (!stream.is_empty()).then(|| PagePath::Day(stream.into_owned(), date))
}

async fn respond(
    metrics: Arc<Metrics>,
    board: Arc<Board>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let page = page_path(path);
    if page.is_none() && !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: /, /day/STREAM/YYYY-MM-DD, /metrics, /healthz, /readyz\n",
        );
    }
    if req.method() != Method::GET {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    if let Some(page) = page {
        let rendered = tokio::task::spawn_blocking(move || render(&metrics, &board, page)).await;
        return rendered.unwrap_or_else(|e| {
            tracing::warn!("status page: rendering failed: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n")
        });
    }
    match path {
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
            r.headers_mut()
                .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        "/readyz" => match metrics.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        _ => text(StatusCode::OK, "alive\n"),
    }
}

/// The status page or a day page, from the board's latest page (on a blocking thread).
fn render(metrics: &Metrics, board: &Board, page: PagePath) -> Response<Full<Bytes>> {
    let Some(latest) = board.latest() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no status page yet: the sensor flow has not read the store (no sensor flow, or no pass finished)\n",
        );
    };
    let body = match page {
        PagePath::Index => {
            let view = View {
                now: board.now(),
                silent_after: board.silent_after,
                ready: Some(metrics.ready()),
                unreachable: metrics.failing(Flow::Sensors),
                links: Links::Server,
            };
            html::page(&latest, &view)
        }
        PagePath::Day(stream, date) => {
            let day = (latest.streams.iter())
                .find(|s| s.stream == stream)
                .and_then(|s| s.day_of(date));
            match day {
                Some(day) => html::day_page(&stream, date, &day),
                None => {
                    return text(
                        StatusCode::NOT_FOUND,
                        "not found: no such stream, or the day is outside the page's window\n",
                    )
                }
            }
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE_HEADER,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(html::CSP));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE_HEADER,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
