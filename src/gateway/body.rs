//! The body phase's reading (`context.rs`, phase 4): a request body read whole, but never
//! more than the limit a policy asked for — refused on its `Content-Length` before a byte is
//! read, and while reading a body of unknown length (chunked, HTTP/2 without a length).

use super::context::Denial;
use super::proxy::RequestBody;
use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

/// 413: the body is longer than `limit`. The connection is closed (the rest is not read).
pub fn too_large(limit: usize) -> Denial {
    let mut d = Denial::new(413, "urn:warden:problem:content-too-large", "Content Too Large", format!("the request body is larger than {limit} bytes"));
    d.close = true;
    d
}

/// Reads `body` whole; 413 once it passes `limit` bytes (or declares more up front), 400 when
/// its framing is broken. Trailers are dropped.
pub async fn read(mut body: RequestBody, limit: usize) -> Result<Bytes, Denial> {
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "malformed request body");
            let mut d = Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", "the request body is malformed");
            d.close = true;
            d
        })?;
        if let Ok(data) = frame.into_data() {
            len = len.saturating_add(data.len());
            if len > limit {
                return Err(too_large(limit));
            }
            if !data.is_empty() {
                chunks.push(data);
            }
        }
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(len);
            for c in chunks {
                buf.extend_from_slice(&c);
            }
            buf.freeze()
        }
    })
}

/// The buffered bytes as the body sent upstream (with their exact length).
pub fn full(bytes: Bytes) -> RequestBody {
    http_body_util::Full::new(bytes).map_err(|e: std::convert::Infallible| match e {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body of unknown length (like a chunked one): frames one by one, no size hint.
    struct Chunks(Vec<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = super::super::proxy::BoxError;

        fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready((!self.0.is_empty()).then(|| Ok(Frame::data(self.0.remove(0)))))
        }
    }

    #[tokio::test]
    async fn a_body_is_read_whole_up_to_the_limit_and_refused_past_it() {
        let body = || Chunks(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"def")]).boxed_unsync();
        assert_eq!(read(body(), 6).await.unwrap(), "abcdef");
        let denial = read(body(), 5).await.unwrap_err();
        assert_eq!((denial.problem.status, denial.close), (413, true));
        // A declared length past the limit is refused before reading.
        assert_eq!(read(full(Bytes::from_static(b"0123456789")), 9).await.unwrap_err().problem.status, 413);
        assert_eq!(read(full(Bytes::new()), 0).await.unwrap(), "");
    }
}
