//! The rules of the X API v2 filtered stream (`/2/tweets/search/stream/rules`):
//! [`XRules`] keeps the rules tagged [`X_RULE_TAG`] equal to the live queries,
//! within the plan's limits ([`XRulesLimits`]); rules with other tags are left
//! alone.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;

use crate::net::install_tls_provider;
use crate::x_source::http_client;

/// The limits [`XRules`] keeps to. The defaults are the Pro plan's, as X
/// documents them (docs.x.com, filtered stream introduction): 1,000 rules of
/// up to 1,024 characters (Enterprise: 25,000 rules of 2,048 characters).
/// X documents no per-request count below the plan's limit; we send 100
/// rules per request so one refused request loses little and each body
/// stays small.
#[derive(Clone, Copy, Debug)]
pub struct XRulesLimits {
    /// Rules the stream may hold (all of the app's rules, not only Deck's).
    pub max_rules: usize,
    /// Characters per rule.
    pub max_rule_chars: usize,
    /// Rules added, or rule ids deleted, per request.
    pub batch: usize,
}

impl Default for XRulesLimits {
    fn default() -> Self {
        XRulesLimits { max_rules: 1000, max_rule_chars: 1024, batch: 100 }
    }
}

/// The tag on every rule Deck manages; rules with other tags are left alone.
pub const X_RULE_TAG: &str = "deck";

/// A rules request that failed.
#[derive(Debug, thiserror::Error)]
pub enum XRulesError {
    /// The request did not complete.
    #[error("X rules request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// X answered with an error status.
    #[error("X rules request refused: HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// X's answer was not the documented JSON.
    #[error("X rules response unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

/// One rule as X lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct XRule {
    pub id: String,
    pub value: String,
    pub tag: Option<String>,
}

/// What one [`XRules::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XRulesSync {
    /// Rules X created.
    pub added: usize,
    /// Rules X deleted.
    pub deleted: usize,
    /// Rules not sent or refused by X: the rule and why.
    pub rejected: Vec<(String, String)>,
}

/// Keeps the filtered stream's rules in step with what Deck wants (the
/// keywords and hashtags of open columns). Rules take effect on the open
/// stream without reconnecting.
#[derive(Clone)]
pub struct XRules {
    client: reqwest::Client,
    url: String,
    bearer_token: String,
    limits: XRulesLimits,
}

#[derive(Deserialize)]
struct RulesPage {
    #[serde(default)]
    data: Vec<XRule>,
}

#[derive(Deserialize)]
struct RulesChange {
    #[serde(default)]
    data: Vec<serde::de::IgnoredAny>,
    meta: Option<RulesMeta>,
    #[serde(default)]
    errors: Vec<RuleProblem>,
}

#[derive(Deserialize)]
struct RulesMeta {
    summary: Option<RulesSummary>,
}

#[derive(Deserialize)]
struct RulesSummary {
    created: Option<usize>,
    deleted: Option<usize>,
}

#[derive(Deserialize)]
struct RuleProblem {
    value: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

impl XRules {
    /// A rules manager for the API at `base_url`, with the default limits.
    pub fn new(base_url: &str, bearer_token: &str) -> Result<XRules, XRulesError> {
        install_tls_provider();
        Ok(XRules::with_client(http_client(Duration::from_secs(15))?, base_url, bearer_token))
    }

    pub(crate) fn with_client(client: reqwest::Client, base_url: &str, bearer_token: &str) -> XRules {
        XRules {
            client,
            url: format!("{}/2/tweets/search/stream/rules", base_url.trim_end_matches('/')),
            bearer_token: bearer_token.to_owned(),
            limits: XRulesLimits::default(),
        }
    }

    /// The same manager with other limits (another plan).
    pub fn with_limits(mut self, limits: XRulesLimits) -> XRules {
        self.limits = limits;
        self
    }

    /// Every rule the stream has now.
    pub async fn list(&self) -> Result<Vec<XRule>, XRulesError> {
        let response = self.client.get(&self.url).bearer_auth(&self.bearer_token).send().await?;
        let body = checked(response).await?;
        Ok(serde_json::from_str::<RulesPage>(&body)?.data)
    }

    /// Makes Deck's rules (tagged [`X_RULE_TAG`]) exactly `desired`:
    /// deletes the ones no longer wanted first (so the count stays within
    /// the limit), then adds the new ones, each in batches. Duplicates and
    /// blank rules are ignored; a rule over the length limit, or beyond the
    /// count limit (counting the app's other rules), is not sent and is
    /// reported in [`XRulesSync::rejected`], as are rules X refuses.
    pub async fn sync(&self, desired: &[String]) -> Result<XRulesSync, XRulesError> {
        let current = self.list().await?;
        let mut outcome = XRulesSync::default();
        let mut wanted = BTreeSet::new();
        for rule in desired {
            let rule = rule.trim();
            if rule.is_empty() {
                continue;
            }
            let n_chars = rule.chars().count();
            if n_chars > self.limits.max_rule_chars {
                outcome.rejected.push((
                    rule.to_owned(),
                    format!("{n_chars} characters, over the {}-character limit", self.limits.max_rule_chars),
                ));
                continue;
            }
            wanted.insert(rule.to_owned());
        }
        let ours: HashMap<&str, &XRule> = current
            .iter()
            .filter(|rule| rule.tag.as_deref() == Some(X_RULE_TAG))
            .map(|rule| (rule.value.as_str(), rule))
            .collect();
        let n_others = current.len() - ours.len();
        let to_delete: Vec<&str> =
            ours.iter().filter(|(value, _)| !wanted.contains(**value)).map(|(_, rule)| rule.id.as_str()).collect();
        for ids in to_delete.chunks(self.limits.batch.max(1)) {
            let body = serde_json::json!({ "delete": { "ids": ids } });
            let change = self.post(&body).await?;
            outcome.deleted +=
                change.meta.and_then(|meta| meta.summary).and_then(|summary| summary.deleted).unwrap_or(ids.len());
            collect_problems(change.errors, &mut outcome.rejected);
        }
        let room = self.limits.max_rules.saturating_sub(n_others + ours.len() - to_delete.len());
        let mut to_add: Vec<&str> =
            wanted.iter().map(String::as_str).filter(|value| !ours.contains_key(value)).collect();
        if to_add.len() > room {
            for value in to_add.split_off(room) {
                outcome.rejected.push((value.to_owned(), format!("over the limit of {} rules", self.limits.max_rules)));
            }
        }
        for values in to_add.chunks(self.limits.batch.max(1)) {
            let rules: Vec<_> =
                values.iter().map(|value| serde_json::json!({ "value": value, "tag": X_RULE_TAG })).collect();
            let change = self.post(&serde_json::json!({ "add": rules })).await?;
            outcome.added += change
                .meta
                .and_then(|meta| meta.summary)
                .and_then(|summary| summary.created)
                .unwrap_or(change.data.len());
            collect_problems(change.errors, &mut outcome.rejected);
        }
        Ok(outcome)
    }

    async fn post(&self, body: &serde_json::Value) -> Result<RulesChange, XRulesError> {
        let response = self.client.post(&self.url).bearer_auth(&self.bearer_token).json(body).send().await?;
        let body = checked(response).await?;
        Ok(serde_json::from_str(&body)?)
    }
}

fn collect_problems(problems: Vec<RuleProblem>, rejected: &mut Vec<(String, String)>) {
    for problem in problems {
        let reason = [problem.title, problem.detail].into_iter().flatten().collect::<Vec<_>>().join(": ");
        rejected.push((problem.value.unwrap_or_default(), reason));
    }
}

async fn checked(response: reqwest::Response) -> Result<String, XRulesError> {
    let status = response.status();
    let body = response.text().await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(XRulesError::Status { status: status.as_u16(), body: body.chars().take(500).collect() })
    }
}
