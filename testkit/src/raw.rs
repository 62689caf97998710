//! A request-response codec for peers that ignore Tern's framing: it writes the request bytes exactly as
//! given, closes its half of the stream, and reads the answer either as raw bytes ([`Bytes`]) or as one
//! frame of a Tern wire message ([`Framed`]).

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::{self, ProtocolSupport};
use tern_node::frame::{WireMessage, read_frame};

/// The most bytes [`Bytes`] reads of an answer.
pub const MAX_RAW_ANSWER: u64 = 2 * 1024 * 1024;

/// How long a raw request may wait for its answer.
pub const RAW_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How a [`RawCodec`] reads the answer to what it wrote.
pub trait ReadAnswer: 'static {
    type Answer: Send + 'static;
    fn read<T>(io: &mut T) -> impl Future<Output = io::Result<Self::Answer>> + Send
    where
        T: AsyncRead + Unpin + Send;
}

/// Whatever comes back until the stream ends (at most [`MAX_RAW_ANSWER`] bytes; possibly none).
pub enum Bytes {}

impl ReadAnswer for Bytes {
    type Answer = Vec<u8>;
    async fn read<T>(io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(MAX_RAW_ANSWER).read_to_end(&mut buf).await?;
        Ok(buf)
    }
}

/// One frame of `M`, decoded as Tern's own codec decodes it (so a missing answer is its typed error).
pub struct Framed<M>(PhantomData<fn() -> M>);

impl<M: WireMessage> ReadAnswer for Framed<M> {
    type Answer = M;
    async fn read<T>(io: &mut T) -> io::Result<M>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }
}

/// Writes request bytes verbatim and reads the answer as `R` says. It only sends: reading a request or
/// writing a response is an error.
pub struct RawCodec<R = Bytes>(PhantomData<fn() -> R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R> Clone for RawCodec<R> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<R: ReadAnswer> request_response::Codec for RawCodec<R> {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = R::Answer;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the raw codec only sends"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<R::Answer>
    where
        T: AsyncRead + Unpin + Send,
    {
        R::read(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: R::Answer,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the raw codec only sends"))
    }
}

/// An outbound-only request-response behaviour writing raw bytes on `protocol`.
pub fn raw_behaviour<R: ReadAnswer>(
    protocol: StreamProtocol,
) -> request_response::Behaviour<RawCodec<R>> {
    request_response::Behaviour::with_codec(
        RawCodec::default(),
        [(protocol, ProtocolSupport::Outbound)],
        request_response::Config::default().with_request_timeout(RAW_REQUEST_TIMEOUT),
    )
}

/// `payload` as a frame on the wire carries it: a 4-byte big-endian length, then the bytes (whatever they
/// are, unlike [`encode_frame`](tern_node::frame::encode_frame), which only frames valid messages).
pub fn length_prefixed(payload: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}
