//! Linux system calls the standard library does not wrap: `recvmmsg` and
//! `sendmmsg` (several datagrams per call) and `ppoll` (one call to wait for
//! a datagram with a sub-millisecond timeout). The only `unsafe` code of the
//! crate is here; each call gets pointers into buffers that outlive it.

use std::io;
use std::mem;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr;
use std::time::Duration;

use socket2::{SockAddr, SockAddrStorage};

use super::batch::{RecvBatch, SendBatch, BATCH, RECV_SLOT};

/// Reads up to `max` (at most `BATCH`) waiting datagrams without blocking.
/// Returns how many were read; `WouldBlock` when none was waiting.
pub(super) fn recv(socket: &UdpSocket, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
    let max = max.clamp(1, BATCH);
    let mut names: [SockAddrStorage; BATCH] = std::array::from_fn(|_| SockAddrStorage::zeroed());
    // SAFETY: all-zero iovec and mmsghdr are valid values (null pointers,
    // zero lengths); every field the kernel reads is set below.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    let base = batch.buf.as_mut_ptr();
    for i in 0..max {
        iovs[i] = libc::iovec {
            // SAFETY: slot `i` lies inside `buf`, which holds BATCH slots.
            iov_base: unsafe { base.add(i * RECV_SLOT) }.cast(),
            iov_len: RECV_SLOT,
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = ptr::addr_of_mut!(names[i]).cast();
        h.msg_namelen = names[i].size_of();
        h.msg_iov = ptr::addr_of_mut!(iovs[i]);
        h.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..max]` point into `names`, `iovs` and `batch.buf`, all
    // alive and not otherwise borrowed until the call returns.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            max as libc::c_uint,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (i, name) in names.into_iter().enumerate().take(n) {
        batch.lens[i] = (hdrs[i].msg_len as usize).min(RECV_SLOT);
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
        let addr = unsafe { SockAddr::new(name, hdrs[i].msg_hdr.msg_namelen) };
        // A UDP socket only receives from IPv4 or IPv6 sources.
        batch.from[i] = addr.as_socket().unwrap_or(batch.from[i]);
    }
    batch.count = n;
    Ok(n)
}

/// Sends the datagrams of `batch` from index `start`. Returns how many the
/// socket took (at least one), or the error of the first one.
pub(super) fn send(socket: &UdpSocket, batch: &SendBatch, start: usize) -> io::Result<usize> {
    let count = batch.count - start;
    if count == 0 {
        return Ok(0);
    }
    let names: [Option<SockAddr>; BATCH] = std::array::from_fn(|i| {
        batch
            .to
            .get(start + i)
            .copied()
            .flatten()
            .map(SockAddr::from)
    });
    // SAFETY: as in `recv`.
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for i in 0..count {
        let (bytes, _) = batch.get(start + i);
        iovs[i] = libc::iovec {
            // The kernel only reads through this pointer.
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        if let Some(name) = &names[i] {
            h.msg_name = name.as_ptr().cast_mut().cast();
            h.msg_namelen = name.len();
        }
        h.msg_iov = ptr::addr_of_mut!(iovs[i]);
        h.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..count]` point into `names`, `iovs` and `batch.buf`,
    // all alive until the call returns.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
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
