//! What the edge answers with, and upgraded connections' tunnels.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;

use super::InFlightGuard;

/// Copies bytes both ways between an upgraded client and upstream
/// connection; the in-flight guard lives as long as the tunnel.
pub(super) async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _guard: InFlightGuard,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
}

/// What the edge answers with: the upstream's body, its own page, or
/// nothing (a switched protocol). A concrete type: no box per response.
pub enum EdgeBody {
    Upstream(GuardedBody),
    Page(Full<Bytes>),
    Empty,
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            EdgeBody::Upstream(body) => Pin::new(body).poll_frame(cx),
            EdgeBody::Page(page) => Pin::new(page).poll_frame(cx).map_err(|never| match never {}),
            EdgeBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EdgeBody::Upstream(body) => body.is_end_stream(),
            EdgeBody::Page(page) => page.is_end_stream(),
            EdgeBody::Empty => true,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            EdgeBody::Upstream(body) => body.size_hint(),
            EdgeBody::Page(page) => page.size_hint(),
            EdgeBody::Empty => hyper::body::SizeHint::with_exact(0),
        }
    }
}

/// A response body that keeps its request counted in flight until it has
/// been sent in full (or the client went away).
pub struct GuardedBody {
    pub(super) inner: Incoming,
    pub(super) _guard: InFlightGuard,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
