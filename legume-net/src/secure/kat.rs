//! Known-answer tests: published AEAD vectors through this crate's own
//! wrappers, and pinned values of the token and packet layouts (the same
//! values are in `docs/PROTOCOL.md` section 8.7).

use std::net::SocketAddr;
use std::time::Duration;

use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{ChaCha20Poly1305, Key};

use super::protect::{nonce, open_with_nonce, seal_with_nonce};
use super::token::{xopen, xseal};
use super::*;

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The key, AAD and plaintext shared by RFC 8439 2.8.2 and
/// draft-irtf-cfrg-xchacha-03 A.3.1.
const RFC_KEY: [u8; 32] = [
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
];
const RFC_AAD: [u8; 12] = [
    0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
];
const RFC_PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: \
If I could offer you only one tip for the future, sunscreen would be it.";

/// RFC 8439, section 2.8.2, through the wrappers the packet path uses.
#[test]
fn rfc8439_aead_vector() {
    let nonce = [
        0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
    ];
    let ciphertext = unhex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116",
    );
    let tag = unhex("1ae10b594f09e26a7e902ecbd0600691");
    let cipher = ChaCha20Poly1305::new(&Key::from(RFC_KEY));
    let mut buf = RFC_PLAINTEXT.to_vec();
    let got = seal_with_nonce(&cipher, &nonce, &RFC_AAD, &mut buf);
    assert_eq!(buf, ciphertext);
    assert_eq!(got.to_vec(), tag);
    open_with_nonce(&cipher, &nonce, &RFC_AAD, &mut buf, &got).unwrap();
    assert_eq!(buf, RFC_PLAINTEXT);
}

/// draft-irtf-cfrg-xchacha-03, appendix A.3.1, through the wrappers the
/// token seal uses.
#[test]
fn xchacha_draft_vector() {
    let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
    let ciphertext = unhex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
         731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
         2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
         21f9664c97637da9768812f615c68b13b52e",
    );
    let tag = unhex("c0875924c1c7987947deafd8780acf49");
    let mut buf = RFC_PLAINTEXT.to_vec();
    let got = xseal(&RFC_KEY, &nonce, &RFC_AAD, &mut buf);
    assert_eq!(buf, ciphertext);
    assert_eq!(got.to_vec(), tag);
    xopen(&RFC_KEY, &nonce, &RFC_AAD, &mut buf, &got).unwrap();
    assert_eq!(buf, RFC_PLAINTEXT);
}

/// The packet nonce is `session ‖ seq` big-endian; pinned ciphertext.
#[test]
fn packet_seal_kat() {
    assert_eq!(
        nonce(0x0A0B_0C0D, 0x0102_0304_0506_0708),
        [0x0A, 0x0B, 0x0C, 0x0D, 1, 2, 3, 4, 5, 6, 7, 8]
    );
    let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = PacketKey::from_bytes(bytes);
    let header = b"LG\x01\x06header";
    let mut payload = *b"legume packet KAT";
    let tag = key.seal(0x0A0B_0C0D, 0x0102_0304_0506_0708, header, &mut payload);
    assert_eq!(
        payload.to_vec(),
        unhex("45416702cad990bc45dab6a9a971f2db84")
    );
    assert_eq!(tag.to_vec(), unhex("b0326f26cab4eaf46532c64a94d67784"));
    // The same through the crate with the nonce written out by hand.
    let cipher = ChaCha20Poly1305::new(&Key::from(bytes));
    let mut again = *b"legume packet KAT";
    let nonce = [0x0A, 0x0B, 0x0C, 0x0D, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(seal_with_nonce(&cipher, &nonce, header, &mut again), tag);
    assert_eq!(again, payload);
    key.open(
        0x0A0B_0C0D,
        0x0102_0304_0506_0708,
        header,
        &mut payload,
        &tag,
    )
    .unwrap();
    assert_eq!(&payload, b"legume packet KAT");
}

/// The token of `docs/PROTOCOL.md` 8.7: fixed key, nonce, packet keys and
/// time.
fn kat_token() -> ConnectToken {
    let key = PrivateKey::from_bytes(std::array::from_fn(|i| i as u8));
    ConnectToken::issue_deterministic(
        &key,
        &kat_params(),
        1_700_000_000,
        std::array::from_fn(|i| 0x40 + i as u8),
        std::array::from_fn(|i| 0xA0 + i as u8),
        std::array::from_fn(|i| 0xC0 + i as u8),
    )
    .unwrap()
}

fn kat_servers() -> Vec<SocketAddr> {
    vec![
        "203.0.113.5:7777".parse().unwrap(),
        "[2001:db8::1]:7000".parse().unwrap(),
    ]
}

fn kat_params() -> TokenParams {
    let mut params = TokenParams::new(0x1122_3344_5566_7788, 0x0123_4567_89AB_CDEF, kat_servers());
    params.lifetime = Duration::from_secs(30);
    params.timeout = Duration::from_secs(10);
    params.user_data = std::array::from_fn(|i| i as u8);
    params
}

/// Both address records: kind, IP, port.
const ADDRESSES_HEX: &str = "02 04cb007105 1e61 0620010db8000000000000000000000001 1b58";

#[test]
fn token_layout_kat() {
    let bytes = kat_token().to_bytes();
    assert_eq!(bytes.len(), CONNECT_TOKEN_LEN);
    // Header: magic, version, protocol id, expiry (created + 30 s).
    assert_eq!(
        bytes[..24],
        unhex("4c47544f4b454e01 1122334455667788 000000006553f11e")[..]
    );
    assert_eq!(
        bytes[24..48],
        unhex("404142434445464748494a4b4c4d4e4f5051525354555657")[..]
    );
    // The sealed private token: 512 bytes of ciphertext, then the tag.
    let sealed = unhex(
        "d51a4017594bb4f98ff487b40f3dc731361f0b63bbf0f931c69c53eab9b59123a24cb4d9ed2b3eab430f4af3ca1b1832
         5faebb2fa74c7e577a31c63bc3639e878efe2ea5cc6a9f1359de6e20dc789eecf2c2002c20346e7c5cae099bd5742136
         3260a1dea0fc71adc1bc7c856736eba8bbd635f901e3a9cb2092793d12f649aceb647139e9e7ec8b9c9dcc0f29e69c13
         aa622eb87d6516560167eff66d8a58e26da952eb261bba250da0909c0bb65e9de58fac86e4889ee585af69e06ae458ea
         de88c2d4eb0e5e81074e57124d5c87f34cc5edc35a702ba12f03c2787cacac3e8b90fe748290e9d94c6bb4ffab82f3d5
         89127b582c7de73bf9d86831f4bd780510da89ceb2bb65a001887e3d0a756bfcbdd44c7e685ef04cbc6cafd80fc81c1d
         dd81c05a69e5e6d87b865b7d1b53c35703f6b03aa2444bfc3b155ce5f118c6c38b4025f9f11fa2cd851e83ae97d3994a
         7ca287885709b1117f067fa58d1f74098687f2f5ee342d5cde69a56b180d39c76d5c2fbcf330afaf0f04426427862de2
         f001d7aed7dd8951eb48e31d0e7cb1b3cf9ae9f437be6e046ac44e6be2d52570aed8487a9a84f3e7942fa4055e9b2aa7
         ef83e6ba195bb997044d182ccecdadb3d9da242203153958c0d6c8365cced65cc36e78a1c9f3455a28870ed744cd9908
         1fc116ef0613a9cfe9771285eaef74142fc512653ccd9f85fb67bc42df3145371769dd2799436290222f3e365f524de7",
    );
    assert_eq!(bytes[48..576], sealed[..]);
    assert_eq!(
        bytes[560..576],
        unhex("1769dd2799436290222f3e365f524de7")[..]
    );
    // The public part: created, timeout, the two keys, the addresses, zeros.
    let mut public = unhex("000000006553f100 0000000a");
    public.extend((0xA0..=0xDF).map(|b| b as u8));
    public.extend(unhex(ADDRESSES_HEX));
    assert_eq!(bytes[576..576 + public.len()], public[..]);
    assert!(bytes[576 + public.len()..].iter().all(|&b| b == 0));
    assert_eq!(576 + public.len(), 679);
}

/// The private token's plaintext, as the server sees it after opening.
#[test]
fn private_token_plaintext_kat() {
    let bytes = kat_token().to_bytes();
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; 24] = bytes[24..48].try_into().unwrap();
    let tag: [u8; 16] = bytes[560..576].try_into().unwrap();
    let mut plain = bytes[48..560].to_vec();
    xopen(&key, &nonce, &bytes[..24], &mut plain, &tag).unwrap();
    let mut expected = unhex("0123456789abcdef 0000000a");
    expected.extend((0xA0..=0xDF).map(|b| b as u8));
    expected.extend((0..=255).map(|b| b as u8));
    expected.extend(unhex(ADDRESSES_HEX));
    assert_eq!(expected.len(), 359);
    expected.resize(512, 0);
    assert_eq!(plain, expected);
    // And through the public API.
    let private = open_private_token(
        &PrivateKey::from_bytes(key),
        &bytes[..SEALED_TOKEN_LEN],
        0x1122_3344_5566_7788,
        1_700_000_029,
        kat_servers()[1],
    )
    .unwrap();
    assert_eq!(private.client_id(), 0x0123_4567_89AB_CDEF);
    assert_eq!(
        private.token_id().to_vec(),
        unhex("1769dd2799436290222f3e365f524de7")
    );
    assert_eq!(private.timeout(), Duration::from_secs(10));
}

/// Checked against Python's `base64.b64encode` of the bytes above.
#[test]
fn token_base64_kat() {
    let text = kat_token().to_base64();
    assert_eq!(text.len(), 1368);
    assert!(text.starts_with(
        "TEdUT0tFTgERIjNEVWZ3iAAAAABlU/EeQEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX1RpAF1lLtPmP9Ie0Dz3HMTYfC2O78PkxxpxT6rm1kSOiTLTZ7Ss+q0MPSvPKGxgyX667L6dMfld6McY7w2Oeh47+LqXMap8TWd5uINx4nuzywgAsIDRufFyuCZvVdCE2MmCh3qD8ca3BvHyFZzbrqLvWNfkB46nLIJJ5PRL2SazrZHE56efsi5ydzA8p5pwTqmIuuH1lFlYBZ+/2bYpY4m2pUusmG7olDaCQnAu2Xp3lj6yG5Iie5YWvaeBq5Fjq3ojC1OsOXoEHTlcSTVyH80zF7cNacCuhLwPCeHysrD6LkP50gpDp2UxrtP+rgvPViRJ7WCx95zv52Ggx9L14BRDaic6yu2WgAYh+PQp1a/y91Ex+aF7wTLxsr9gPyBwd3YHAWmnl5th7hlt9G1PDVwP2sDqiREv8OxVc5fEYxsOLQCX58R+izYUeg66X05lKfKKHiFcJsRF/Bn+ljR90CYaH8vXuNC1c3mmlaxgNOcdtXC+88zCvrw8EQmQnhi3i8AHXrtfdiVHrSOMdDnyxs8+a6fQ3vm4EasROa+LVJXCu2Eh6moTz55QvpAVemyqn74PmuhlbuZcETRgszs2ts9naJCIDFTlYwNbINlzO1lzDbnihyfNFWiiHDtdEzZkIH8EW7wYTqc/pdxKF6u90FC/FEmU8zZ+F+2e8Qt8xRTcXad0nmUNikCIvPjZfUk3nAAAAAGVT8QAAAAAKoKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3wIEywBxBR5hBiABDbgAAAAAAAAAAAAAAAEbWAAA"
    ), "{text}");
    assert!(text.ends_with("AAAAAAAAAAAAAAAAAAAAAAAAAA=="), "{text}");
}
