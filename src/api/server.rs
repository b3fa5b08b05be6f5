//! The HTTP/1.1 server: an accept loop that serves each connection with hyper, over TLS when
//! `tls` is set. Connections are capped (`max_connections`, also kept below the open-file
//! limit): one over the cap is answered "Slow down." and closed at once. On shutdown it stops
//! accepting and asks every connection to finish: an idle one (or one still sending a request's
//! headers) closes at once, a request still sending its body is answered "shutting down" (see
//! `body::read`), and only requests already being handled (records being made durable) are
//! waited for, so a stalled client cannot hold the drain.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::error::AwsError;
use super::shaped::{Busy, Shaped, Timeouts};
use super::tls::Tls;

/// How the server treats its connections.
#[derive(Clone)]
pub(crate) struct ServeOptions {
    pub(crate) tls: Option<Arc<Tls>>,
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` turns true; then returns once every connection has
/// finished (the caller bounds that wait with the drain deadline).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
    options: ServeOptions,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let conn =
                            connection(stream, router.clone(), stop.clone(), options.clone(), slot);
                        connections.spawn(conn);
                    }
                    Err(_) => {
                        connections.spawn(refuse_busy(stream));
                    }
                }
            }
            // Out of file descriptors, or a connection reset before it was accepted: the loop
            // goes on (a short pause, so a descriptor shortage does not spin).
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection over the cap: told to slow down (as AWS tells a throttled client), then closed.
async fn refuse_busy(mut stream: TcpStream) {
    crate::metrics::SERVER.connections_refused.add(1);
    let answer = AwsError::unavailable("Slow down.").raw_response();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

/// One connection (TLS first when configured), to its end or, after `stop`, to the end of the
/// request being handled.
async fn connection(
    stream: TcpStream,
    router: Router,
    stop: watch::Receiver<bool>,
    options: ServeOptions,
    _slot: OwnedSemaphorePermit,
) {
    let timeouts = Timeouts {
        header: options.header_timeout,
        idle: options.idle_timeout,
    };
    let backstop = options.header_timeout.max(options.idle_timeout);
    let busy = Busy::default();
    match &options.tls {
        None => {
            let io = Shaped::new(stream, timeouts, busy.clone());
            http(io, busy, router, stop, backstop).await;
        }
        Some(tls) => {
            let Some(stream) = handshake(stream, tls).await else {
                return;
            };
            let io = Shaped::new(stream, timeouts, busy.clone());
            http(io, busy, router, stop, backstop).await;
        }
    }
}

/// The TLS handshake; a client speaking plain HTTP to the TLS port is told so in plain HTTP.
async fn handshake(
    stream: TcpStream,
    tls: &Tls,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) {
        return None;
    }
    // A TLS connection starts with a handshake record (content type 22).
    if first[0] != 22 {
        let mut stream = stream;
        let answer =
            AwsError::bad_request("This port speaks HTTPS (TLS): use https:// for this endpoint")
                .raw_response();
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// HTTP/1.1 over `io` until the client is done, or `stop` asks the connection to finish.
async fn http<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: Shaped<S>,
    busy: Busy,
    router: Router,
    mut stop: watch::Receiver<bool>,
    backstop: Duration,
) {
    let inner = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        let handling = busy.enter();
        let response = hyper::service::Service::call(&inner, request);
        async move {
            let response = response.await;
            drop(handling);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A backstop: `Shaped` holds a head back until it is whole and times it out itself (hyper's
    // clock starts with the connection, so it must outlast the idle timeout too).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(backstop + Duration::from_secs(5));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
