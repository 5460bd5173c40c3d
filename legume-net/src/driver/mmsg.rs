//! Linux system calls the standard library does not wrap: `recvmmsg` and
//! `sendmmsg` (several datagrams per call), UDP segmentation offload (GSO:
//! one run of equal-sized datagrams to one peer handed to the kernel as one
//! buffer) and receive offload (GRO: the kernel hands over datagrams of one
//! flow coalesced), and `ppoll` (one call to wait with a sub-millisecond
//! timeout). The crate's `unsafe` code is here; each call gets pointers into
//! buffers that outlive it.

use std::io;
use std::mem;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{SockAddr, SockAddrStorage};

use super::batch::{RecvBatch, SendBatch, BATCH};

/// Room for one control message carrying an `int` (GRO) or a `u16` (GSO),
/// aligned for `cmsghdr`.
type CmsgBuf = [u64; 4];

/// Datagrams per GSO send at most (the kernel's `UDP_MAX_SEGMENTS` is 64
/// or more).
const MAX_SEGMENTS: usize = 64;

/// UDP payload bytes per GSO send at most: under IPv4's 65,507.
const MAX_GSO_BYTES: usize = 65_000;

/// Largest segment sent with GSO. A segment longer than the path MTU is an
/// error (`EINVAL`) where plain sends would fragment, so only segments that
/// fit Ethernet's 1,500-byte MTU are grouped.
const MAX_GSO_SEGMENT: usize = 1_472;

fn setsockopt_int(socket: &UdpSocket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an int of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            ptr::addr_of!(value).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns on GRO for the socket; whether the kernel took it (Linux 5.0+).
pub(super) fn enable_gro(socket: &UdpSocket) -> bool {
    setsockopt_int(socket, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// Whether the kernel knows GSO for UDP (Linux 4.18+).
pub(super) fn gso_supported(socket: &UdpSocket) -> bool {
    let mut value: i32 = 0;
    let mut len = mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: a valid fd, an int and its length.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    r == 0
}

/// Reads up to `max` slots of waiting datagrams without blocking (a slot
/// holds one datagram, or with GRO several of one source). Returns how many
/// datagrams were read; `WouldBlock` when none was waiting.
pub(super) fn recv(socket: &UdpSocket, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
    let slots = max.clamp(1, batch.slots);
    let mut names: [SockAddrStorage; BATCH] = std::array::from_fn(|_| SockAddrStorage::zeroed());
    let mut controls: [CmsgBuf; BATCH] = [[0; 4]; BATCH];
    // SAFETY: all-zero iovec and mmsghdr are valid values (null pointers,
    // zero lengths); every field the kernel reads is set below.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    let base = batch.buf.as_mut_ptr();
    for i in 0..slots {
        iovs[i] = libc::iovec {
            // SAFETY: slot `i` lies inside `buf`, which holds `slots` slots.
            iov_base: unsafe { base.add(i * batch.slot) }.cast(),
            iov_len: batch.slot,
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = ptr::addr_of_mut!(names[i]).cast();
        h.msg_namelen = names[i].size_of();
        h.msg_iov = ptr::addr_of_mut!(iovs[i]);
        h.msg_iovlen = 1;
        h.msg_control = controls[i].as_mut_ptr().cast();
        h.msg_controllen = mem::size_of::<CmsgBuf>();
    }
    // SAFETY: `hdrs[..slots]` point into `names`, `controls`, `iovs` and
    // `batch.buf`, all alive and not otherwise borrowed during the call.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            slots as libc::c_uint,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    for (i, name) in names.into_iter().enumerate().take(n as usize) {
        let h = &hdrs[i].msg_hdr;
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
        let addr = unsafe { SockAddr::new(name, h.msg_namelen) };
        // A UDP socket only receives from IPv4 or IPv6 sources.
        let Some(from) = addr.as_socket() else {
            continue;
        };
        let segment = gro_segment(h);
        batch.push_slot(i, hdrs[i].msg_len as usize, segment, from);
    }
    Ok(batch.datagrams.len())
}

/// The GRO segment size the kernel reported for a coalesced slot, if any.
fn gro_segment(h: &libc::msghdr) -> Option<usize> {
    // SAFETY: `h` was filled by recvmmsg; its control buffer is alive and
    // `msg_controllen` says how much of it the kernel wrote. The CMSG macros
    // only walk within that length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(h);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_UDP && c.cmsg_type == libc::UDP_GRO {
                let size = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
                return usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(h, cmsg);
        }
    }
    None
}

/// Sends the datagrams of `batch` from index `start`. Returns how many the
/// socket took (at least one), or the error of the first one. With `gso`
/// on, each run of datagrams to one peer whose sizes are equal (the last
/// may be shorter) goes as one buffer the kernel splits; should the kernel
/// refuse that, `gso` is turned off and the datagrams go one by one.
pub(super) fn send(
    socket: &UdpSocket,
    batch: &SendBatch,
    start: usize,
    gso: &AtomicBool,
) -> io::Result<usize> {
    let count = batch.count - start;
    if count == 0 {
        return Ok(0);
    }
    let use_gso = gso.load(Ordering::Relaxed);
    match send_groups(socket, batch, start, use_gso) {
        Err(e) if use_gso && is_gso_refusal(&e) => {
            // EIO: the device cannot segment; EINVAL: a segment over the
            // path MTU or an old kernel. Plain sends still work.
            if e.raw_os_error() == Some(libc::EIO) {
                gso.store(false, Ordering::Relaxed);
            }
            send_groups(socket, batch, start, false)
        }
        other => other,
    }
}

fn is_gso_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP)
    )
}

/// The length of the GSO group that starts at `first`: datagrams to the
/// same peer, all as long as the first but the last, which may be shorter.
fn group_len(batch: &SendBatch, first: usize) -> usize {
    let (head, to) = batch.get(first);
    let segment = head.len();
    if segment == 0 || segment > MAX_GSO_SEGMENT {
        return 1;
    }
    let mut total = segment;
    let mut n = 1;
    while first + n < batch.count && n < MAX_SEGMENTS {
        let (next, next_to) = batch.get(first + n);
        if next_to != to || next.is_empty() || next.len() > segment {
            break;
        }
        if total + next.len() > MAX_GSO_BYTES {
            break;
        }
        total += next.len();
        n += 1;
        if next.len() < segment {
            break;
        }
    }
    n
}

fn send_groups(
    socket: &UdpSocket,
    batch: &SendBatch,
    start: usize,
    gso: bool,
) -> io::Result<usize> {
    let count = batch.count - start;
    let mut names: [Option<SockAddr>; BATCH] = std::array::from_fn(|_| None);
    let mut controls: [CmsgBuf; BATCH] = [[0; 4]; BATCH];
    let mut sizes = [0usize; BATCH];
    // SAFETY: as in `recv`.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (i, iov) in iovs.iter_mut().enumerate().take(count) {
        let (bytes, _) = batch.get(start + i);
        *iov = libc::iovec {
            // The kernel only reads through this pointer.
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
    }
    let mut groups = 0;
    let mut i = 0;
    while i < count {
        let n = if gso { group_len(batch, start + i) } else { 1 };
        let (head, to) = batch.get(start + i);
        names[groups] = to.map(SockAddr::from);
        let h = &mut hdrs[groups].msg_hdr;
        if let Some(name) = &names[groups] {
            h.msg_name = name.as_ptr().cast_mut().cast();
            h.msg_namelen = name.len();
        }
        h.msg_iov = ptr::addr_of_mut!(iovs[i]);
        h.msg_iovlen = n;
        if n > 1 {
            set_gso_segment(h, &mut controls[groups], head.len() as u16);
        }
        sizes[groups] = n;
        groups += 1;
        i += n;
    }
    // SAFETY: `hdrs[..groups]` point into `names`, `controls`, `iovs` and
    // `batch.buf`, all alive until the call returns.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            groups as libc::c_uint,
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sizes[..sent as usize].iter().sum())
}

/// Attaches a `UDP_SEGMENT` control message of `segment` bytes to `h`.
fn set_gso_segment(h: &mut libc::msghdr, control: &mut CmsgBuf, segment: u16) {
    h.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic; the buffer holds CMSG_SPACE(2)
    // bytes (checked below), so the first header and its data lie inside it.
    unsafe {
        let space = libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize;
        debug_assert!(space <= mem::size_of::<CmsgBuf>());
        h.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(h);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as usize;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
}

/// Blocks until a datagram (or an error) is waiting, or `timeout` passes.
pub(super) fn wait_readable(socket: &UdpSocket, timeout: Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd and a valid timespec, both alive for the call.
    let n = unsafe { libc::ppoll(&mut fd, 1, &ts, ptr::null()) };
    match n {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            // A signal cut the wait short: the caller just updates early.
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn batch(datagrams: &[(usize, u16)]) -> SendBatch {
        let mut b = SendBatch::new(MAX_GSO_SEGMENT);
        for &(len, port) in datagrams {
            b.commit(len, Some(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        b
    }

    fn groups(b: &SendBatch) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.count {
            let n = group_len(b, i);
            out.push(n);
            i += n;
        }
        out
    }

    #[test]
    fn gso_groups_equal_sizes_to_one_peer_with_a_shorter_last() {
        let b = batch(&[
            (1400, 1),
            (1400, 1),
            (900, 1), // shorter: ends the group
            (1400, 1),
            (1400, 2), // another peer
            (1000, 2),
            (1200, 2), // longer than the segment: a new group
            (0, 2),    // empty: alone
        ]);
        assert_eq!(groups(&b), [3, 1, 2, 1, 1]);
    }

    #[test]
    fn gso_groups_stay_under_the_udp_payload_limit() {
        let b = batch(&[(MAX_GSO_SEGMENT, 1); BATCH]);
        let g = groups(&b);
        assert!(
            g.iter().all(|&n| n * MAX_GSO_SEGMENT <= MAX_GSO_BYTES),
            "{g:?}"
        );
        assert_eq!(g.iter().sum::<usize>(), BATCH);
        assert_eq!(g[0], BATCH.min(MAX_GSO_BYTES / MAX_GSO_SEGMENT));
    }

    #[test]
    fn oversized_segments_are_not_grouped() {
        let mut b = SendBatch::new(4000);
        for _ in 0..3 {
            b.commit(MAX_GSO_SEGMENT + 1, None);
        }
        assert_eq!(groups(&b), [1, 1, 1]);
    }
}
