//! Connect tokens: issuing (backend), parsing (client) and opening the
//! sealed private part (game server). Layouts: `docs/PROTOCOL.md` 8.2–8.3.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use legume_core::{DecodeError, Reader};
use thiserror::Error;
use zeroize::Zeroize;

use super::key::{random_bytes, PrivateKey, RandomError, KEY_LEN};
use super::protect::{AuthError, PacketKey, TAG_LEN};

/// The token format version, byte 7 of a token.
pub const TOKEN_VERSION: u8 = 1;
/// The size of a serialized [`ConnectToken`], in bytes (zero-padded).
pub const CONNECT_TOKEN_LEN: usize = 1024;
/// The size of the part of a token a client sends in its connect request
/// and a server opens with [`open_private_token`]: the header, nonce and
/// sealed private token.
pub const SEALED_TOKEN_LEN: usize = HEADER_LEN + NONCE_LEN + PRIVATE_LEN + TAG_LEN;
/// The most server addresses one token may name.
pub const MAX_SERVER_ADDRESSES: usize = 8;
/// The size of a token's app user data, in bytes.
pub const USER_DATA_LEN: usize = 256;

/// "LGTOKEN": bytes 0..7 of a token.
const MAGIC: [u8; 7] = *b"LGTOKEN";
/// Magic, version, protocol id, expiry: the associated data of the seal.
const HEADER_LEN: usize = 24;
/// XChaCha20-Poly1305's nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// The private token's plaintext, zero-padded.
const PRIVATE_LEN: usize = 512;
/// Where the private token's plaintext (then ciphertext) starts.
const SEALED_AT: usize = HEADER_LEN + NONCE_LEN;
/// Address record kinds.
const ADDR_V4: u8 = 4;
const ADDR_V6: u8 = 6;

/// Why a token was refused.
///
/// A server that refuses a connect request knows which; it tells the client
/// only where that is safe (`docs/PROTOCOL.md` 8.8).
#[derive(Clone, Copy, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token of this format: the wrong size, magic, an impossible
    /// address record or non-zero padding.
    #[error("malformed connect token")]
    Malformed,
    /// A token of another format version (the byte after the magic).
    #[error("connect token version {0} is not supported (expected {TOKEN_VERSION})")]
    VersionMismatch(u8),
    /// A token for another game: its protocol id (in the token) differs.
    #[error("connect token is for protocol id {0:#x}, not this server's")]
    ProtocolMismatch(u64),
    /// The token's expiry time has passed.
    #[error("connect token has expired")]
    Expired,
    /// The sealed part failed authentication: forged, tampered with
    /// (including its header), or sealed with another private key.
    #[error("connect token failed authentication")]
    BadMac,
    /// A valid token that does not name this server's address.
    #[error("connect token is not valid for this server")]
    WrongServer,
}

impl From<DecodeError> for TokenError {
    fn from(_: DecodeError) -> Self {
        TokenError::Malformed
    }
}

/// Why a token could not be issued.
#[derive(Clone, Copy, Debug, Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A token must name at least one server.
    #[error("a connect token needs at least one server address")]
    NoServerAddresses,
    /// More than [`MAX_SERVER_ADDRESSES`] server addresses.
    #[error("{0} server addresses; a connect token holds at most {MAX_SERVER_ADDRESSES}")]
    TooManyServerAddresses(usize),
    /// A connection timeout of zero.
    #[error("the connection timeout must be at least one second")]
    ZeroTimeout,
    /// No randomness for the keys or the nonce.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// What the backend puts in a [`ConnectToken`].
///
/// ```
/// use std::time::Duration;
/// use legume_net::TokenParams;
///
/// let mut params = TokenParams::new(0x1234, 42, vec!["203.0.113.5:7777".parse()?]);
/// params.lifetime = Duration::from_secs(60);
/// params.user_data[..4].copy_from_slice(b"gold");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TokenParams {
    /// The game's protocol id (`Config::protocol_id`); a server refuses a
    /// token for another.
    pub protocol_id: u64,
    /// Who the client is, as the backend knows it; the server's connect
    /// hook sees it.
    pub client_id: u64,
    /// How long after issue the token may be used to connect (whole
    /// seconds, rounded up). Default 30 s.
    pub lifetime: Duration,
    /// The connection's idle timeout, for both ends (whole seconds, rounded
    /// up, at least 1). Default 10 s.
    pub timeout: Duration,
    /// The servers the token is good for, in the order the client tries
    /// them: 1 to [`MAX_SERVER_ADDRESSES`].
    pub server_addresses: Vec<SocketAddr>,
    /// Anything the backend wants the server to know (rank, cosmetics, a
    /// session ticket); sealed, so the client cannot read or change it.
    /// Default zeros.
    pub user_data: [u8; USER_DATA_LEN],
}

impl TokenParams {
    /// Parameters with the default lifetime, timeout and user data.
    pub fn new(protocol_id: u64, client_id: u64, server_addresses: Vec<SocketAddr>) -> Self {
        TokenParams {
            protocol_id,
            client_id,
            lifetime: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            server_addresses,
            user_data: [0; USER_DATA_LEN],
        }
    }
}

/// A connect token, as the backend issues it and the client holds it.
///
/// The public part tells the client where to connect and with which keys;
/// the sealed part ([`sealed`](Self::sealed)) is opaque to the client, which
/// sends it to the server in its connect request. The whole token travels
/// from the backend to the client over a channel the backend trusts (HTTPS),
/// as bytes ([`to_bytes`](Self::to_bytes)) or base64
/// ([`to_base64`](Self::to_base64)).
///
/// ```
/// use std::net::SocketAddr;
/// use legume_net::secure::open_private_token;
/// use legume_net::{ConnectToken, PrivateKey, TokenParams};
///
/// // Backend:
/// let key = PrivateKey::generate()?;
/// let server: SocketAddr = "203.0.113.5:7777".parse()?;
/// let token = ConnectToken::issue(&key, &TokenParams::new(0x1234, 42, vec![server]))?;
/// let text = token.to_base64();
///
/// // Client:
/// let token = ConnectToken::from_base64(&text)?;
/// assert_eq!(token.server_addresses(), &[server]);
///
/// // Server, from the client's connect request:
/// let now = token.create_timestamp();
/// let private = open_private_token(&key, &token.sealed(), 0x1234, now, server)?;
/// assert_eq!(private.client_id(), 42);
/// assert_eq!(
///     private.server_to_client_key().to_bytes(),
///     token.server_to_client_key().to_bytes()
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ConnectToken {
    /// Header, nonce and sealed private token: bytes 0..576.
    sealed: Box<[u8; SEALED_TOKEN_LEN]>,
    protocol_id: u64,
    create_timestamp: u64,
    expire_timestamp: u64,
    timeout_secs: u32,
    client_to_server_key: PacketKey,
    server_to_client_key: PacketKey,
    server_addresses: Vec<SocketAddr>,
}

impl ConnectToken {
    /// Issues a token now (the system clock), with fresh keys and nonce
    /// from the operating system.
    pub fn issue(key: &PrivateKey, params: &TokenParams) -> Result<Self, IssueError> {
        Self::issue_at(key, params, unix_now())
    }

    /// Issues a token as of `now`, in seconds since the Unix epoch.
    pub fn issue_at(
        key: &PrivateKey,
        params: &TokenParams,
        now_unix_secs: u64,
    ) -> Result<Self, IssueError> {
        let mut c2s = random_bytes::<KEY_LEN>()?;
        let mut s2c = random_bytes::<KEY_LEN>()?;
        let nonce = random_bytes::<NONCE_LEN>()?;
        let token = Self::issue_deterministic(key, params, now_unix_secs, nonce, c2s, s2c);
        c2s.zeroize();
        s2c.zeroize();
        token
    }

    /// Issues a token with the given nonce and keys instead of random ones,
    /// for known-answer tests. **Never use it to issue real tokens**: a
    /// nonce used twice under one private key breaks the seal.
    #[doc(hidden)]
    pub fn issue_deterministic(
        key: &PrivateKey,
        params: &TokenParams,
        now_unix_secs: u64,
        nonce: [u8; NONCE_LEN],
        client_to_server_key: [u8; KEY_LEN],
        server_to_client_key: [u8; KEY_LEN],
    ) -> Result<Self, IssueError> {
        let addrs = &params.server_addresses;
        if addrs.is_empty() {
            return Err(IssueError::NoServerAddresses);
        }
        if addrs.len() > MAX_SERVER_ADDRESSES {
            return Err(IssueError::TooManyServerAddresses(addrs.len()));
        }
        let timeout_secs = u32::try_from(ceil_secs(params.timeout)).unwrap_or(u32::MAX);
        if timeout_secs == 0 {
            return Err(IssueError::ZeroTimeout);
        }
        let expire_timestamp = now_unix_secs.saturating_add(ceil_secs(params.lifetime));

        let mut sealed = Box::new([0u8; SEALED_TOKEN_LEN]);
        sealed[..7].copy_from_slice(&MAGIC);
        sealed[7] = TOKEN_VERSION;
        sealed[8..16].copy_from_slice(&params.protocol_id.to_be_bytes());
        sealed[16..24].copy_from_slice(&expire_timestamp.to_be_bytes());
        sealed[24..48].copy_from_slice(&nonce);

        // The private token's plaintext, written straight into its place.
        let mut p = Vec::with_capacity(PRIVATE_LEN);
        p.extend_from_slice(&params.client_id.to_be_bytes());
        p.extend_from_slice(&timeout_secs.to_be_bytes());
        p.extend_from_slice(&client_to_server_key);
        p.extend_from_slice(&server_to_client_key);
        p.extend_from_slice(&params.user_data);
        write_addresses(&mut p, addrs);
        debug_assert!(p.len() <= PRIVATE_LEN);
        let private = &mut sealed[SEALED_AT..SEALED_AT + PRIVATE_LEN];
        private[..p.len()].copy_from_slice(&p);
        p.zeroize();

        let (head, rest) = sealed.split_at_mut(SEALED_AT);
        let (private, tag_out) = rest.split_at_mut(PRIVATE_LEN);
        let tag = xseal(key.as_bytes(), &nonce, &head[..HEADER_LEN], private);
        tag_out.copy_from_slice(&tag);

        Ok(ConnectToken {
            sealed,
            protocol_id: params.protocol_id,
            create_timestamp: now_unix_secs,
            expire_timestamp,
            timeout_secs,
            client_to_server_key: PacketKey::from_bytes(client_to_server_key),
            server_to_client_key: PacketKey::from_bytes(server_to_client_key),
            server_addresses: addrs.clone(),
        })
    }

    /// The game's protocol id.
    pub fn protocol_id(&self) -> u64 {
        self.protocol_id
    }

    /// When the token was issued, in seconds since the Unix epoch.
    pub fn create_timestamp(&self) -> u64 {
        self.create_timestamp
    }

    /// When the token expires, in seconds since the Unix epoch: a server
    /// refuses it at this second and after.
    pub fn expire_timestamp(&self) -> u64 {
        self.expire_timestamp
    }

    /// Whether the token has expired at `now_unix_secs`.
    pub fn is_expired(&self, now_unix_secs: u64) -> bool {
        now_unix_secs >= self.expire_timestamp
    }

    /// The connection's idle timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_secs))
    }

    /// The servers to try, in order.
    pub fn server_addresses(&self) -> &[SocketAddr] {
        &self.server_addresses
    }

    /// The key that seals the client's packets.
    pub fn client_to_server_key(&self) -> &PacketKey {
        &self.client_to_server_key
    }

    /// The key that seals the server's packets.
    pub fn server_to_client_key(&self) -> &PacketKey {
        &self.server_to_client_key
    }

    /// The part the client sends to the server in its connect request
    /// (bytes 0..576 of the token): the header, the nonce and the sealed
    /// private token.
    pub fn sealed(&self) -> [u8; SEALED_TOKEN_LEN] {
        *self.sealed
    }

    /// The token as [`CONNECT_TOKEN_LEN`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(CONNECT_TOKEN_LEN);
        b.extend_from_slice(&self.sealed[..]);
        b.extend_from_slice(&self.create_timestamp.to_be_bytes());
        b.extend_from_slice(&self.timeout_secs.to_be_bytes());
        b.extend_from_slice(&self.client_to_server_key.to_bytes());
        b.extend_from_slice(&self.server_to_client_key.to_bytes());
        write_addresses(&mut b, &self.server_addresses);
        b.resize(CONNECT_TOKEN_LEN, 0);
        b
    }

    /// Parses a token from [`to_bytes`](Self::to_bytes). Checks the format,
    /// not the seal (the client cannot) nor the expiry.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() != CONNECT_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut r = Reader::new(bytes);
        let (protocol_id, expire_timestamp) = read_header(&mut r)?;
        r.take(SEALED_TOKEN_LEN - HEADER_LEN)?;
        let create_timestamp = r.read_u64()?;
        let timeout_secs = r.read_u32()?;
        let client_to_server_key = PacketKey::from_bytes(read_key(&mut r)?);
        let server_to_client_key = PacketKey::from_bytes(read_key(&mut r)?);
        let server_addresses = read_addresses(&mut r)?;
        read_padding(&mut r)?;
        let mut sealed = Box::new([0u8; SEALED_TOKEN_LEN]);
        sealed.copy_from_slice(&bytes[..SEALED_TOKEN_LEN]);
        Ok(ConnectToken {
            sealed,
            protocol_id,
            create_timestamp,
            expire_timestamp,
            timeout_secs,
            client_to_server_key,
            server_to_client_key,
            server_addresses,
        })
    }

    /// The token as standard base64 with padding (1,368 characters).
    pub fn to_base64(&self) -> String {
        let mut bytes = self.to_bytes();
        let text = STANDARD.encode(&bytes);
        bytes.zeroize();
        text
    }

    /// Parses a token from [`to_base64`](Self::to_base64); surrounding
    /// whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, TokenError> {
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| TokenError::Malformed)?;
        let token = Self::from_bytes(&bytes);
        bytes.zeroize();
        token
    }
}

impl PartialEq for ConnectToken {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for ConnectToken {}

impl std::fmt::Debug for ConnectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectToken")
            .field("protocol_id", &self.protocol_id)
            .field("create_timestamp", &self.create_timestamp)
            .field("expire_timestamp", &self.expire_timestamp)
            .field("timeout_secs", &self.timeout_secs)
            .field("server_addresses", &self.server_addresses)
            .finish_non_exhaustive()
    }
}

/// The sealed part of a connect token, opened by a game server.
#[derive(Clone)]
pub struct PrivateToken {
    protocol_id: u64,
    expire_timestamp: u64,
    client_id: u64,
    timeout_secs: u32,
    client_to_server_key: PacketKey,
    server_to_client_key: PacketKey,
    user_data: Box<[u8; USER_DATA_LEN]>,
    server_addresses: Vec<SocketAddr>,
    tag: [u8; TAG_LEN],
}

impl PrivateToken {
    /// The game's protocol id.
    pub fn protocol_id(&self) -> u64 {
        self.protocol_id
    }

    /// When the token expires, in seconds since the Unix epoch.
    pub fn expire_timestamp(&self) -> u64 {
        self.expire_timestamp
    }

    /// The client's id, as the backend issued it.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The connection's idle timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_secs))
    }

    /// The key that seals the client's packets.
    pub fn client_to_server_key(&self) -> &PacketKey {
        &self.client_to_server_key
    }

    /// The key that seals the server's packets.
    pub fn server_to_client_key(&self) -> &PacketKey {
        &self.server_to_client_key
    }

    /// The backend's user data.
    pub fn user_data(&self) -> &[u8; USER_DATA_LEN] {
        &self.user_data
    }

    /// The servers the token is good for.
    pub fn server_addresses(&self) -> &[SocketAddr] {
        &self.server_addresses
    }

    /// The seal's authentication tag: unique to this token (a different
    /// token with the same tag cannot be forged), so a server can recognise
    /// a token already in use.
    pub fn token_id(&self) -> [u8; TAG_LEN] {
        self.tag
    }
}

impl std::fmt::Debug for PrivateToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateToken")
            .field("protocol_id", &self.protocol_id)
            .field("expire_timestamp", &self.expire_timestamp)
            .field("client_id", &self.client_id)
            .field("timeout_secs", &self.timeout_secs)
            .field("server_addresses", &self.server_addresses)
            .finish_non_exhaustive()
    }
}

/// The sealed part of a connect token as a handshake packet carries it,
/// read without opening the seal: the fields a server looks at before it
/// decrypts anything. Neither is authenticated until [`open_private_token`]
/// succeeds on the same bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SealedToken<'a>(&'a [u8; SEALED_TOKEN_LEN]);

impl<'a> SealedToken<'a> {
    /// The token in `bytes`, when they are exactly [`SEALED_TOKEN_LEN`] long.
    pub(crate) fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.try_into().ok().map(SealedToken)
    }

    /// The game's protocol id in the header, after the magic and version.
    pub(crate) fn protocol_id(self) -> u64 {
        const AT: usize = MAGIC.len() + 1;
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[AT..AT + 8]);
        u64::from_be_bytes(id)
    }

    /// The seal's tag, the last [`TAG_LEN`] bytes: the token's id once it
    /// is opened ([`PrivateToken::token_id`]), known before decryption so
    /// that a cookie can bind it.
    pub(crate) fn id(self) -> [u8; TAG_LEN] {
        const AT: usize = SEALED_AT + PRIVATE_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.0[AT..]);
        tag
    }

    /// The token's bytes.
    pub(crate) fn as_bytes(self) -> &'a [u8] {
        self.0
    }
}

/// Opens the sealed part of a connect token ([`ConnectToken::sealed`],
/// [`SEALED_TOKEN_LEN`] bytes) as the server at `own_addr`, for the game
/// `protocol_id`, at `now_unix_secs`.
///
/// The cheap checks come first, in this order, so a flood of junk costs no
/// decryption: size and magic ([`Malformed`](TokenError::Malformed)),
/// version, protocol id, expiry; then the seal
/// ([`BadMac`](TokenError::BadMac): the expiry and protocol id are
/// authenticated, so changing them to pass the checks breaks the seal);
/// then the private part's layout and the server's address
/// ([`WrongServer`](TokenError::WrongServer), compared by IP and port, an
/// IPv4-mapped IPv6 address equal to its IPv4 form).
///
/// It does not know which tokens are in use: the caller refuses a token id
/// ([`PrivateToken::token_id`]) already connected from another address.
pub fn open_private_token(
    key: &PrivateKey,
    sealed: &[u8],
    protocol_id: u64,
    now_unix_secs: u64,
    own_addr: SocketAddr,
) -> Result<PrivateToken, TokenError> {
    if sealed.len() != SEALED_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (token_protocol, expire_timestamp) = read_header(&mut Reader::new(sealed))?;
    if token_protocol != protocol_id {
        return Err(TokenError::ProtocolMismatch(token_protocol));
    }
    if now_unix_secs >= expire_timestamp {
        return Err(TokenError::Expired);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[HEADER_LEN..SEALED_AT]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&sealed[SEALED_AT + PRIVATE_LEN..]);
    let mut plain = [0u8; PRIVATE_LEN];
    plain.copy_from_slice(&sealed[SEALED_AT..SEALED_AT + PRIVATE_LEN]);
    if xopen(
        key.as_bytes(),
        &nonce,
        &sealed[..HEADER_LEN],
        &mut plain,
        &tag,
    )
    .is_err()
    {
        plain.zeroize();
        return Err(TokenError::BadMac);
    }
    let token = parse_private(&plain, token_protocol, expire_timestamp, tag);
    plain.zeroize();
    let token = token?;
    let own = canonical(own_addr);
    if !token.server_addresses.iter().any(|&a| canonical(a) == own) {
        return Err(TokenError::WrongServer);
    }
    Ok(token)
}

/// XChaCha20-Poly1305 encryption in place with a detached tag.
pub(crate) fn xseal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    XChaCha20Poly1305::new(&Key::from(*key))
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, buf.into())
        // The only error is a buffer over the AEAD's ~256 GiB limit.
        .expect("buffer within the XChaCha20-Poly1305 length limit")
        .into()
}

/// XChaCha20-Poly1305 decryption in place; the crate compares the tag in
/// constant time and leaves `buf` untouched when it does not match.
pub(crate) fn xopen(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AuthError> {
    XChaCha20Poly1305::new(&Key::from(*key))
        .decrypt_inout_detached(&XNonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
        .map_err(|_| AuthError)
}

fn parse_private(
    plain: &[u8; PRIVATE_LEN],
    protocol_id: u64,
    expire_timestamp: u64,
    tag: [u8; TAG_LEN],
) -> Result<PrivateToken, TokenError> {
    let mut r = Reader::new(plain);
    let client_id = r.read_u64()?;
    let timeout_secs = r.read_u32()?;
    let client_to_server_key = PacketKey::from_bytes(read_key(&mut r)?);
    let server_to_client_key = PacketKey::from_bytes(read_key(&mut r)?);
    let mut user_data = Box::new([0u8; USER_DATA_LEN]);
    user_data.copy_from_slice(r.take(USER_DATA_LEN)?);
    let server_addresses = read_addresses(&mut r)?;
    read_padding(&mut r)?;
    Ok(PrivateToken {
        protocol_id,
        expire_timestamp,
        client_id,
        timeout_secs,
        client_to_server_key,
        server_to_client_key,
        user_data,
        server_addresses,
        tag,
    })
}

/// Reads the 24-byte header: magic, version, protocol id, expiry.
fn read_header(r: &mut Reader<'_>) -> Result<(u64, u64), TokenError> {
    if r.take(MAGIC.len())? != MAGIC {
        return Err(TokenError::Malformed);
    }
    let version = r.read_u8()?;
    if version != TOKEN_VERSION {
        return Err(TokenError::VersionMismatch(version));
    }
    Ok((r.read_u64()?, r.read_u64()?))
}

fn read_key(r: &mut Reader<'_>) -> Result<[u8; KEY_LEN], TokenError> {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(r.take(KEY_LEN)?);
    Ok(key)
}

/// The rest must be zeros.
fn read_padding(r: &mut Reader<'_>) -> Result<(), TokenError> {
    if r.rest().iter().any(|&b| b != 0) {
        return Err(TokenError::Malformed);
    }
    Ok(())
}

/// A count byte, then each address: kind 4 (IPv4, 4 bytes) or 6 (IPv6, 16
/// bytes), then the port, big-endian.
fn write_addresses(out: &mut Vec<u8>, addrs: &[SocketAddr]) {
    // Invariant: callers hold at most MAX_SERVER_ADDRESSES addresses.
    out.push(addrs.len() as u8);
    for addr in addrs {
        match addr.ip() {
            IpAddr::V4(ip) => {
                out.push(ADDR_V4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(ADDR_V6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&addr.port().to_be_bytes());
    }
}

fn read_addresses(r: &mut Reader<'_>) -> Result<Vec<SocketAddr>, TokenError> {
    let count = usize::from(r.read_u8()?);
    if count == 0 || count > MAX_SERVER_ADDRESSES {
        return Err(TokenError::Malformed);
    }
    let mut addrs = Vec::with_capacity(count);
    for _ in 0..count {
        let ip = match r.read_u8()? {
            ADDR_V4 => {
                let b: [u8; 4] = r.take(4)?.try_into().map_err(|_| TokenError::Malformed)?;
                IpAddr::V4(Ipv4Addr::from(b))
            }
            ADDR_V6 => {
                let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| TokenError::Malformed)?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return Err(TokenError::Malformed),
        };
        addrs.push(SocketAddr::new(ip, r.read_u16()?));
    }
    Ok(addrs)
}

/// The address as compared with a token's: IP (IPv4-mapped IPv6 as IPv4)
/// and port, without IPv6 flow info or scope.
fn canonical(addr: SocketAddr) -> (IpAddr, u16) {
    (addr.ip().to_canonical(), addr.port())
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Seconds since the Unix epoch on the system clock (0 before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOL: u64 = 0x1122_3344_5566_7788;
    const NOW: u64 = 1_700_000_000;

    fn server() -> SocketAddr {
        "203.0.113.5:7777".parse().unwrap()
    }

    fn key() -> PrivateKey {
        PrivateKey::from_bytes([0x42; KEY_LEN])
    }

    fn params() -> TokenParams {
        let mut p = TokenParams::new(
            PROTOCOL,
            99,
            vec![
                "[2001:db8::1]:7000".parse().unwrap(),
                server(),
                "198.51.100.1:9".parse().unwrap(),
            ],
        );
        p.user_data = std::array::from_fn(|i| (i * 7) as u8);
        p
    }

    fn token() -> ConnectToken {
        ConnectToken::issue_at(&key(), &params(), NOW).unwrap()
    }

    fn open(sealed: &[u8]) -> Result<PrivateToken, TokenError> {
        open_private_token(&key(), sealed, PROTOCOL, NOW + 1, server())
    }

    #[test]
    fn issue_and_open() {
        let t = token();
        assert_eq!(t.expire_timestamp(), NOW + 30);
        assert_eq!(t.timeout(), Duration::from_secs(10));
        let p = open(&t.sealed()).unwrap();
        assert_eq!(p.client_id(), 99);
        assert_eq!(p.user_data(), &params().user_data);
        assert_eq!(p.server_addresses(), &params().server_addresses[..]);
        assert_eq!(p.timeout(), t.timeout());
        assert_eq!(p.expire_timestamp(), t.expire_timestamp());
        assert_eq!(p.protocol_id(), PROTOCOL);
        assert_eq!(
            p.client_to_server_key().to_bytes(),
            t.client_to_server_key().to_bytes()
        );
        assert_eq!(
            p.server_to_client_key().to_bytes(),
            t.server_to_client_key().to_bytes()
        );
        assert_ne!(
            t.client_to_server_key().to_bytes(),
            t.server_to_client_key().to_bytes()
        );
        // Each issue draws fresh keys and a fresh nonce.
        let again = token();
        assert_ne!(again.sealed(), t.sealed());
        assert_ne!(
            again.client_to_server_key().to_bytes(),
            t.client_to_server_key().to_bytes()
        );
        assert_ne!(open(&again.sealed()).unwrap().token_id(), p.token_id());
    }

    #[test]
    fn bytes_and_base64_roundtrip() {
        let t = token();
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), CONNECT_TOKEN_LEN);
        assert_eq!(ConnectToken::from_bytes(&bytes).unwrap(), t);
        let text = t.to_base64();
        assert_eq!(text.len(), 1368);
        let back = ConnectToken::from_base64(&format!("{text}\n")).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.server_addresses(), t.server_addresses());
        assert_eq!(back.create_timestamp(), NOW);
        assert!(open(&back.sealed()).is_ok());
        assert_eq!(ConnectToken::from_base64("@@@"), Err(TokenError::Malformed));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let bytes = token().to_bytes();
        assert_eq!(
            ConnectToken::from_bytes(&bytes[..1023]),
            Err(TokenError::Malformed)
        );
        let mut b = bytes.clone();
        b[0] = b'X';
        assert_eq!(ConnectToken::from_bytes(&b), Err(TokenError::Malformed));
        let mut b = bytes.clone();
        b[7] = 2;
        assert_eq!(
            ConnectToken::from_bytes(&b),
            Err(TokenError::VersionMismatch(2))
        );
        let mut b = bytes.clone();
        b[1023] = 1;
        assert_eq!(
            ConnectToken::from_bytes(&b),
            Err(TokenError::Malformed),
            "padding"
        );
        let mut b = bytes.clone();
        b[652] = 0;
        assert_eq!(
            ConnectToken::from_bytes(&b),
            Err(TokenError::Malformed),
            "no address"
        );
        let mut b = bytes.clone();
        b[652] = 9;
        assert_eq!(
            ConnectToken::from_bytes(&b),
            Err(TokenError::Malformed),
            "9 addresses"
        );
        let mut b = bytes;
        b[653] = 5;
        assert_eq!(
            ConnectToken::from_bytes(&b),
            Err(TokenError::Malformed),
            "kind 5"
        );
    }

    #[test]
    fn issue_checks_its_parameters() {
        let mut p = params();
        p.server_addresses.clear();
        assert!(matches!(
            ConnectToken::issue_at(&key(), &p, NOW),
            Err(IssueError::NoServerAddresses)
        ));
        p.server_addresses = vec![server(); 9];
        assert!(matches!(
            ConnectToken::issue_at(&key(), &p, NOW),
            Err(IssueError::TooManyServerAddresses(9))
        ));
        p.server_addresses = vec![server(); 8];
        assert!(ConnectToken::issue_at(&key(), &p, NOW).is_ok());
        p.timeout = Duration::ZERO;
        assert!(matches!(
            ConnectToken::issue_at(&key(), &p, NOW),
            Err(IssueError::ZeroTimeout)
        ));
        p.timeout = Duration::from_millis(1500);
        p.lifetime = Duration::from_millis(100);
        let t = ConnectToken::issue_at(&key(), &p, NOW).unwrap();
        assert_eq!(t.timeout(), Duration::from_secs(2), "rounded up");
        assert_eq!(t.expire_timestamp(), NOW + 1, "rounded up");
    }

    #[test]
    fn eight_ipv6_addresses_fit() {
        let mut p = params();
        p.server_addresses = (0..8)
            .map(|i| {
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
                    1,
                )
            })
            .collect();
        let t = ConnectToken::issue_at(&key(), &p, NOW).unwrap();
        let back = ConnectToken::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back.server_addresses(), &p.server_addresses[..]);
        let own = p.server_addresses[7];
        let opened = open_private_token(&key(), &t.sealed(), PROTOCOL, NOW, own).unwrap();
        assert_eq!(opened.server_addresses(), &p.server_addresses[..]);
    }

    #[test]
    fn expired() {
        let t = token();
        let s = t.sealed();
        let exp = t.expire_timestamp();
        assert!(open_private_token(&key(), &s, PROTOCOL, exp - 1, server()).is_ok());
        assert_eq!(
            open_private_token(&key(), &s, PROTOCOL, exp, server()).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            open_private_token(&key(), &s, PROTOCOL, exp + 1000, server()).unwrap_err(),
            TokenError::Expired
        );
        assert!(!t.is_expired(exp - 1) && t.is_expired(exp));
    }

    #[test]
    fn every_flipped_bit_of_the_seal_is_a_bad_mac() {
        let s = token().sealed();
        // The nonce, the ciphertext and the tag.
        for bit in HEADER_LEN * 8..SEALED_TOKEN_LEN * 8 {
            let mut b = s;
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(open(&b).unwrap_err(), TokenError::BadMac, "bit {bit}");
        }
    }

    #[test]
    fn a_tampered_header_is_refused() {
        let s = token().sealed();
        for bit in 0..HEADER_LEN * 8 {
            let mut b = s;
            b[bit / 8] ^= 1 << (bit % 8);
            let err = open(&b).unwrap_err();
            let expected = match bit / 8 {
                0..=6 => TokenError::Malformed,
                7 => TokenError::VersionMismatch(b[7]),
                8..=15 => {
                    TokenError::ProtocolMismatch(u64::from_be_bytes(b[8..16].try_into().unwrap()))
                }
                // A later expiry passes the clock check, and breaks the seal.
                _ if u64::from_be_bytes(b[16..24].try_into().unwrap()) > NOW + 1 => {
                    TokenError::BadMac
                }
                _ => TokenError::Expired,
            };
            assert_eq!(err, expected, "bit {bit}");
        }
        // A protocol id changed by the server's own check: refused by the seal.
        let t = ConnectToken::issue_at(&key(), &params(), NOW).unwrap();
        let mut b = t.sealed();
        b[8..16].copy_from_slice(&7u64.to_be_bytes());
        assert_eq!(
            open_private_token(&key(), &b, 7, NOW, server()).unwrap_err(),
            TokenError::BadMac
        );
    }

    #[test]
    fn wrong_server_protocol_key_and_version() {
        let s = token().sealed();
        let other: SocketAddr = "203.0.113.5:7778".parse().unwrap();
        assert_eq!(
            open_private_token(&key(), &s, PROTOCOL, NOW, other).unwrap_err(),
            TokenError::WrongServer
        );
        let mapped: SocketAddr = "[::ffff:203.0.113.5]:7777".parse().unwrap();
        assert!(open_private_token(&key(), &s, PROTOCOL, NOW, mapped).is_ok());
        let v6: SocketAddr = "[2001:db8::1%3]:7000".parse().unwrap();
        assert!(
            open_private_token(&key(), &s, PROTOCOL, NOW, v6).is_ok(),
            "scope ignored"
        );
        assert_eq!(
            open_private_token(&key(), &s, PROTOCOL + 1, NOW, server()).unwrap_err(),
            TokenError::ProtocolMismatch(PROTOCOL)
        );
        let wrong_key = PrivateKey::from_bytes([0x43; KEY_LEN]);
        assert_eq!(
            open_private_token(&wrong_key, &s, PROTOCOL, NOW, server()).unwrap_err(),
            TokenError::BadMac
        );
        let mut b = s;
        b[7] = 0;
        assert_eq!(open(&b).unwrap_err(), TokenError::VersionMismatch(0));
        assert_eq!(open(&s[..575]).unwrap_err(), TokenError::Malformed);
        assert_eq!(open(&[]).unwrap_err(), TokenError::Malformed);
    }

    #[test]
    fn a_sealed_token_shows_its_protocol_id_and_id_unopened() {
        let token = token();
        let sealed_bytes = token.sealed();
        let sealed = SealedToken::new(&sealed_bytes).expect("sealed length");
        assert_eq!(sealed.protocol_id(), token.protocol_id());
        assert_eq!(sealed.id(), open(&sealed_bytes).unwrap().token_id());
        assert_eq!(sealed.as_bytes(), &sealed_bytes[..]);
        assert!(SealedToken::new(&sealed_bytes[1..]).is_none());
    }

    #[test]
    fn debug_shows_no_keys() {
        let t = token();
        let p = open(&t.sealed()).unwrap();
        let text = format!("{t:?} {p:?}");
        let key_hex = format!("{:?}", t.client_to_server_key().to_bytes());
        assert!(!text.contains(&key_hex), "{text}");
        assert!(text.contains("client_id: 99"), "{text}");
    }
}
