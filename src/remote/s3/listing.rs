//! Keys a bucket may list that no registry writes, and that the S3 client cannot hold.
//!
//! Anyone who can write to a bucket can create a key such as `models/x/../1.toml`. The
//! S3 client refuses a key with a `.`, `..` or empty segment, and with it the whole
//! page of a listing, so one such key would stop every command that lists the bucket.
//! The client's HTTP layer is given [`Connector`], which renames each such key in a
//! listing's XML, on its way in, to a placeholder the client accepts (the key's bytes in
//! hex under [`PLACEHOLDER`]); [`original`] turns the placeholder back into the key, so
//! the caller sees the key as the bucket holds it and refuses that one item by name.

use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::path::Path;

/// The folder of the placeholders; it holds no `.`, `..` or empty segment.
pub const PLACEHOLDER: &str = "mreg-unsafe-key/";

/// Connects the S3 client through [`Guard`].
#[derive(Debug, Default)]
pub struct Connector;

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Guard { inner }))
    }
}

/// Passes requests through, renaming unsafe keys in the answers to listings.
#[derive(Debug)]
struct Guard {
    inner: HttpClient,
}

#[async_trait::async_trait]
impl HttpService for Guard {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let listing = req.method().as_str() == "GET"
            && req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|part| part == "list-type=2"));
        let response = self.inner.execute(req).await?;
        if !listing || !response.status().is_success() {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let bytes = body.bytes().await?;
        Ok(match rename_unsafe_keys(&bytes) {
            None => HttpResponse::from_parts(parts, bytes.into()),
            Some(renamed) => {
                parts.headers.remove("content-length");
                HttpResponse::from_parts(parts, renamed.into())
            }
        })
    }
}

/// Returns the listing with each `<Key>` the client would refuse replaced by its
/// placeholder, or `None` when every key is fine (or the text is not UTF-8, which
/// the client then refuses as it would have).
pub fn rename_unsafe_keys(xml: &[u8]) -> Option<Vec<u8>> {
    const OPEN: &str = "<Key>";
    const CLOSE: &str = "</Key>";
    let text = std::str::from_utf8(xml).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut renamed = false;
    while let Some(start) = rest.find(OPEN) {
        let inner_start = start + OPEN.len();
        let Some(len) = rest[inner_start..].find(CLOSE) else {
            break;
        };
        let escaped = &rest[inner_start..inner_start + len];
        out.push_str(&rest[..inner_start]);
        match unescape(escaped) {
            Some(key) if Path::parse(&key).is_err() => {
                out.push_str(PLACEHOLDER);
                out.push_str(&hex(key.as_bytes()));
                renamed = true;
            }
            _ => out.push_str(escaped),
        }
        out.push_str(CLOSE);
        rest = &rest[inner_start + len + CLOSE.len()..];
    }
    out.push_str(rest);
    renamed.then(|| out.into_bytes())
}

/// Returns the key a placeholder stands for, or `None` for any other location.
pub fn original(location: &str) -> Option<String> {
    let hex = location.strip_prefix(PLACEHOLDER)?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

use crate::id::hex;

/// Decodes the XML escapes of a text node: the five named entities and numeric ones.
fn unescape(text: &str) -> Option<String> {
    if !text.contains('&') {
        return Some(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';')? + at;
        let entity = &rest[at + 1..end];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(decoded);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_keys_are_renamed_and_come_back_as_they_were() {
        let xml = "<ListBucketResult><Contents><Key>reg/models/m/versions/1.toml</Key>\
                   <Size>3</Size></Contents><Contents><Key>reg/models/x/../a&amp;b.toml</Key>\
                   <Size>6</Size></Contents><Contents><Key>reg//y</Key></Contents>\
                   </ListBucketResult>";
        let renamed = String::from_utf8(rename_unsafe_keys(xml.as_bytes()).unwrap()).unwrap();
        assert!(renamed.contains("<Key>reg/models/m/versions/1.toml</Key>"));
        let keys: Vec<&str> = renamed
            .split("<Key>")
            .skip(1)
            .map(|s| s.split("</Key>").next().unwrap())
            .collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(original(keys[0]), None);
        assert_eq!(original(keys[1]).unwrap(), "reg/models/x/../a&b.toml");
        assert_eq!(original(keys[2]).unwrap(), "reg//y");
        for key in keys {
            assert!(Path::parse(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn a_listing_of_safe_keys_is_left_alone() {
        let xml = "<ListBucketResult><Contents><Key>reg/a</Key></Contents></ListBucketResult>";
        assert!(rename_unsafe_keys(xml.as_bytes()).is_none());
        assert_eq!(unescape("a&#x41;&#66;&lt;").unwrap(), "aAB<");
        assert!(unescape("a&bogus").is_none());
    }
}
