//! Filling the gap after a disconnect from the REST timelines (the stream
//! does not catch up): `min_id` = the last status id seen, oldest first,
//! following the `Link: rel="prev"` pages.

use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{MastodonSource, Progress, StatusPeek, advance, compare_status_ids, event_time_us};
use crate::health::HealthHandle;
use crate::net::{Disconnect, send};
use model::RawRecord;

impl MastodonSource {
    /// Hands on the statuses after `since` from the REST timelines, oldest first.
    pub(super) async fn backfill(
        &self,
        client: &reqwest::Client,
        since: &str,
        progress: &mut Progress,
        health: &HealthHandle,
        out: &mpsc::Sender<RawRecord>,
        shutdown: &CancellationToken,
    ) -> Result<(), Disconnect> {
        let limit = self.config.backfill_page_size.clamp(1, 40);
        let mut timelines = Vec::new();
        if self.config.public {
            timelines.push(format!("{}/api/v1/timelines/public", self.config.base_url));
        }
        for tag in &self.config.hashtags {
            timelines.push(format!("{}/api/v1/timelines/tag/{}", self.config.base_url, encode_component(tag)));
        }
        for timeline in timelines {
            let mut url = format!("{timeline}?min_id={}&limit={limit}", encode_component(since));
            for page_idx in 0..self.config.backfill_max_pages {
                let request = self.authorize(client.get(&url)).send();
                let response = tokio::select! {
                    response = tokio::time::timeout(self.config.connect_timeout, request) => response,
                    () = shutdown.cancelled() => return Err(Disconnect::Stop),
                };
                let response = match response {
                    Ok(Ok(response)) if response.status().is_success() => response,
                    Ok(Ok(response)) => {
                        return Err(Disconnect::Network(format!("HTTP {} from {url}", response.status())));
                    }
                    Ok(Err(error)) => return Err(Disconnect::Network(error.to_string())),
                    Err(_elapsed) => return Err(Disconnect::Network(format!("{url} timed out"))),
                };
                let newer = prev_link(response.headers());
                let body = response.text().await.map_err(|error| Disconnect::Network(error.to_string()))?;
                let statuses: Vec<&RawValue> = serde_json::from_str(&body)
                    .map_err(|error| Disconnect::Network(format!("backfill page: {error}")))?;
                let mut page: Vec<(String, Option<i64>, &RawValue)> = statuses
                    .iter()
                    .filter_map(|status| {
                        let peek = serde_json::from_str::<StatusPeek>(status.get()).ok()?;
                        Some((peek.id.into_owned(), event_time_us(peek.created_at.as_deref()), *status))
                    })
                    .collect();
                // Servers answer newest first; hand on oldest first so the
                // checkpoint only moves forward.
                page.sort_by(|left, right| compare_status_ids(&left.0, &right.0));
                let newest = page.last().map(|(id, _, _)| id.clone());
                for (id, event_us, status) in page {
                    advance(&mut progress.last_id, &id);
                    progress.position += 1;
                    health.record(event_us);
                    if !send(out, self.record(progress, status.get().to_owned()), shutdown).await {
                        return Err(Disconnect::Stop);
                    }
                }
                let Some(newest) = newest else { break };
                if statuses.len() < limit {
                    break;
                }
                if page_idx + 1 == self.config.backfill_max_pages {
                    tracing::warn!(source = %self.name, %timeline, "backfill stopped at its page limit; older gap statuses were skipped");
                }
                url = newer.unwrap_or_else(|| format!("{timeline}?min_id={}&limit={limit}", encode_component(&newest)));
            }
        }
        Ok(())
    }
}

/// The `rel="prev"` target of a `Link` header: Mastodon's page of newer statuses.
fn prev_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|param| {
                let param = param.trim();
                param == "rel=\"prev\"" || param == "rel=prev"
            })
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// What stays as it is in a query or path component: RFC 3986's unreserved
/// characters; everything else (hashtags may be non-ASCII) is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a query or path component.
pub(super) fn encode_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_keep_unreserved_characters_and_encode_the_rest_as_utf8() {
        assert_eq!(encode_component("a-b_c.d~E9"), "a-b_c.d~E9");
        assert_eq!(encode_component("방탄 #&/?"), "%EB%B0%A9%ED%83%84%20%23%26%2F%3F");
    }
}
