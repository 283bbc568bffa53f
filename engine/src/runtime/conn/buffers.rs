//! Each core's I/O buffers, lent to connections only while they have bytes
//! to read or replies to write, so an idle connection holds none.
//!
//! A connection waits for input without a buffer: its read borrows one from
//! the pool for the instant of the (non-blocking) receive and gives it back
//! if nothing came (see [`ReadBuf::read`]). Buffers are one size
//! ([`BUFFER_SIZE`], memcached's read buffer size); a request larger than
//! that grows its connection's buffer, and the growth is drawn from a
//! per-core budget ([`BufferPool::large_limit`]) so that clients declaring
//! big values and sending them slowly cannot grow the server without bound.
//! A buffer grows as the bytes arrive (it doubles, up to the request's
//! length), never to what a request merely declares: a client that declares
//! a megabyte and sends 17 KB holds about 32 KB of the budget, so idle
//! half-sent values cannot lock others out. A holder that stops sending
//! can have its share reclaimed when another connection needs it (see
//! `conns::ConnTable::reclaim_stalled`). When the budget is spent all the
//! same, the connection refuses the value with memcached's out-of-memory
//! reply instead of growing.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_lite::AsyncRead;

/// The size of every pooled buffer: what a connection reads into, and what
/// its replies start in.
pub const BUFFER_SIZE: usize = 16 << 10;

/// Room a request's header (command line, binary header, extras and key)
/// can need besides its value.
pub const HEADER_ROOM: usize = 4096;

/// Most idle buffers of each kind a core keeps for reuse.
pub const MAX_IDLE_BUFFERS: usize = 256;

/// One core's free buffers and its budget for grown ones.
#[derive(Debug)]
pub struct BufferPool {
    reads: RefCell<Vec<Box<[u8]>>>,
    writes: RefCell<Vec<Vec<u8>>>,
    large: Cell<usize>,
    large_limit: usize,
    lent: Cell<usize>,
}

/// A snapshot of a pool, for `stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Buffers lent out now (read and reply buffers).
    pub lent: usize,
    /// Buffers idle in the pool.
    pub idle: usize,
    /// Bytes held by read buffers grown past [`BUFFER_SIZE`].
    pub large_bytes: usize,
}

impl BufferPool {
    /// A pool whose grown read buffers may hold `large_limit` bytes in all
    /// beyond their first [`BUFFER_SIZE`].
    pub fn new(large_limit: usize) -> Self {
        BufferPool {
            reads: RefCell::new(Vec::new()),
            writes: RefCell::new(Vec::new()),
            large: Cell::new(0),
            large_limit,
            lent: Cell::new(0),
        }
    }

    /// What is lent and idle now.
    pub fn usage(&self) -> PoolUsage {
        PoolUsage {
            lent: self.lent.get(),
            idle: self.reads.borrow().len() + self.writes.borrow().len(),
            large_bytes: self.large.get(),
        }
    }

    fn take_read(&self) -> Box<[u8]> {
        self.lent.set(self.lent.get() + 1);
        self.reads
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; BUFFER_SIZE].into_boxed_slice())
    }

    fn give_read(&self, buf: Box<[u8]>) {
        self.lent.set(self.lent.get() - 1);
        self.keep_read(buf);
    }

    /// Keeps a pooled-size read buffer for reuse (while there is room).
    fn keep_read(&self, buf: Box<[u8]>) {
        if buf.len() == BUFFER_SIZE {
            let mut reads = self.reads.borrow_mut();
            if reads.len() < MAX_IDLE_BUFFERS {
                reads.push(buf);
            }
        }
    }

    /// An empty reply buffer with room for [`BUFFER_SIZE`] bytes.
    pub fn take_write(&self) -> Vec<u8> {
        self.lent.set(self.lent.get() + 1);
        self.writes
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_SIZE))
    }

    /// Returns a reply buffer; one that grew is freed rather than kept.
    pub fn give_write(&self, mut buf: Vec<u8>) {
        self.lent.set(self.lent.get() - 1);
        if buf.capacity() == BUFFER_SIZE {
            let mut writes = self.writes.borrow_mut();
            if writes.len() < MAX_IDLE_BUFFERS {
                buf.clear();
                writes.push(buf);
            }
        }
    }

    fn reserve_large(&self, bytes: usize) -> bool {
        let held = self.large.get();
        match held.checked_add(bytes) {
            Some(total) if total <= self.large_limit => {
                self.large.set(total);
                true
            }
            _ => false,
        }
    }

    fn release_large(&self, bytes: usize) {
        self.large.set(self.large.get() - bytes);
    }
}

/// Why a connection's read buffer cannot take more bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// It holds as much as the largest legal request: the request is not one.
    Limit,
    /// Growing it would pass the core's budget for large requests.
    NoRoom,
}

/// A connection's unread bytes, in a buffer borrowed from its core's pool
/// while there are any.
#[derive(Debug)]
pub struct ReadBuf {
    data: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    max: usize,
    /// Bytes of the core's large-request budget this buffer holds.
    large: usize,
}

impl ReadBuf {
    /// An empty buffer that will never grow past `max` bytes.
    pub fn new(max: usize) -> Self {
        ReadBuf {
            data: None,
            start: 0,
            end: 0,
            max: max.max(BUFFER_SIZE),
            large: 0,
        }
    }

    /// The bytes read and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        self.data
            .as_deref()
            .map_or(&[], |d| &d[self.start..self.end])
    }

    /// Bytes the buffer can hold without growing.
    pub fn capacity(&self) -> usize {
        self.data.as_ref().map_or(BUFFER_SIZE, |d| d.len())
    }

    /// Marks `n` bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Gives the buffer back to the pool if it holds nothing.
    pub fn release_if_empty(&mut self, pool: &BufferPool) {
        if self.start == self.end {
            if let Some(data) = self.data.take() {
                pool.release_large(self.large);
                self.large = 0;
                pool.give_read(data);
            }
        }
    }

    /// Whether the buffer is full of one unfinished request, so only
    /// growing makes room.
    pub fn is_full(&self) -> bool {
        self.start == 0 && self.data.as_ref().is_some_and(|d| self.end == d.len())
    }

    /// Makes room for at least one more byte: borrows a buffer, compacts,
    /// or grows within `max` and the pool's budget. The buffer doubles, up
    /// to `need` when that is known (the whole length of the request being
    /// received), so what it takes from the budget follows the bytes that
    /// arrived rather than what the request declared. Growth reallocates
    /// in place where the allocator can (large blocks are remapped, not
    /// copied).
    pub fn make_room(&mut self, pool: &BufferPool, need: Option<usize>) -> Result<(), Full> {
        let data = self.data.get_or_insert_with(|| pool.take_read());
        if self.end < data.len() {
            return Ok(());
        }
        if self.start > 0 {
            data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return Ok(());
        }
        if data.len() >= self.max {
            return Err(Full::Limit);
        }
        let doubled = data.len() * 2;
        let grown = match need {
            Some(need) if need > data.len() => need.min(doubled),
            _ => doubled,
        }
        .min(self.max);
        if !pool.reserve_large(grown - data.len()) {
            return Err(Full::NoRoom);
        }
        self.large += grown - data.len();
        let mut bigger = std::mem::take(data).into_vec();
        bigger.resize(grown, 0);
        *data = bigger.into_boxed_slice();
        Ok(())
    }

    /// Reads what `stream` has into the buffer. While the stream has
    /// nothing, the buffer goes back to the pool (if it holds nothing):
    /// `poll_read` only writes into the slice during the call, so a waiting
    /// read needs no memory of its own. Call [`ReadBuf::make_room`] first.
    pub fn read<'a, S: AsyncRead + Unpin>(
        &'a mut self,
        pool: &'a BufferPool,
        stream: &'a mut S,
    ) -> impl Future<Output = std::io::Result<usize>> + 'a {
        futures_lite::future::poll_fn(move |cx| {
            if self.make_room(pool, None).is_err() {
                return Poll::Ready(Err(std::io::ErrorKind::OutOfMemory.into()));
            }
            let Some(data) = self.data.as_deref_mut() else {
                return Poll::Ready(Err(std::io::ErrorKind::OutOfMemory.into()));
            };
            match Pin::new(&mut *stream).poll_read(cx, &mut data[self.end..]) {
                Poll::Ready(Ok(n)) => {
                    self.end += n;
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.release_if_empty(pool);
                    Poll::Pending
                }
            }
        })
    }

    /// Bytes of the core's large-request budget this buffer holds.
    pub fn large_bytes(&self) -> usize {
        self.large
    }

    /// Gives everything back to the pool (the connection is closing).
    pub fn release(&mut self, pool: &BufferPool) {
        self.start = 0;
        self.end = 0;
        self.release_if_empty(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that has nothing the first time it is polled, then `data`.
    struct Later {
        data: Vec<u8>,
        polled: bool,
    }

    impl AsyncRead for Later {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            if !self.polled {
                self.polled = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_waiting_read_holds_no_buffer() {
        let pool = BufferPool::new(1 << 20);
        let mut buf = ReadBuf::new(1 << 20);
        let mut stream = Later {
            data: b"get k\r\n".to_vec(),
            polled: false,
        };
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        {
            let mut read = std::pin::pin!(buf.read(&pool, &mut stream));
            assert!(read.as_mut().poll(&mut cx).is_pending());
            assert_eq!(pool.usage().lent, 0, "nothing lent while waiting");
            assert_eq!(pool.usage().idle, 1);
            assert!(matches!(read.as_mut().poll(&mut cx), Poll::Ready(Ok(7))));
        }
        assert_eq!(buf.unread(), b"get k\r\n");
        assert_eq!(pool.usage().lent, 1);
        buf.consume(7);
        buf.release_if_empty(&pool);
        assert_eq!(
            pool.usage(),
            PoolUsage {
                lent: 0,
                idle: 1,
                large_bytes: 0
            }
        );
    }

    #[test]
    fn growth_is_drawn_from_the_budget_and_given_back() {
        let pool = BufferPool::new(BUFFER_SIZE);
        let mut a = ReadBuf::new(1 << 20);
        let mut b = ReadBuf::new(1 << 20);
        for buf in [&mut a, &mut b] {
            buf.make_room(&pool, None).expect("a pooled buffer");
            buf.end = BUFFER_SIZE;
        }
        // The first to grow takes the whole budget; the second is refused.
        assert_eq!(a.make_room(&pool, None), Ok(()));
        assert_eq!(a.capacity(), 2 * BUFFER_SIZE);
        assert_eq!(pool.usage().large_bytes, BUFFER_SIZE);
        assert_eq!(b.make_room(&pool, None), Err(Full::NoRoom));
        // Once consumed, the grown buffer is freed and its budget returned.
        a.consume(BUFFER_SIZE);
        a.release_if_empty(&pool);
        assert_eq!(pool.usage().large_bytes, 0);
        assert_eq!(b.make_room(&pool, None), Ok(()));
        b.release(&pool);
        assert_eq!(pool.usage().lent, 0);
        assert_eq!(pool.usage().large_bytes, 0);
    }

    #[test]
    fn growth_follows_the_bytes_that_arrive_not_the_declared_length() {
        let pool = BufferPool::new(200_000);
        let mut a = ReadBuf::new(1 << 20);
        a.make_room(&pool, None).expect("a pooled buffer");
        a.end = BUFFER_SIZE;
        // A request declared at 90 000 bytes: the buffer doubles toward it.
        assert_eq!(a.make_room(&pool, Some(90_000)), Ok(()));
        assert_eq!(a.capacity(), 2 * BUFFER_SIZE);
        assert_eq!(pool.usage().large_bytes, BUFFER_SIZE);
        assert_eq!(a.large_bytes(), BUFFER_SIZE);
        a.data.as_mut().expect("data")[BUFFER_SIZE] = 7;
        a.end = 2 * BUFFER_SIZE;
        assert_eq!(a.make_room(&pool, Some(90_000)), Ok(()));
        assert_eq!(a.capacity(), 4 * BUFFER_SIZE);
        assert_eq!(a.unread()[BUFFER_SIZE], 7, "what was read is kept");
        a.end = 4 * BUFFER_SIZE;
        // The last step stops at the request's length.
        assert_eq!(a.make_room(&pool, Some(90_000)), Ok(()));
        assert_eq!(a.capacity(), 90_000);
        assert_eq!(pool.usage().large_bytes, 90_000 - BUFFER_SIZE);
        a.release(&pool);
        assert_eq!(pool.usage().large_bytes, 0);
        assert_eq!(pool.usage().lent, 0);
    }

    #[test]
    fn a_buffer_never_grows_past_its_bound() {
        let pool = BufferPool::new(usize::MAX);
        let mut buf = ReadBuf::new(BUFFER_SIZE);
        buf.make_room(&pool, None).expect("a pooled buffer");
        buf.end = BUFFER_SIZE;
        assert_eq!(buf.make_room(&pool, None), Err(Full::Limit));
        // Consumed bytes make room by compaction, without growing.
        assert!(buf.is_full());
        buf.consume(10);
        assert_eq!(buf.make_room(&pool, None), Ok(()));
        assert_eq!(buf.capacity(), BUFFER_SIZE);
    }

    #[test]
    fn reply_buffers_that_grew_are_not_kept() {
        let pool = BufferPool::new(0);
        let mut out = pool.take_write();
        out.extend_from_slice(&[1; BUFFER_SIZE + 1]);
        pool.give_write(out);
        assert_eq!(pool.usage(), PoolUsage::default());
        let out = pool.take_write();
        pool.give_write(out);
        assert_eq!(pool.usage().idle, 1);
    }
}
