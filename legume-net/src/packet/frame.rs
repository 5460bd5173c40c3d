//! The frames of a DATA packet's payload (`docs/PROTOCOL.md` section 3):
//! iterating over them, and writing their headers.
//!
//! Iterating never panics on any input; a malformed frame is a
//! [`PacketError`] and ends the iteration. Whether a frame's channel exists
//! and has the frame's kind is the connection's check, not this module's.

use legume_core::varint::{read_varint, varint_len, write_varint};
use legume_core::{DecodeError, EncodeError, Reader, Writer};

use super::layout::{
    FRAME_CHANNEL_FRAGMENT, FRAME_CHANNEL_MESSAGE, FRAME_CHANNEL_UNRELIABLE, FRAME_ORDERED,
    FRAME_ORDERED_FRAGMENT, FRAME_PING, FRAME_RELIABLE, FRAME_RELIABLE_FRAGMENT, FRAME_SEQUENCED,
    FRAME_UNRELIABLE,
};
use super::PacketError;

/// How a frame names its channel: the channel's id, and whether the frame
/// type alone names it (the short frames of the default channels 0, 1 and
/// 2) rather than an id byte.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub(crate) struct Channel {
    pub(crate) id: u8,
    pub(crate) short: bool,
}

impl Channel {
    /// Channel `id`, named by an id byte.
    pub(crate) const fn long(id: u8) -> Self {
        Channel { id, short: false }
    }

    /// Channel `id` (0, 1 or 2), named by a short frame type.
    pub(crate) const fn short(id: u8) -> Self {
        Channel { id, short: true }
    }
}

/// One frame of a DATA packet, borrowing its bytes from the datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    Ping,
    Unreliable {
        channel: Channel,
        msg: &'a [u8],
    },
    Sequenced {
        channel: u8,
        number: u32,
        msg: &'a [u8],
    },
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

    #[inline]
    fn next_frame(&mut self) -> Result<Frame<'a>, PacketError> {
        let r = &mut self.r;
        let kind = r.read_u8()?;
        let frame = match kind {
            FRAME_PING => Frame::Ping,
            FRAME_UNRELIABLE => Frame::Unreliable {
                channel: Channel::short(0),
                msg: read_len_prefixed(r)?,
            },
            FRAME_CHANNEL_UNRELIABLE => Frame::Unreliable {
                channel: Channel::long(r.read_u8()?),
                msg: read_len_prefixed(r)?,
            },
            FRAME_SEQUENCED => Frame::Sequenced {
                channel: r.read_u8()?,
                number: r.read_u32()?,
                msg: read_len_prefixed(r)?,
            },
            FRAME_RELIABLE | FRAME_ORDERED | FRAME_CHANNEL_MESSAGE => Frame::Message {
                channel: channel_of(kind, FRAME_ORDERED, r)?,
                id: r.read_u16()?,
                msg: read_len_prefixed(r)?,
            },
            FRAME_RELIABLE_FRAGMENT | FRAME_ORDERED_FRAGMENT | FRAME_CHANNEL_FRAGMENT => {
                let channel = channel_of(kind, FRAME_ORDERED_FRAGMENT, r)?;
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

    #[inline]
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

/// The channel of a reliable frame: named by the short types (channel 1,
/// or 2 for `ordered_type`), or by the id byte that follows a long type.
fn channel_of(kind: u8, ordered_type: u8, r: &mut Reader<'_>) -> Result<Channel, DecodeError> {
    Ok(match kind {
        FRAME_CHANNEL_MESSAGE | FRAME_CHANNEL_FRAGMENT => Channel::long(r.read_u8()?),
        k if k == ordered_type => Channel::short(2),
        _ => Channel::short(1),
    })
}

fn read_len_prefixed<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = read_varint(r)? as usize;
    r.take(len)
}

/// The bytes a frame header takes before a message or fragment of `len`
/// bytes; a long form (not `short`) has one byte more for the channel id.
pub(crate) fn frame_overhead(kind: FrameKind, len: usize, short: bool) -> usize {
    let len_len = varint_len(u32::try_from(len).unwrap_or(u32::MAX));
    let id_byte = usize::from(!short);
    match kind {
        FrameKind::Unreliable => 1 + id_byte + len_len,
        FrameKind::Sequenced => 6 + len_len,
        FrameKind::Message => 3 + id_byte + len_len,
        FrameKind::Fragment => 7 + id_byte + len_len,
    }
}

/// The frame shapes that carry bytes, for sizing.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum FrameKind {
    Unreliable,
    Sequenced,
    Message,
    Fragment,
}

/// Writes a PING frame.
pub(crate) fn write_ping(w: &mut Writer<'_>) -> Result<(), EncodeError> {
    w.put_u8(FRAME_PING)
}

/// Writes an UNRELIABLE (short) or CHANNEL_UNRELIABLE frame header for a
/// message of `len` bytes.
pub(crate) fn write_unreliable_header(
    w: &mut Writer<'_>,
    channel: Channel,
    len: usize,
) -> Result<(), EncodeError> {
    if channel.short {
        w.put_u8(FRAME_UNRELIABLE)?;
    } else {
        w.put_u8(FRAME_CHANNEL_UNRELIABLE)?;
        w.put_u8(channel.id)?;
    }
    write_len(w, len)
}

/// Writes a SEQUENCED frame header for message `number` of `len` bytes.
pub(crate) fn write_sequenced_header(
    w: &mut Writer<'_>,
    channel: u8,
    number: u32,
    len: usize,
) -> Result<(), EncodeError> {
    w.put_u8(FRAME_SEQUENCED)?;
    w.put_u8(channel)?;
    w.put_u32(number)?;
    write_len(w, len)
}

/// Writes a RELIABLE, ORDERED or CHANNEL_MESSAGE frame header for a
/// message of `len` bytes.
pub(crate) fn write_message_header(
    w: &mut Writer<'_>,
    channel: Channel,
    id: u16,
    len: usize,
) -> Result<(), EncodeError> {
    put_type(
        w,
        channel,
        FRAME_RELIABLE,
        FRAME_ORDERED,
        FRAME_CHANNEL_MESSAGE,
    )?;
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
    put_type(
        w,
        channel,
        FRAME_RELIABLE_FRAGMENT,
        FRAME_ORDERED_FRAGMENT,
        FRAME_CHANNEL_FRAGMENT,
    )?;
    w.put_u16(id)?;
    w.put_u16(index)?;
    w.put_u16(count)?;
    write_len(w, len)
}

/// The type byte of a reliable frame: the short type of channel 1 or 2, or
/// the long type and the channel id.
fn put_type(
    w: &mut Writer<'_>,
    channel: Channel,
    reliable: u8,
    ordered: u8,
    long: u8,
) -> Result<(), EncodeError> {
    match (channel.short, channel.id) {
        (true, 1) => w.put_u8(reliable),
        (true, _) => w.put_u8(ordered),
        (false, id) => {
            w.put_u8(long)?;
            w.put_u8(id)
        }
    }
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
        write_unreliable_header(&mut w, Channel::short(0), 3).unwrap();
        w.put_slice(&[20, 1, 2]).unwrap();
        write_message_header(&mut w, Channel::short(2), 65535, 1).unwrap();
        w.put_slice(&[21]).unwrap();
        write_fragment_header(&mut w, Channel::short(1), 9, 1, 3, 2).unwrap();
        w.put_slice(&[7, 7]).unwrap();
        write_unreliable_header(&mut w, Channel::long(4), 1).unwrap();
        w.put_slice(&[22]).unwrap();
        write_sequenced_header(&mut w, 5, 0x0102_0304, 1).unwrap();
        w.put_slice(&[23]).unwrap();
        write_message_header(&mut w, Channel::long(6), 7, 1).unwrap();
        w.put_slice(&[24]).unwrap();
        write_fragment_header(&mut w, Channel::long(31), 8, 0, 2, 1).unwrap();
        w.put_slice(&[25]).unwrap();
        let frames: Vec<_> = Frames::new(w.written()).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Ping,
                Frame::Unreliable {
                    channel: Channel::short(0),
                    msg: &[20, 1, 2]
                },
                Frame::Message {
                    channel: Channel::short(2),
                    id: 65535,
                    msg: &[21]
                },
                Frame::Fragment {
                    channel: Channel::short(1),
                    id: 9,
                    index: 1,
                    count: 3,
                    bytes: &[7, 7]
                },
                Frame::Unreliable {
                    channel: Channel::long(4),
                    msg: &[22]
                },
                Frame::Sequenced {
                    channel: 5,
                    number: 0x0102_0304,
                    msg: &[23]
                },
                Frame::Message {
                    channel: Channel::long(6),
                    id: 7,
                    msg: &[24]
                },
                Frame::Fragment {
                    channel: Channel::long(31),
                    id: 8,
                    index: 0,
                    count: 2,
                    bytes: &[25]
                },
            ]
        );
    }

    #[test]
    fn long_frames_have_the_documented_bytes() {
        // PROTOCOL.md section 3: type, channel, then the short form's fields.
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        write_sequenced_header(&mut w, 3, 258, 1).unwrap();
        w.put_slice(&[20]).unwrap();
        write_message_header(&mut w, Channel::long(4), 5, 1).unwrap();
        w.put_slice(&[21]).unwrap();
        assert_eq!(
            w.written(),
            &[0x08, 3, 0, 0, 1, 2, 1, 20, 0x09, 4, 0, 5, 1, 21]
        );
        assert_eq!(frame_overhead(FrameKind::Sequenced, 1, false), 7);
        assert_eq!(frame_overhead(FrameKind::Message, 1, false), 5);
        assert_eq!(frame_overhead(FrameKind::Message, 1, true), 4);
        assert_eq!(frame_overhead(FrameKind::Fragment, 200, false), 10);
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
            Frames::new(&[0x0A, 7, 0, 1, 0, 3, 0, 3, 1, 9]).next(),
            Some(Err(PacketError::BadFragment))
        );
        assert!(matches!(Frames::new(&[0x08, 1, 0, 0]).next(), Some(Err(_))));
        assert_eq!(
            Frames::new(&[0x7F]).next(),
            Some(Err(PacketError::UnknownFrame(0x7F)))
        );
    }
}
