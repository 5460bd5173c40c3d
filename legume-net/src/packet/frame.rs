//! The frames of a DATA packet's payload (`docs/PROTOCOL.md` section 3):
//! iterating over them, and writing their headers.
//!
//! Iterating never panics on any input; a malformed frame is a
//! [`PacketError`] and ends the iteration.

use legume_core::varint::{read_varint, varint_len, write_varint};
use legume_core::{DecodeError, EncodeError, Reader, Writer};

use super::layout::{
    FRAME_ORDERED, FRAME_ORDERED_FRAGMENT, FRAME_PING, FRAME_RELIABLE, FRAME_RELIABLE_FRAGMENT,
    FRAME_UNRELIABLE,
};
use super::PacketError;

/// The two reliable channels.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub(crate) enum Channel {
    Reliable,
    Ordered,
}

/// One frame of a DATA packet, borrowing its bytes from the datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    Ping,
    Unreliable(&'a [u8]),
    Message {
        channel: Channel,
        id: u16,
        msg: &'a [u8],
    },
    Fragment {
        channel: Channel,
        id: u16,
        index: u16,
        count: u16,
        bytes: &'a [u8],
    },
}

/// Iterates over the frames of a DATA packet's payload.
pub(crate) struct Frames<'a> {
    r: Reader<'a>,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Frames {
            r: Reader::new(payload),
        }
    }

    fn next_frame(&mut self) -> Result<Frame<'a>, PacketError> {
        let r = &mut self.r;
        let kind = r.read_u8()?;
        let frame = match kind {
            FRAME_PING => Frame::Ping,
            FRAME_UNRELIABLE => Frame::Unreliable(read_len_prefixed(r)?),
            FRAME_RELIABLE | FRAME_ORDERED => Frame::Message {
                channel: channel_of(kind == FRAME_ORDERED),
                id: r.read_u16()?,
                msg: read_len_prefixed(r)?,
            },
            FRAME_RELIABLE_FRAGMENT | FRAME_ORDERED_FRAGMENT => {
                let channel = channel_of(kind == FRAME_ORDERED_FRAGMENT);
                let id = r.read_u16()?;
                let index = r.read_u16()?;
                let count = r.read_u16()?;
                let bytes = read_len_prefixed(r)?;
                if count < 2 || index >= count || bytes.is_empty() {
                    return Err(PacketError::BadFragment);
                }
                Frame::Fragment {
                    channel,
                    id,
                    index,
                    count,
                    bytes,
                }
            }
            other => return Err(PacketError::UnknownFrame(other)),
        };
        Ok(frame)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let item = self.next_frame();
        if item.is_err() {
            // Stop after the first error: the rest cannot be framed.
            self.r = Reader::new(&[]);
        }
        Some(item)
    }
}

fn channel_of(ordered: bool) -> Channel {
    if ordered {
        Channel::Ordered
    } else {
        Channel::Reliable
    }
}

fn read_len_prefixed<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = read_varint(r)? as usize;
    r.take(len)
}

/// The bytes a frame header takes before a message or fragment of `len` bytes.
pub(crate) fn frame_overhead(kind: FrameKind, len: usize) -> usize {
    let len_len = varint_len(u32::try_from(len).unwrap_or(u32::MAX));
    match kind {
        FrameKind::Unreliable => 1 + len_len,
        FrameKind::Message => 3 + len_len,
        FrameKind::Fragment => 7 + len_len,
    }
}

/// The frame shapes that carry bytes, for sizing.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum FrameKind {
    Unreliable,
    Message,
    Fragment,
}

/// Writes a PING frame.
pub(crate) fn write_ping(w: &mut Writer<'_>) -> Result<(), EncodeError> {
    w.put_u8(FRAME_PING)
}

/// Writes an UNRELIABLE frame header for a message of `len` bytes.
pub(crate) fn write_unreliable_header(w: &mut Writer<'_>, len: usize) -> Result<(), EncodeError> {
    w.put_u8(FRAME_UNRELIABLE)?;
    write_len(w, len)
}

/// Writes a RELIABLE or ORDERED frame header for a message of `len` bytes.
pub(crate) fn write_message_header(
    w: &mut Writer<'_>,
    channel: Channel,
    id: u16,
    len: usize,
) -> Result<(), EncodeError> {
    w.put_u8(match channel {
        Channel::Reliable => FRAME_RELIABLE,
        Channel::Ordered => FRAME_ORDERED,
    })?;
    w.put_u16(id)?;
    write_len(w, len)
}

/// Writes a fragment frame header for `len` bytes of fragment `index` of `count`.
pub(crate) fn write_fragment_header(
    w: &mut Writer<'_>,
    channel: Channel,
    id: u16,
    index: u16,
    count: u16,
    len: usize,
) -> Result<(), EncodeError> {
    w.put_u8(match channel {
        Channel::Reliable => FRAME_RELIABLE_FRAGMENT,
        Channel::Ordered => FRAME_ORDERED_FRAGMENT,
    })?;
    w.put_u16(id)?;
    w.put_u16(index)?;
    w.put_u16(count)?;
    write_len(w, len)
}

fn write_len(w: &mut Writer<'_>, len: usize) -> Result<(), EncodeError> {
    let len = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        len,
        max: u32::MAX as usize,
    })?;
    write_varint(w, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        write_ping(&mut w).unwrap();
        write_unreliable_header(&mut w, 3).unwrap();
        w.put_slice(&[20, 1, 2]).unwrap();
        write_message_header(&mut w, Channel::Ordered, 65535, 1).unwrap();
        w.put_slice(&[21]).unwrap();
        write_fragment_header(&mut w, Channel::Reliable, 9, 1, 3, 2).unwrap();
        w.put_slice(&[7, 7]).unwrap();
        let frames: Vec<_> = Frames::new(w.written()).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Ping,
                Frame::Unreliable(&[20, 1, 2]),
                Frame::Message {
                    channel: Channel::Ordered,
                    id: 65535,
                    msg: &[21]
                },
                Frame::Fragment {
                    channel: Channel::Reliable,
                    id: 9,
                    index: 1,
                    count: 3,
                    bytes: &[7, 7]
                },
            ]
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        let bad: Vec<_> = Frames::new(&[0x03, 0, 1, 5, 1]).collect();
        assert_eq!(bad.len(), 1);
        assert!(bad[0].is_err());
        assert_eq!(
            Frames::new(&[0x05, 0, 1, 0, 3, 0, 3, 1, 9]).next(),
            Some(Err(PacketError::BadFragment))
        );
        assert_eq!(
            Frames::new(&[0x7F]).next(),
            Some(Err(PacketError::UnknownFrame(0x7F)))
        );
    }
}
