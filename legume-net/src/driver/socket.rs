//! A non-blocking UDP socket built with socket2, with large buffers.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::batch::{RecvBatch, SendBatch};
#[cfg(target_os = "linux")]
use super::mmsg;

/// Socket buffer size requested for each direction; the OS may grant less
/// (Linux caps it at `net.core.rmem_max` / `wmem_max`).
pub(crate) const REQUESTED_BUFFER: usize = 4 << 20;

/// Socket buffer sizes the OS granted.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct BufferSizes {
    /// Receive buffer, bytes.
    pub recv: usize,
    /// Send buffer, bytes.
    pub send: usize,
}

/// What a [`Server`](crate::Server)'s socket moved: every datagram read or
/// written, whatever became of it (see `EndpointStats` and each
/// connection's `Stats` for that).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Datagrams read from the socket.
    pub datagrams_received: u64,
    /// UDP payload bytes read from the socket.
    pub bytes_received: u64,
    /// Datagrams the socket accepted for sending.
    pub datagrams_sent: u64,
    /// UDP payload bytes the socket accepted for sending.
    pub bytes_sent: u64,
}

/// The driver's socket.
#[derive(Debug)]
pub(crate) struct DriverSocket {
    socket: UdpSocket,
    pub(crate) buffers: BufferSizes,
    /// Whether the kernel coalesces received datagrams (Linux GRO); the
    /// receive buffers must then hold 64 KiB per slot.
    pub(crate) gro: bool,
    /// Whether sends use segmentation offload (Linux GSO); turned off for
    /// good if the kernel refuses it.
    gso: AtomicBool,
}

impl DriverSocket {
    /// Binds to `addr`, non-blocking, with buffers sized for bursts, and
    /// with UDP offload where the kernel has it if `offload`.
    pub(crate) fn bind(addr: SocketAddr, offload: bool) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: a smaller buffer still works, it only drops bursts sooner.
        let _ = socket.set_recv_buffer_size(REQUESTED_BUFFER);
        let _ = socket.set_send_buffer_size(REQUESTED_BUFFER);
        socket.bind(&addr.into())?;
        Self::from_std(socket.into(), offload)
    }

    /// Takes over a bound socket the app made: non-blocking from now on,
    /// with UDP offload where the kernel has it if `offload`. Its buffer
    /// sizes are the app's to choose and are left as they are.
    pub(crate) fn from_std(socket: UdpSocket, offload: bool) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let buffers = {
            let s = SockRef::from(&socket);
            BufferSizes {
                recv: s.recv_buffer_size().unwrap_or(0),
                send: s.send_buffer_size().unwrap_or(0),
            }
        };
        #[cfg(target_os = "linux")]
        let (gro, gso) = (
            offload && mmsg::enable_gro(&socket),
            offload && mmsg::gso_supported(&socket),
        );
        #[cfg(not(target_os = "linux"))]
        let (gro, gso) = {
            let _ = offload;
            (false, false)
        };
        Ok(DriverSocket {
            socket,
            buffers,
            gro,
            gso: AtomicBool::new(gso),
        })
    }

    /// Points the socket at `peer`, so the OS filters other sources and
    /// reports ICMP errors (again, for each server address tried).
    pub(crate) fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(peer)
    }

    /// Binds to `local` (by default an ephemeral port of the unspecified
    /// address of `peer`'s family) and connects to `peer`, so the OS filters
    /// other sources and reports ICMP errors.
    pub(crate) fn connect_to(
        local: Option<SocketAddr>,
        peer: SocketAddr,
        offload: bool,
    ) -> io::Result<Self> {
        let local = local.unwrap_or(match peer {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        });
        let s = Self::bind(local, offload)?;
        s.socket.connect(peer)?;
        Ok(s)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads waiting datagrams into `batch` without blocking, about `max`
    /// at most (a GRO slot may bring more): `Ok(n)`, or `WouldBlock` when
    /// none is waiting. Linux reads them with one `recvmmsg`; elsewhere one
    /// datagram per call.
    fn recv_batch(&self, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
        batch.datagrams.clear();
        #[cfg(target_os = "linux")]
        {
            mmsg::recv(&self.socket, batch, max)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = max;
            let (n, from) = self.socket.recv_from(&mut batch.buf[..batch.slot])?;
            batch.push_slot(0, n, None, from);
            Ok(1)
        }
    }

    /// Reads up to about `budget` datagrams (a GRO slot may bring a few
    /// more), handing each to `each` with its source. An error goes to
    /// `error`; reading goes on after an ICMP report about one peer and
    /// stops after any other error, or when nothing more is waiting.
    pub(crate) fn receive(
        &self,
        batch: &mut RecvBatch,
        mut budget: usize,
        mut each: impl FnMut(&[u8], SocketAddr),
        mut error: impl FnMut(io::Error),
    ) {
        while budget > 0 {
            match self.recv_batch(batch, budget) {
                Ok(n) => {
                    budget -= n.min(budget);
                    for i in 0..n {
                        let (bytes, from) = batch.get(i);
                        each(bytes, from);
                    }
                }
                Err(e) if is_would_block(&e) => break,
                Err(e) => {
                    let go_on = is_peer_error(&e);
                    error(e);
                    if !go_on {
                        break;
                    }
                    budget -= 1;
                }
            }
        }
    }

    /// Sends every datagram of `batch` and empties it; `done` hears of each
    /// one sent (`Ok(bytes)`) or failed (`Err`). A full socket buffer drops
    /// the rest of the batch, as it would drop them one by one, and makes
    /// this return `true`: the protocol sees losses and resends.
    pub(crate) fn send_batch(
        &self,
        batch: &mut SendBatch,
        mut done: impl FnMut(Option<SocketAddr>, io::Result<usize>),
    ) -> bool {
        let mut i = 0;
        let mut full = false;
        while i < batch.count {
            match self.send_from(batch, i) {
                Ok(n) => {
                    for j in i..i + n {
                        let (bytes, to) = batch.get(j);
                        done(to, Ok(bytes.len()));
                    }
                    i += n.max(1);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_would_block(&e) => {
                    full = true;
                    break;
                }
                Err(e) => {
                    done(batch.get(i).1, Err(e));
                    i += 1;
                }
            }
        }
        batch.clear();
        full
    }

    /// Sends datagrams of `batch` from index `start`: how many went.
    fn send_from(&self, batch: &SendBatch, start: usize) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            mmsg::send(&self.socket, batch, start, &self.gso)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (bytes, to) = batch.get(start);
            match to {
                Some(to) => self.socket.send_to(bytes, to)?,
                None => self.socket.send(bytes)?,
            };
            Ok(1)
        }
    }

    /// Sends one datagram (the conditioner's delayed ones).
    pub(crate) fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(buf, to)
    }

    /// Sends one datagram on the connected socket.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }

    /// Blocks until a datagram is waiting or `timeout` passes; returns whether
    /// one is waiting. Linux waits with one `ppoll`.
    #[cfg(target_os = "linux")]
    pub(crate) fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        if timeout.is_zero() {
            return Ok(false);
        }
        mmsg::wait_readable(&self.socket, timeout)
    }

    /// Blocks until a datagram is waiting or `timeout` passes; returns whether
    /// one is waiting. The socket is non-blocking again afterwards.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        if timeout.is_zero() {
            return Ok(false);
        }
        self.socket.set_nonblocking(false)?;
        self.socket.set_read_timeout(Some(timeout))?;
        let mut probe = [0u8; 1];
        let result = self.socket.peek_from(&mut probe);
        self.socket.set_nonblocking(true)?;
        match result {
            Err(e) if is_would_block(&e) => Ok(false),
            // Data, or an error the next receive will report.
            _ => Ok(true),
        }
    }
}

/// Whether an error only means "nothing now" (including a timed-out wait).
pub(crate) fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether an error is an ICMP report about one peer (port unreachable and
/// the like), which must not stop the endpoint.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// 64 random bits from the operating system's CSPRNG (`getrandom`), for
/// client connection nonces; should it fail, from the
/// standard library's OS-seeded hasher keys.
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| hashed_u64())
}

/// 64 unpredictable bits from the standard library's OS-seeded hasher keys.
fn hashed_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}
