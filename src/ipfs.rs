//! Crust IPFS through the Kubo RPC API. On Crust's fork a `pin/add` seals every block into the sWorker as it
//! arrives, so a successful pin means a sealed file.
//!
//! The client speaks the dialect both Kubo and js-ipfs understand: POST only, `arg=` query parameters, a server-side
//! `timeout=`, NDJSON progress lines when the server streams them, and the `{"Message","Code","Type":"error"}` error
//! envelope. Numbers are accepted as JSON numbers or strings.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{LocalBoxStream, StreamExt};
use serde::Deserialize;

/// Why an IPFS call failed.
#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    /// Connection refused or reset: IPFS is down, nothing is judged.
    #[error("IPFS unreachable: {0}")]
    Unavailable(String),
    /// IPFS answered with an error.
    #[error("IPFS answered {status}: {message}")]
    Api { status: u16, message: String },
    /// No answer within the call's timeout.
    #[error("IPFS call timed out")]
    Timeout,
    /// An answer we cannot read.
    #[error("unexpected IPFS answer: {0}")]
    Decode(String),
    /// The stream ended without a result after announcing `Trailer: X-Stream-Error`: go-ipfs-cmds (Kubo and Crust's
    /// fork) reports an error that happens after streaming began in that trailer, which this HTTP client drops. The
    /// caller asks IPFS and the sWorker what really happened.
    #[error("pin/add ended mid-stream; its error is in the X-Stream-Error trailer")]
    StreamError,
}

impl IpfsError {
    /// The sWorker code Crust IPFS embeds in a failed pin (`Seal response error code is: 8016`), if any.
    pub fn seal_code(&self) -> Option<u32> {
        let IpfsError::Api { message, .. } = self else {
            return None;
        };
        let idx = message.find("code is:")?;
        message[idx + "code is:".len()..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }

    /// The sWorker ran out of disk while sealing this pin.
    pub fn is_no_space(&self) -> bool {
        self.seal_code() == Some(8016)
    }
}

/// One line of a `pin/add` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinEvent {
    /// DAG nodes processed so far (only when the server streams progress).
    Progress(u64),
    /// The pin is recorded (and, on Crust IPFS, sealed).
    Pinned,
}

/// What the pipeline needs from IPFS.
pub trait Ipfs {
    /// Starts `pin/add`; the stream ends after [`PinEvent::Pinned`] or an error. Dropping it cancels the request.
    fn pin_add(
        &self,
        cid: &str,
        timeout: Duration,
    ) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, Result<PinEvent, IpfsError>>, IpfsError>>;
    /// Daemon version: a cheap liveness check.
    fn version(&self) -> LocalBoxFuture<'_, Result<String, IpfsError>>;
    /// Runs `repo/gc`; returns how many blocks were removed.
    fn repo_gc(&self, timeout: Duration) -> LocalBoxFuture<'_, Result<u64, IpfsError>>;
    /// The DAG's real size (`files/stat` `CumulativeSize`, which Kubo and js-ipfs both serve), within `timeout`.
    fn cumulative_size(&self, cid: &str, timeout: Duration) -> LocalBoxFuture<'_, Result<u64, IpfsError>>;
    /// `pin/rm`: Crust's pinner answers a `pin/add` of a CID it already pins at once, without sealing, so a pin the
    /// sWorker lost must be removed before it is retried. `Ok(false)` when it was not pinned.
    fn pin_rm(&self, cid: &str) -> LocalBoxFuture<'_, Result<bool, IpfsError>>;
}

/// Kubo RPC client over awc.
pub struct KuboClient {
    base: String,
    client: awc::Client,
    timeout: Duration,
}

impl KuboClient {
    /// `end_point` like `http://127.0.0.1:5001` (`/api/v0` is appended); `timeout` applies to short calls.
    pub fn new(end_point: &str, timeout: Duration) -> Self {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(24 * 3600))
            .disable_redirects()
            .finish();
        KuboClient {
            base: format!("{}/api/v0", end_point.trim_end_matches('/')),
            client,
            timeout,
        }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{}", self.base, path);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&urlencode(v));
        }
        url
    }

    async fn post_json(&self, url: String, timeout: Duration) -> Result<serde_json::Value, IpfsError> {
        let method = url
            .split("/api/v0/")
            .nth(1)
            .and_then(|p| p.split('?').next())
            .unwrap_or("")
            .to_string();
        let started = std::time::Instant::now();
        let r = self.post_json_inner(url, timeout).await;
        crate::metrics::observe_rpc("ipfs", &method, started.elapsed());
        r
    }

    async fn post_json_inner(&self, url: String, timeout: Duration) -> Result<serde_json::Value, IpfsError> {
        let mut resp = self
            .client
            .post(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status();
        let body = resp
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| IpfsError::Decode(e.to_string()))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        // Streaming commands answer NDJSON; the last object is the summary.
        let text = String::from_utf8_lossy(&body);
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("{}");
        serde_json::from_str(last).map_err(|e| IpfsError::Decode(format!("{e}: {last}")))
    }
}

fn send_error(e: awc::error::SendRequestError) -> IpfsError {
    match e {
        awc::error::SendRequestError::Timeout => IpfsError::Timeout,
        other => IpfsError::Unavailable(other.to_string()),
    }
}

fn api_error(status: u16, body: &[u8]) -> IpfsError {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "Message")]
        message: String,
    }
    let message = serde_json::from_slice::<Envelope>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(500).collect());
    IpfsError::Api { status, message }
}

/// Go duration for the server-side `timeout=` option.
fn go_duration(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Parses one NDJSON line of `pin/add`.
pub fn parse_pin_line(line: &str) -> Result<Option<PinEvent>, IpfsError> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| IpfsError::Decode(format!("{e}: {line}")))?;
    if v.get("Type").and_then(|t| t.as_str()) == Some("error") {
        let message = v.get("Message").and_then(|m| m.as_str()).unwrap_or("error").to_string();
        return Err(IpfsError::Api { status: 500, message });
    }
    if let Some(pins) = v.get("Pins").and_then(|p| p.as_array()) {
        if !pins.is_empty() {
            return Ok(Some(PinEvent::Pinned));
        }
    }
    match v.get("Progress") {
        Some(p) => Ok(number(p).map(PinEvent::Progress)),
        None => Ok(None),
    }
}

/// A JSON number or a numeric string.
pub fn number(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

impl Ipfs for KuboClient {
    fn pin_add(
        &self,
        cid: &str,
        timeout: Duration,
    ) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, Result<PinEvent, IpfsError>>, IpfsError>> {
        let url = self.url(
            "pin/add",
            &[
                ("arg", cid),
                ("recursive", "true"),
                ("progress", "true"),
                ("timeout", &go_duration(timeout)),
            ],
        );
        Box::pin(async move {
            let mut resp = self
                .client
                .post(url)
                .timeout(timeout + Duration::from_secs(5))
                .send()
                .await
                .map_err(send_error)?;
            let status = resp.status();
            if !status.is_success() {
                let body = resp.body().limit(1024 * 1024).await.unwrap_or_default();
                return Err(api_error(status.as_u16(), &body));
            }
            let trailer = resp
                .headers()
                .get_all("trailer")
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("x-stream-error"));
            let ended_early = move || {
                if trailer {
                    IpfsError::StreamError
                } else {
                    IpfsError::Decode("pin/add ended without a result".into())
                }
            };
            let lines = futures_util::stream::unfold(
                (resp, Vec::<u8>::new(), false),
                move |(mut resp, mut buf, done)| async move {
                    if done {
                        return None;
                    }
                    loop {
                        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let line = String::from_utf8_lossy(&line).trim().to_string();
                            if line.is_empty() {
                                continue;
                            }
                            match parse_pin_line(&line) {
                                Ok(Some(ev)) => {
                                    let last = ev == PinEvent::Pinned;
                                    return Some((Ok(ev), (resp, buf, last)));
                                }
                                Ok(None) => continue,
                                Err(e) => return Some((Err(e), (resp, buf, true))),
                            }
                        }
                        match resp.next().await {
                            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                            Some(Err(e)) => {
                                return Some((Err(IpfsError::Unavailable(e.to_string())), (resp, buf, true)))
                            }
                            None => {
                                let rest = String::from_utf8_lossy(&buf).trim().to_string();
                                buf.clear();
                                if rest.is_empty() {
                                    return Some((Err(ended_early()), (resp, buf, true)));
                                }
                                return match parse_pin_line(&rest) {
                                    Ok(Some(ev)) => Some((Ok(ev), (resp, buf, true))),
                                    Ok(None) => Some((Err(ended_early()), (resp, buf, true))),
                                    Err(e) => Some((Err(e), (resp, buf, true))),
                                };
                            }
                        }
                    }
                },
            );
            Ok(lines.boxed_local())
        })
    }

    fn version(&self) -> LocalBoxFuture<'_, Result<String, IpfsError>> {
        let url = self.url("version", &[]);
        Box::pin(async move {
            let v = self.post_json(url, self.timeout).await?;
            v.get("Version")
                .and_then(|s| s.as_str())
                .map(str::to_string)
                .ok_or_else(|| IpfsError::Decode(format!("no Version in {v}")))
        })
    }

    fn cumulative_size(&self, cid: &str, timeout: Duration) -> LocalBoxFuture<'_, Result<u64, IpfsError>> {
        let path = format!("/ipfs/{cid}");
        let url = self.url("files/stat", &[("arg", &path), ("timeout", &go_duration(timeout))]);
        Box::pin(async move {
            let v = self.post_json(url, timeout + Duration::from_secs(1)).await?;
            v.get("CumulativeSize")
                .or_else(|| v.get("Size"))
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| IpfsError::Decode(format!("no CumulativeSize in {v}")))
        })
    }

    fn pin_rm(&self, cid: &str) -> LocalBoxFuture<'_, Result<bool, IpfsError>> {
        let url = self.url("pin/rm", &[("arg", cid), ("recursive", "true")]);
        Box::pin(async move {
            match self.post_json(url, self.timeout).await {
                Ok(_) => Ok(true),
                Err(IpfsError::Api { message, .. }) if message.contains("not pinned") => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn repo_gc(&self, timeout: Duration) -> LocalBoxFuture<'_, Result<u64, IpfsError>> {
        let url = self.url("repo/gc", &[("timeout", &go_duration(timeout))]);
        Box::pin(async move {
            let mut resp = self
                .client
                .post(url)
                .timeout(timeout + Duration::from_secs(5))
                .send()
                .await
                .map_err(send_error)?;
            let status = resp.status();
            let body = resp
                .body()
                .limit(256 * 1024 * 1024)
                .await
                .map_err(|e| IpfsError::Decode(e.to_string()))?;
            if !status.is_success() {
                return Err(api_error(status.as_u16(), &body));
            }
            let text = String::from_utf8_lossy(&body);
            let mut removed = 0u64;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| IpfsError::Decode(format!("{e}: {line}")))?;
                if let Some(err) = v.get("Error").and_then(|e| e.as_str()) {
                    if !err.is_empty() {
                        log::warn!(target: "smanager::ipfs", "repo/gc: {err}");
                    }
                }
                if v.get("Key").is_some() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_lines_in_both_dialects() {
        assert_eq!(
            parse_pin_line(r#"{"Pins":null,"Progress":3}"#).ok(),
            Some(Some(PinEvent::Progress(3)))
        );
        assert_eq!(
            parse_pin_line(r#"{"Progress":"7"}"#).ok(),
            Some(Some(PinEvent::Progress(7)))
        );
        assert_eq!(parse_pin_line(r#"{"Pins":["Qm1"]}"#).ok(), Some(Some(PinEvent::Pinned)));
        assert!(parse_pin_line(r#"{"Message":"boom","Code":0,"Type":"error"}"#).is_err());
        assert!(parse_pin_line("not json").is_err());
    }

    #[test]
    fn seal_codes_are_read_from_messages() {
        let e = IpfsError::Api {
            status: 500,
            message: "Seal response error code is: 8016".into(),
        };
        assert_eq!(e.seal_code(), Some(8016));
        assert!(e.is_no_space());
        let e = IpfsError::Api {
            status: 500,
            message: "Failed to add pin: request timed out".into(),
        };
        assert_eq!(e.seal_code(), None);
    }
}
