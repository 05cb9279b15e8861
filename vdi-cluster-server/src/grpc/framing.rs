//! gRPC framing, checked as a request's bytes arrive and before tonic
//! reads them: a frame that does not hold together is the sender's bad
//! input, answered `INVALID_ARGUMENT` as the service definition promises,
//! where tonic would answer `INTERNAL`.
//!
//! A request body is a run of frames: a flag byte (0, or 1 for a message
//! compressed with the request's `grpc-encoding`), a four-byte big-endian
//! length, then that many bytes. Refused as `INVALID_ARGUMENT`: another
//! flag, the compressed flag without a `grpc-encoding` (the gRPC
//! compression document asks for `INTERNAL`; for a server that is the
//! client's fault, and the service definition's promise wins), a body
//! that ends inside a frame (a length prefix longer than what follows),
//! and a request of a unary RPC with no message at all. A length over
//! [`MAX_MESSAGE_BYTES`] is `RESOURCE_EXHAUSTED`, as other gRPC servers
//! answer it, before any of it is buffered.
//!
//! The check wraps the request body ([`checked`]); its error is a
//! [`Status`], which tonic answers as it is.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::{HeaderMap, Request};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

/// Largest message a request may carry: tonic's default limit, checked
/// before the message is read.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

const HEADER_LEN: usize = 5;

/// What is wrong with a request's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// A flag byte other than 0 or 1.
    BadFlag(u8),
    /// The compressed flag, without a `grpc-encoding`.
    CompressedWithoutEncoding,
    /// A length prefix over the limit.
    TooLarge { len: usize },
    /// The body ended `missing` bytes short of the frame it began.
    Truncated { missing: usize },
    /// A unary request without a message.
    NoMessage,
}

impl FramingError {
    /// The status the request is answered with.
    pub(crate) fn status(&self) -> Status {
        match self {
            Self::BadFlag(flag) => Status::invalid_argument(format!(
                "malformed gRPC frame: flag byte {flag} (0: plain, 1: compressed)"
            )),
            Self::CompressedWithoutEncoding => Status::invalid_argument(
                "malformed gRPC frame: the compressed flag is set, but the request names no grpc-encoding",
            ),
            Self::TooLarge { len } => Status::resource_exhausted(format!(
                "the gRPC message is {len} bytes, over the limit of {MAX_MESSAGE_BYTES}"
            )),
            Self::Truncated { missing } => Status::invalid_argument(format!(
                "malformed gRPC frame: the body ends {missing} bytes short of what its length prefix announced"
            )),
            Self::NoMessage => Status::invalid_argument("the request carries no gRPC message"),
        }
    }
}

/// The framing of one request body, fed chunk by chunk.
#[derive(Debug)]
pub(crate) struct Frames {
    compressed_ok: bool,
    needs_message: bool,
    header: [u8; HEADER_LEN],
    header_len: usize,
    payload_left: usize,
    messages: usize,
}

impl Frames {
    /// A body where compressed frames are allowed (`compressed_ok`: the
    /// request names a `grpc-encoding`) and a message is needed or not.
    pub(crate) fn new(compressed_ok: bool, needs_message: bool) -> Self {
        Self {
            compressed_ok,
            needs_message,
            header: [0; HEADER_LEN],
            header_len: 0,
            payload_left: 0,
            messages: 0,
        }
    }

    /// Takes the next bytes of the body.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<(), FramingError> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(chunk.len());
                self.payload_left -= n;
                chunk = &chunk[n..];
                continue;
            }
            let n = (HEADER_LEN - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&chunk[..n]);
            self.header_len += n;
            chunk = &chunk[n..];
            if self.header_len == HEADER_LEN {
                self.header_len = 0;
                self.start_frame()?;
            }
        }
        Ok(())
    }

    fn start_frame(&mut self) -> Result<(), FramingError> {
        match self.header[0] {
            0 => {}
            1 if self.compressed_ok => {}
            1 => return Err(FramingError::CompressedWithoutEncoding),
            flag => return Err(FramingError::BadFlag(flag)),
        }
        let [_, a, b, c, d] = self.header;
        let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        if len > MAX_MESSAGE_BYTES {
            return Err(FramingError::TooLarge { len });
        }
        self.payload_left = len;
        self.messages += 1;
        Ok(())
    }

    /// The body ended: every frame begun must be complete.
    pub(crate) fn finish(&self) -> Result<(), FramingError> {
        if self.header_len > 0 {
            return Err(FramingError::Truncated {
                missing: HEADER_LEN - self.header_len,
            });
        }
        if self.payload_left > 0 {
            return Err(FramingError::Truncated {
                missing: self.payload_left,
            });
        }
        if self.needs_message && self.messages == 0 {
            return Err(FramingError::NoMessage);
        }
        Ok(())
    }
}

/// A request body whose framing is checked as it is read.
#[derive(Debug)]
pub(crate) struct Checked<B> {
    inner: B,
    frames: Frames,
    failed: bool,
}

impl<B> Body for Checked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let error = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.data_ref().map(|data| this.frames.feed(data)) {
                Some(Err(e)) => e,
                _ => return Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => match this.frames.finish() {
                Ok(()) => return Poll::Ready(None),
                Err(e) => e,
            },
        };
        this.failed = true;
        Poll::Ready(Some(Err(Box::new(error.status()))))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether the request names a compression (anything but `identity`).
fn names_encoding(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-encoding")
        .is_some_and(|e| e.as_bytes() != b"identity")
}

/// `request` with its body checked; every RPC's request but
/// reflection's (a stream that may be empty) needs a message.
pub(crate) fn checked(request: Request<tonic::body::Body>) -> Request<tonic::body::Body> {
    let compressed_ok = names_encoding(request.headers());
    let needs_message = !request.uri().path().starts_with("/grpc.reflection.");
    request.map(|inner| {
        tonic::body::Body::new(Checked {
            inner,
            frames: Frames::new(compressed_ok, needs_message),
            failed: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn check(body: &[u8], split: usize) -> Result<(), FramingError> {
        let mut frames = Frames::new(false, true);
        let (a, b) = body.split_at(split.min(body.len()));
        frames.feed(a)?;
        frames.feed(b)?;
        frames.finish()
    }

    #[test]
    fn whole_frames_pass_however_the_bytes_are_split() {
        let body = [frame(0, b"hello"), frame(0, b"")].concat();
        for split in 0..=body.len() {
            assert_eq!(check(&body, split), Ok(()), "split at {split}");
        }
    }

    #[test]
    fn malformed_frames_are_named() {
        assert_eq!(check(&frame(2, b"x"), 1), Err(FramingError::BadFlag(2)));
        assert_eq!(
            check(&frame(1, b"x"), 3),
            Err(FramingError::CompressedWithoutEncoding)
        );
        let mut long = frame(0, b"abc");
        long[4] = 9;
        assert_eq!(check(&long, 2), Err(FramingError::Truncated { missing: 6 }));
        assert_eq!(
            check(&[0, 0, 0], 1),
            Err(FramingError::Truncated { missing: 2 })
        );
        assert_eq!(check(&[], 0), Err(FramingError::NoMessage));
        let huge = [0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            check(&huge, 5),
            Err(FramingError::TooLarge { .. })
        ));
        let mut compressed = Frames::new(true, true);
        compressed.feed(&frame(1, b"gz")).unwrap();
        compressed.finish().unwrap();
        assert!(Frames::new(false, false).finish().is_ok());
    }

    #[test]
    fn every_error_is_a_client_error() {
        for e in [
            FramingError::BadFlag(7),
            FramingError::CompressedWithoutEncoding,
            FramingError::Truncated { missing: 1 },
            FramingError::NoMessage,
        ] {
            assert_eq!(e.status().code(), tonic::Code::InvalidArgument, "{e:?}");
        }
        assert_eq!(
            FramingError::TooLarge { len: 1 << 30 }.status().code(),
            tonic::Code::ResourceExhausted
        );
    }
}
