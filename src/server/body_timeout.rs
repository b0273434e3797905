//! A deadline for receiving a request's body, separate from the whole-request deadline:
//! a client that trickles its body a byte at a time holds a request slot until it is
//! cut off here with a 408, instead of until the request's timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body read fails with once the deadline passes (found by the extractors).
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {ms} ms")]
pub struct BodyTimedOut {
    pub ms: u64,
}

/// Middleware: the body must arrive within `ms` milliseconds of the request head.
pub async fn limit_body_time(State(ms): State<u64>, request: Request, next: Next) -> Response {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let request = request.map(|inner| {
        Body::new(TimedBody {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            ms,
        })
    });
    next.run(request).await
}

struct TimedBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    ms: u64,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut { ms: this.ms }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (an extractor's rejection) was caused by [`BodyTimedOut`]: found in
/// its chain of sources, or (for wrappers that drop the chain) by its message.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() || e.to_string().contains(BODY_TIMED_OUT) {
            return true;
        }
        current = e.source();
    }
    false
}

/// The start of [`BodyTimedOut`]'s message.
const BODY_TIMED_OUT: &str = "the request body was not received within";
