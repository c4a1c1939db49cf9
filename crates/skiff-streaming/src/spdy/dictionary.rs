//! The zlib dictionary every SPDY/3 header block is compressed against (SPDY/3 draft, section
//! 2.6.10.1). Both ends preload it, so the first header block already compresses well; a peer
//! that used another dictionary produces a zlib stream whose dictionary id (the Adler-32 of
//! these bytes, 0xe3c6a7c2) does not match and fails to inflate.
//!
//! The draft lists it as a hex table; here it is spelled as what it is: 65 words, each behind a
//! 4-byte big-endian length, then one run of status codes, dates and media types. The bytes are
//! assembled at compile time and a test checks them against the id Go's framer writes.

/// The length-prefixed words at the start of the dictionary, in order.
const WORDS: [&str; 65] = [
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding", "accept-language",
    "accept-ranges", "age", "allow", "authorization", "cache-control", "connection", "content-base", "content-encoding",
    "content-language", "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
    "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
    "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
    "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
    "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1",
    "url", "public", "set-cookie", "keep-alive", "origin",
];

/// The unprefixed tail. It really ends in "enq=0." with no NUL: the draft's table stops there.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized",
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

const fn dictionary_len() -> usize {
    let mut len = TAIL.len();
    let mut i = 0;
    while i < WORDS.len() {
        len += 4 + WORDS[i].len();
        i += 1;
    }
    len
}

const fn build() -> [u8; dictionary_len()] {
    let mut out = [0u8; dictionary_len()];
    let mut at = 0;
    let mut i = 0;
    while i < WORDS.len() {
        let word = WORDS[i].as_bytes();
        let len = (word.len() as u32).to_be_bytes();
        let mut j = 0;
        while j < 4 {
            out[at + j] = len[j];
            j += 1;
        }
        at += 4;
        j = 0;
        while j < word.len() {
            out[at] = word[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    let tail = TAIL.as_bytes();
    let mut j = 0;
    while j < tail.len() {
        out[at] = tail[j];
        at += 1;
        j += 1;
    }
    out
}

/// The SPDY/3 header compression dictionary, 1423 bytes.
pub const DICTIONARY: &[u8] = &build();

/// The Adler-32 of [`DICTIONARY`]: the id a zlib stream names its preset dictionary by.
pub const DICTIONARY_ID: u32 = 0xe3c6_a7c2;
