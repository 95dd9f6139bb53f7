//! The sWorker HTTP API (v1.1.1). Its answers carry `Content-Type: application/text` even when they are JSON, some
//! numbers arrive as strings, and the body's `status_code` may differ from the HTTP status: the client parses bodies
//! as JSON whatever the header says and maps the documented codes to [`SworkerError`] variants.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use crate::ipfs::number;

/// Why an sWorker call failed.
#[derive(Debug, thiserror::Error)]
pub enum SworkerError {
    /// Connection refused or reset: the sWorker is down, nothing is marked failed.
    #[error("sWorker unreachable: {0}")]
    Unavailable(String),
    /// An A/B upgrade is running: retry later.
    #[error("sWorker is upgrading (501): {0}")]
    Upgrading(String),
    /// The sWorker answered with an error code.
    #[error("sWorker answered {status} (code {code}): {message}")]
    Api { status: u16, code: i64, message: String },
    /// An answer we cannot read.
    #[error("unexpected sWorker answer: {0}")]
    Decode(String),
}

impl SworkerError {
    /// Errors that say nothing about the file: the sWorker is away and work should wait, not fail.
    pub fn is_transient(&self) -> bool {
        match self {
            SworkerError::Unavailable(_) | SworkerError::Upgrading(_) => true,
            SworkerError::Api { status, .. } => *status >= 500,
            SworkerError::Decode(_) => false,
        }
    }
}

/// `GET /workload`, in the units the API uses (GiB for `srd`, bytes for `files`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Workload {
    pub srd_complete_gib: u64,
    pub disk_available_gib: u64,
    pub disk_available_for_srd_gib: u64,
    pub disk_volume_gib: u64,
    pub sys_disk_available_gib: u64,
    pub srd_remaining_task_gib: u64,
    pub valid_files: u64,
    pub valid_bytes: u64,
    pub pending_files: u64,
    /// Sealed bytes written so far for pending files (not their sizes).
    pub pending_sealed_bytes: u64,
    pub lost_files: u64,
    pub lost_bytes: u64,
    /// Data disks with SRD (`srd.srd_detail` entries), TypeScript telemetry's `srd_volumn_count`.
    pub srd_volumes: u64,
}

const GIB: u64 = 1 << 30;

impl Workload {
    /// Space the sWorker can give to files, as the TypeScript manager counts it: SRD can be reclaimed.
    pub fn free_bytes(&self) -> u64 {
        (self.srd_complete_gib + self.disk_available_gib).saturating_mul(GIB)
    }

    /// Percent of the usable space that is SRD.
    pub fn srd_ratio(&self) -> u32 {
        let total = self.srd_complete_gib + self.disk_available_gib;
        if total == 0 {
            return 0;
        }
        u32::try_from(self.srd_complete_gib.saturating_mul(100) / total).unwrap_or(100)
    }

    /// Free system-disk bytes (the API reports GiB).
    pub fn sys_free_bytes(&self) -> u64 {
        self.sys_disk_available_gib.saturating_mul(GIB)
    }

    /// Reads the API's JSON.
    pub fn from_json(v: &Value) -> Result<Self, SworkerError> {
        let srd = v
            .get("srd")
            .ok_or_else(|| SworkerError::Decode(format!("workload without `srd`: {v}")))?;
        let g = |o: &Value, k: &str| o.get(k).and_then(number).unwrap_or(0);
        let files = v.get("files").cloned().unwrap_or(Value::Null);
        let f = |kind: &str, k: &str| files.get(kind).and_then(|o| o.get(k)).and_then(number).unwrap_or(0);
        Ok(Workload {
            srd_complete_gib: g(srd, "srd_complete"),
            disk_available_gib: g(srd, "disk_available"),
            disk_available_for_srd_gib: g(srd, "disk_available_for_srd"),
            disk_volume_gib: g(srd, "disk_volume"),
            sys_disk_available_gib: g(srd, "sys_disk_available"),
            srd_remaining_task_gib: g(srd, "srd_remaining_task"),
            valid_files: f("valid", "num"),
            valid_bytes: f("valid", "size"),
            pending_files: f("pending", "num"),
            pending_sealed_bytes: f("pending", "size"),
            lost_files: f("lost", "num"),
            lost_bytes: f("lost", "size"),
            srd_volumes: srd
                .get("srd_detail")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len() as u64),
        })
    }
}

/// A file's state in the sWorker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum FileState {
    /// Sealed and reported on chain.
    Valid { size: u64 },
    /// Was sealed but the sWorker lost it.
    Lost { size: u64 },
    /// Still sealing.
    Pending { sealed_bytes: u64 },
}

/// What `storage/delete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The sWorker removed it.
    Deleted,
    /// 404: the sWorker does not hold it; for cleanup this is as good as deleted.
    NotFound,
}

/// What the pipeline needs from the sWorker.
pub trait Sworker {
    /// Capacity, SRD and file totals (`/workload`).
    fn workload(&self) -> LocalBoxFuture<'_, Result<Workload, SworkerError>>;
    /// `None` when the sWorker does not know the CID (404).
    fn file_info(&self, cid: &str) -> LocalBoxFuture<'_, Result<Option<FileState>, SworkerError>>;
    /// Pending seals: CID → sealed bytes so far.
    fn pending(&self) -> LocalBoxFuture<'_, Result<HashMap<String, u64>, SworkerError>>;
    /// Ends (and so cancels) a pending seal. `Ok(false)` when nothing was pending (8005).
    fn seal_end(&self, cid: &str) -> LocalBoxFuture<'_, Result<bool, SworkerError>>;
    /// Deletes a file (the sWorker also unpins it in IPFS).
    fn delete(&self, cid: &str) -> LocalBoxFuture<'_, Result<DeleteOutcome, SworkerError>>;
}

/// sWorker client over awc.
pub struct SworkerClient {
    base: String,
    client: awc::Client,
}

impl SworkerClient {
    /// `end_point` like `http://127.0.0.1:12222`; `/api/v0` is appended as the TypeScript manager did.
    pub fn new(end_point: &str, timeout: Duration) -> Self {
        let base = end_point.trim_end_matches('/');
        let base = if base.ends_with("/api/v0") {
            base.to_string()
        } else {
            format!("{base}/api/v0")
        };
        SworkerClient {
            base,
            client: awc::Client::builder().timeout(timeout).disable_redirects().finish(),
        }
    }

    async fn call(&self, req: awc::ClientRequest, body: Option<Value>) -> Result<(u16, Value), SworkerError> {
        let method = req.get_uri().path().rsplit("/api/v0/").next().unwrap_or("").to_string();
        let started = std::time::Instant::now();
        let r = self.call_inner(req, body).await;
        crate::metrics::observe_rpc("sworker", &method, started.elapsed());
        r
    }

    async fn call_inner(&self, req: awc::ClientRequest, body: Option<Value>) -> Result<(u16, Value), SworkerError> {
        let sent = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        let mut resp = sent.map_err(|e| SworkerError::Unavailable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .map_err(|e| SworkerError::Decode(e.to_string()))?;
        let v: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if status == 501 {
            return Err(SworkerError::Upgrading(message(&v)));
        }
        Ok((status, v))
    }
}

fn message(v: &Value) -> String {
    v.get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string().chars().take(300).collect())
}

fn code(v: &Value) -> i64 {
    v.get("status_code").and_then(|c| c.as_i64()).unwrap_or(-1)
}

fn api(status: u16, v: &Value) -> SworkerError {
    SworkerError::Api {
        status,
        code: code(v),
        message: message(v),
    }
}

fn parse_state(inner: &Value, kind: Option<&str>) -> Option<FileState> {
    let kind = kind.or_else(|| inner.get("type").and_then(|t| t.as_str()))?;
    match kind {
        "valid" => Some(FileState::Valid {
            size: inner.get("size").and_then(number).unwrap_or(0),
        }),
        "lost" => Some(FileState::Lost {
            size: inner.get("size").and_then(number).unwrap_or(0),
        }),
        "pending" => Some(FileState::Pending {
            sealed_bytes: inner.get("sealed_size").and_then(number).unwrap_or(0),
        }),
        _ => None,
    }
}

impl Sworker for SworkerClient {
    fn workload(&self) -> LocalBoxFuture<'_, Result<Workload, SworkerError>> {
        Box::pin(async move {
            let (status, v) = self
                .call(self.client.get(format!("{}/workload", self.base)), None)
                .await?;
            if status != 200 {
                return Err(api(status, &v));
            }
            Workload::from_json(&v)
        })
    }

    fn file_info(&self, cid: &str) -> LocalBoxFuture<'_, Result<Option<FileState>, SworkerError>> {
        // The sWorker does no URL-decoding: CIDs are plain ASCII and go in as they are.
        let url = format!("{}/file/info?cid={}", self.base, cid);
        let cid = cid.to_string();
        Box::pin(async move {
            let (status, v) = self.call(self.client.get(url), None).await?;
            match status {
                404 => Ok(None),
                200 => {
                    let inner = v
                        .get(&cid)
                        .or_else(|| v.as_object().and_then(|o| o.values().next()))
                        .ok_or_else(|| SworkerError::Decode(format!("file/info without an entry: {v}")))?;
                    parse_state(inner, None)
                        .map(Some)
                        .ok_or_else(|| SworkerError::Decode(format!("file/info with unknown type: {inner}")))
                }
                _ => Err(api(status, &v)),
            }
        })
    }

    fn pending(&self) -> LocalBoxFuture<'_, Result<HashMap<String, u64>, SworkerError>> {
        let url = format!("{}/file/info_by_type?type=pending", self.base);
        Box::pin(async move {
            let (status, v) = self.call(self.client.get(url), None).await?;
            if status != 200 {
                return Err(api(status, &v));
            }
            let map = v
                .as_object()
                .ok_or_else(|| SworkerError::Decode(format!("pending map is not an object: {v}")))?;
            Ok(map
                .iter()
                .map(|(cid, inner)| {
                    let sealed = inner.get("sealed_size").and_then(number).unwrap_or(0);
                    (cid.clone(), sealed)
                })
                .collect())
        })
    }

    fn seal_end(&self, cid: &str) -> LocalBoxFuture<'_, Result<bool, SworkerError>> {
        let url = format!("{}/storage/seal_end", self.base);
        let body = serde_json::json!({ "cid": cid });
        Box::pin(async move {
            let (status, v) = self.call(self.client.post(url), Some(body)).await?;
            match (status, code(&v)) {
                (200, _) => Ok(true),
                // 8017: incomplete blocks — the pending seal is ended anyway, which is what a cancel wants.
                (500, 8017) => Ok(true),
                (404, _) | (_, 8005) => Ok(false),
                _ => Err(api(status, &v)),
            }
        })
    }

    fn delete(&self, cid: &str) -> LocalBoxFuture<'_, Result<DeleteOutcome, SworkerError>> {
        let url = format!("{}/storage/delete", self.base);
        let body = serde_json::json!({ "cid": cid });
        Box::pin(async move {
            let (status, v) = self.call(self.client.post(url), Some(body)).await?;
            match status {
                200 => Ok(DeleteOutcome::Deleted),
                404 => Ok(DeleteOutcome::NotFound),
                _ => Err(api(status, &v)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_units_and_string_numbers() {
        let v = serde_json::json!({
            "files": {"lost": {"num": 0, "size": 0}, "pending": {"num": 1, "size": "2048"}, "valid": {"num": 3, "size": 300}},
            "srd": {"disk_available": 30, "disk_available_for_srd": 0, "disk_volume": 100, "srd_complete": 70,
                    "srd_detail": {}, "srd_remaining_task": 0, "sys_disk_available": 60}
        });
        let w = Workload::from_json(&v).expect("valid");
        assert_eq!(w.srd_ratio(), 70);
        assert_eq!(w.free_bytes(), 100 * GIB);
        assert_eq!(w.pending_sealed_bytes, 2048);
        assert!(Workload::from_json(&serde_json::json!({"files": {}})).is_err());
    }

    #[test]
    fn file_states() {
        let p = serde_json::json!({"sealed_size": "1024", "type": "pending", "used_time": "1m"});
        assert_eq!(parse_state(&p, None), Some(FileState::Pending { sealed_bytes: 1024 }));
        let v = serde_json::json!({"c_block_num": 5, "s_size": 10, "size": 8, "type": "valid"});
        assert_eq!(parse_state(&v, None), Some(FileState::Valid { size: 8 }));
        assert_eq!(parse_state(&serde_json::json!({"type": "odd"}), None), None);
    }
}
