//! Client of the optional seal coordinator (TypeScript `sealCoordinator`), a service several nodes share to agree
//! on who seals what: `GET /ping` at start, `POST /node/{id}/seal/{cid}` before pulling, `DELETE …` before deleting,
//! each answering `{"seal": bool, "reason": "ok" | "skipFile" | "pullDisabled"}`; requests carry the `nodeId`
//! header and `Authorization: <authScheme> <authToken>` (`Bearer` by default; TypeScript 1.0.3 sends `Bear:`).
//!
//! The coordinator is advice, not a dependency: when it cannot be reached or answers an error, the Picker and the
//! Cleanup decide locally (with a warning and `smanager_coordinator_failures_total`) instead of stopping all pulls
//! and all deletions.

use std::time::Duration;

use serde::Deserialize;

use crate::config::SealCoordinatorSettings;

/// Why a coordinator call failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// Network trouble: the pipeline waits and retries.
    #[error("seal coordinator unreachable: {0}")]
    Unavailable(String),
    /// The coordinator answered with an error status.
    #[error("seal coordinator answered {status}: {body}")]
    Api { status: u16, body: String },
}

/// The coordinator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    pub seal: bool,
    #[serde(default)]
    pub reason: String,
}

impl Decision {
    /// `pullDisabled`: the coordinator pauses this node's pulls; the file is not refused, only postponed.
    pub fn pull_disabled(&self) -> bool {
        !self.seal && self.reason == "pullDisabled"
    }
}

/// Counts a failed coordinator call (`mark_seal`, `unmark_seal`) that was answered by a local decision.
pub fn record_failure(call: &str, e: &CoordinatorError) {
    crate::metrics::METRICS
        .coordinator_failures_total
        .with_label_values(&[call])
        .inc();
    log::warn!(target: "smanager::coordinator", "{call} failed, deciding locally: {e}");
}

/// The coordinator client.
pub struct SealCoordinator {
    base: String,
    node: String,
    token: String,
    scheme: String,
    client: awc::Client,
}

impl SealCoordinator {
    /// Builds a client; nothing is sent until the first call.
    pub fn new(s: &SealCoordinatorSettings) -> Self {
        SealCoordinator {
            base: s.end_point.trim_end_matches('/').to_string(),
            node: s.node_uuid.clone(),
            token: s.auth_token.clone(),
            scheme: s.auth_scheme.clone(),
            client: awc::Client::builder().timeout(Duration::from_secs(10)).finish(),
        }
    }

    fn request(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        self.client
            .request(method, format!("{}{path}", self.base))
            .insert_header(("nodeId", self.node.as_str()))
            .insert_header(("Authorization", format!("{} {}", self.scheme, self.token)))
    }

    async fn decide(&self, method: awc::http::Method, cid: &str) -> Result<Decision, CoordinatorError> {
        let path = format!("/node/{}/seal/{cid}", self.node);
        let started = std::time::Instant::now();
        let mut r = self
            .request(method, &path)
            .send()
            .await
            .map_err(|e| CoordinatorError::Unavailable(e.to_string()))?;
        crate::metrics::observe_rpc("coordinator", "seal", started.elapsed());
        let body = r.body().limit(64 * 1024).await.unwrap_or_default();
        if !r.status().is_success() {
            return Err(CoordinatorError::Api {
                status: r.status().as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| CoordinatorError::Api {
            status: r.status().as_u16(),
            body: format!(
                "not a decision ({e}): {}",
                String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
            ),
        })
    }

    /// `GET /ping`.
    pub async fn ping(&self) -> Result<(), CoordinatorError> {
        let r = self
            .request(awc::http::Method::GET, "/ping")
            .send()
            .await
            .map_err(|e| CoordinatorError::Unavailable(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(CoordinatorError::Api {
                status: r.status().as_u16(),
                body: String::new(),
            })
        }
    }

    /// Asks to seal `cid` (before pulling it).
    pub async fn mark_seal(&self, cid: &str) -> Result<Decision, CoordinatorError> {
        self.decide(awc::http::Method::POST, cid).await
    }

    /// Tells the coordinator `cid` is going away (before deleting it).
    pub async fn unmark_seal(&self, cid: &str) -> Result<Decision, CoordinatorError> {
        self.decide(awc::http::Method::DELETE, cid).await
    }
}
