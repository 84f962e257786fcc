//! One blob into a repository, only when the registry lacks it: `HEAD` first, then a
//! cross-repository mount when another repository of the registry holds it, else an upload.
//! A blob up to the chunk size (`Options::chunk`, 32 MiB unless set) goes in one `PUT`; a larger one in `PATCH` chunks, and an
//! upload cut off midway asks the registry how much it holds and goes on from there (or
//! starts again when the registry forgot it). Bytes are hashed as they stream: a blob whose
//! bytes are not its digest's is never committed.

use crate::error::{RegistryError, StoreError};
use crate::inputs::registry::client::{Body, Client, Failed, encode, header};
use crate::oci::digest::{Digest, HashingReader};
use crate::store::{Blob, BlobSource};
use std::io::Read;
use ureq::http::Method;

/// What became of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The repository held it already.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    Uploaded,
}

/// The blob's stream from the start, hashed, moved on to `offset` (the skipped bytes hashed
/// too, so the digest covers the whole blob whichever way it was sent).
fn stream_from<'s>(
    src: &'s dyn BlobSource,
    digest: &Digest,
    offset: u64,
) -> Result<HashingReader<Box<dyn Read + 's>>, Failed> {
    let mut r = HashingReader::new(src.open_blob(digest).map_err(|e| Failed::Fatal(e.into()))?);
    std::io::copy(&mut (&mut r).take(offset), &mut std::io::sink())
        .map_err(|e| Failed::Fatal(StoreError::io("read", src.blob_name(digest))(e).into()))?;
    Ok(r)
}

/// Refuses to commit a blob whose bytes, all read, are not its digest's.
fn check_stream(src: &dyn BlobSource, blob: &Blob, r: HashingReader<Box<dyn Read + '_>>) -> Result<(), Failed> {
    let (mut rest, actual, len) = r.finish();
    // A blob longer than its descriptor says is damaged too.
    let len = len + std::io::copy(&mut rest.by_ref().take(1), &mut std::io::sink()).unwrap_or(0);
    crate::store::walk::check_read(src.location(), &blob.digest, blob.size, (&actual, len))
        .map_err(|e| Failed::Fatal(e.into()))
}

struct Upload<'a> {
    c: &'a Client,
    repo: &'a str,
    scope: String,
    src: &'a dyn BlobSource,
    blob: &'a Blob,
    mount_from: Option<&'a str>,
    /// The upload session, once the registry opened one.
    location: Option<String>,
    /// Set after a failure: ask the session how far it got before going on.
    resume: bool,
}

/// Puts `blob` into `repo` unless it is there; `mount_from` names a repository of the same
/// registry that holds it.
pub fn push_blob(
    c: &Client,
    repo: &str,
    src: &dyn BlobSource,
    blob: &Blob,
    mount_from: Option<&str>,
) -> Result<Outcome, RegistryError> {
    let scope = match mount_from {
        Some(from) => format!("repository:{repo}:pull,push repository:{from}:pull"),
        None => format!("repository:{repo}:pull,push"),
    };
    let head = c.url(&format!("/v2/{repo}/blobs/{}", blob.digest));
    let present = c.retrying(&format!("checking blob {}", blob.digest), |_| {
        let answer = c.send(Method::HEAD, &head, &[], Body::Empty, &scope)?;
        match answer.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(c.unexpected(&format!("a check of blob {}", blob.digest), answer)),
        }
    })?;
    if present {
        return Ok(Outcome::Present);
    }
    let mut up = Upload { c, repo, scope, src, blob, mount_from, location: None, resume: false };
    c.retrying(&format!("uploading blob {} ({} bytes)", blob.digest, blob.size), |_| {
        let r = up.attempt();
        if matches!(r, Err(Failed::Retry(..))) {
            up.resume = true;
        }
        r
    })
}

impl Upload<'_> {
    fn what(&self) -> String {
        format!("the upload of blob {}", self.blob.digest)
    }

    fn attempt(&mut self) -> Result<Outcome, Failed> {
        let mut offset = 0;
        if self.resume && self.blob.size > self.c.options().chunk {
            offset = self.offset()?;
        } else if self.resume {
            self.location = None;
        }
        self.resume = false;
        if self.location.is_none() {
            match self.start()? {
                Some(location) => self.location = Some(location),
                None => return Ok(Outcome::Mounted),
            }
            offset = 0;
        }
        if self.blob.size <= self.c.options().chunk { self.whole() } else { self.chunks(offset) }
    }

    /// Opens an upload session (or mounts the blob: `None`).
    fn start(&mut self) -> Result<Option<String>, Failed> {
        let mut path = format!("/v2/{}/blobs/uploads/", self.repo);
        if let Some(from) = self.mount_from.take() {
            path.push_str(&format!("?mount={}&from={}", encode(&self.blob.digest.to_string()), encode(from)));
        }
        let answer = self.c.send(Method::POST, &self.c.url(&path), &[], Body::Empty, &self.scope)?;
        match answer.status().as_u16() {
            201 => Ok(None),
            202 => match header(&answer, "location") {
                Some(l) => Ok(Some(self.c.url(l))),
                None => Err(Failed::Fatal(self.c.protocol(&self.what(), "202 without a Location"))),
            },
            _ => Err(self.c.unexpected(&self.what(), answer)),
        }
    }

    fn location(&self) -> String {
        self.location.clone().unwrap_or_default()
    }

    /// How many bytes the open session holds; a session the registry no longer knows starts
    /// again from nothing.
    fn offset(&mut self) -> Result<u64, Failed> {
        let Some(location) = self.location.clone() else { return Ok(0) };
        let answer = self.c.send(Method::GET, &location, &[], Body::Empty, &self.scope)?;
        match answer.status().as_u16() {
            204 => {
                if let Some(l) = header(&answer, "location") {
                    self.location = Some(self.c.url(l));
                }
                // `0-0` is what distribution says of an empty session (and of one byte).
                Ok(header(&answer, "range").and_then(range_end).filter(|end| *end > 0).map_or(0, |end| end + 1))
            }
            404 => {
                self.location = None;
                Ok(0)
            }
            _ => Err(self.c.unexpected(&self.what(), answer)),
        }
    }

    /// The session's URL with the blob's digest: the request that commits it.
    fn commit_url(&self) -> String {
        let l = self.location();
        let sep = if l.contains('?') { '&' } else { '?' };
        format!("{l}{sep}digest={}", encode(&self.blob.digest.to_string()))
    }

    fn committed(&self, answer: crate::inputs::registry::client::Answer) -> Result<Outcome, Failed> {
        match answer.status().as_u16() {
            201 | 204 => Ok(Outcome::Uploaded),
            _ => Err(self.c.unexpected(&self.what(), answer)),
        }
    }

    /// The whole blob in one `PUT`.
    fn whole(&mut self) -> Result<Outcome, Failed> {
        let mut r = stream_from(self.src, &self.blob.digest, 0)?;
        let url = self.commit_url();
        let headers = [("Content-Type", "application/octet-stream")];
        let sent = {
            let mut body = (&mut r).take(self.blob.size);
            self.c.send(Method::PUT, &url, &headers, Body::Stream(&mut body, self.blob.size), &self.scope)
        };
        // A blob the registry took is checked as it was read; one it refused (a damaged blob
        // is `DIGEST_INVALID`), with the rest unread, is left to the registry's own message.
        if let Ok(answer) = &sent
            && matches!(answer.status().as_u16(), 201 | 204)
        {
            check_stream(self.src, self.blob, r)?;
        }
        self.committed(sent?)
    }

    /// The blob in `PATCH` chunks from `offset`, then the committing `PUT`.
    fn chunks(&mut self, mut offset: u64) -> Result<Outcome, Failed> {
        let mut r = stream_from(self.src, &self.blob.digest, offset)?;
        while offset < self.blob.size {
            let len = self.c.options().chunk.min(self.blob.size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
            let answer = {
                let mut body = (&mut r).take(len);
                self.c.send(Method::PATCH, &self.location(), &headers, Body::Stream(&mut body, len), &self.scope)?
            };
            if answer.status().as_u16() == 416 {
                // The session does not hold what kiln thought: start it again.
                self.location = None;
                return Err(Failed::Retry("416 Range Not Satisfiable".into(), Some(std::time::Duration::ZERO)));
            }
            if answer.status().as_u16() != 202 {
                return Err(self.c.unexpected(&self.what(), answer));
            }
            if let Some(l) = header(&answer, "location") {
                self.location = Some(self.c.url(l));
            }
            let held = header(&answer, "range").and_then(range_end).map(|e| e + 1);
            if held != Some(offset + len) {
                // The registry holds another amount than was sent: ask it, and go on from there.
                return Err(Failed::Retry(
                    format!("the registry holds {held:?} bytes of the upload, not {}", offset + len),
                    Some(std::time::Duration::ZERO),
                ));
            }
            offset += len;
        }
        check_stream(self.src, self.blob, r)?;
        let answer = self.c.send(Method::PUT, &self.commit_url(), &[], Body::Empty, &self.scope)?;
        self.committed(answer)
    }
}

/// The last byte a `Range: 0-N` header names (distribution writes `0-N`, some `bytes=0-N`).
fn range_end(h: &str) -> Option<u64> {
    h.trim().trim_start_matches("bytes=").split_once('-')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_read_in_both_spellings() {
        assert_eq!(super::range_end("0-1023"), Some(1023));
        assert_eq!(super::range_end("bytes=0-9"), Some(9));
        assert_eq!(super::range_end("0-"), None);
    }
}
