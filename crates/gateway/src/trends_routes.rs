//! `GET /api/trends` and the live ranking frames pushed over WebSockets.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;

use crate::errors::QueryParams;
use serde::Deserialize;
use tokio::sync::watch;
use trends::Window;

use crate::{ApiError, AppState};

/// Rows of each ranking served.
const RANKING_LIMIT: usize = 20;
const TOP_RETWEETED_LIMIT: usize = 10;

#[derive(Deserialize)]
pub struct TrendsParams {
    window: Option<String>,
}

/// The latest `trends` frame of a window, with what decides whether it changed.
#[derive(Debug)]
pub struct TrendFrame {
    /// The rankings without the window's end time: a new post that changes no
    /// ranking sends no frame.
    rankings: String,
    pub frame: Arc<str>,
}

/// Where one window's latest frame is published.
type TrendSender = watch::Sender<Option<Arc<TrendFrame>>>;

/// The latest serialized `trends` frame per window; connections watch these.
#[derive(Clone)]
pub struct TrendFrames {
    senders: Arc<[(Window, TrendSender); 3]>,
}

impl TrendFrames {
    pub fn new() -> TrendFrames {
        TrendFrames { senders: Arc::new(Window::ALL.map(|window| (window, watch::channel(None).0))) }
    }

    pub fn watch(&self, window: Window) -> watch::Receiver<Option<Arc<TrendFrame>>> {
        self.senders
            .iter()
            .find(|(candidate, _)| *candidate == window)
            .map(|(_, sender)| sender.subscribe())
            .unwrap_or_else(|| watch::channel(None).1)
    }
}

impl Default for TrendFrames {
    fn default() -> Self {
        TrendFrames::new()
    }
}

pub async fn trends(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<TrendsParams>,
) -> Result<Json<api::TrendsResponse>, ApiError> {
    let window_text = params.window.unwrap_or_else(|| "1h".into());
    let window = Window::parse(&window_text).ok_or_else(|| ApiError::BadRequest {
        code: "bad_window",
        message: format!("unknown window `{window_text}`: use 5m, 1h or 24h"),
    })?;
    Ok(Json(ranking(&state, window).await?))
}

/// The ranking of one window in wire form, with the top posts resolved.
pub async fn ranking(state: &AppState, window: Window) -> Result<api::TrendsResponse, ApiError> {
    ranking_of(state.store.as_ref(), state.trends.as_ref(), window).await
}

/// The rows of `GET /api/trends` for one window, from any store and trend
/// store (the batch rebuild prints the same).
pub async fn ranking_of(
    store: &dyn store_api::PostStore,
    trends: &dyn trends::TrendStore,
    window: Window,
) -> Result<api::TrendsResponse, ApiError> {
    // Rank more than are shown: an original this deployment never stored
    // (a Bluesky repost of an older post) cannot be shown and gives way.
    let ranking = trends.ranking(window, RANKING_LIMIT.max(TOP_RETWEETED_LIMIT * 5)).await?;
    let ids: Vec<String> = ranking.top_retweeted.iter().map(|row| row.post_id.clone()).collect();
    let posts = store.get(&ids).await?;
    let top_retweeted = ranking
        .top_retweeted
        .iter()
        .filter_map(|row| {
            posts
                .iter()
                .find(|post| post.post.id == row.post_id)
                .map(|post| api::RetweetedPost { post: api::Post::from(post), count: row.count })
        })
        .take(TOP_RETWEETED_LIMIT)
        .collect();
    let ends_at = (ranking.ends_at_ms > 0)
        .then(|| chrono::DateTime::from_timestamp_millis(ranking.ends_at_ms))
        .flatten()
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    Ok(api::TrendsResponse {
        window: window.as_str().to_owned(),
        ends_at,
        hashtags: ranking
            .hashtags
            .into_iter()
            .map(|row| api::HashtagCount { tag: row.tag, count: row.count })
            .collect(),
        trending: ranking
            .trending
            .into_iter()
            .take(RANKING_LIMIT)
            .map(|row| api::TrendingTag::from_counts(row.tag, row.score, row.accounts, row.expected))
            .collect(),
        top_retweeted,
    })
}

/// Recomputes each watched window's ranking once a second and publishes a
/// new frame only when it changed.
pub fn spawn_trends_ticker(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(run_trends_ticker(state, shutdown));
}

/// The trends ticker's loop (see [`spawn_trends_ticker`]), for a supervisor to run.
pub async fn run_trends_ticker(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        for (window, sender) in state.trend_frames.senders.iter() {
            if sender.receiver_count() == 0 {
                continue;
            }
            let trends = match ranking(&state, *window).await {
                Ok(trends) => trends,
                Err(error) => {
                    tracing::warn!(?error, "trends ranking failed");
                    continue;
                }
            };
            let top: Vec<(&str, u64)> =
                trends.top_retweeted.iter().map(|row| (row.post.id.as_str(), row.count)).collect();
            let Ok(rankings) = serde_json::to_string(&(&trends.hashtags, &trends.trending, top)) else {
                continue;
            };
            let Ok(frame) = serde_json::to_string(&api::ServerMessage::Trends { trends }) else {
                continue;
            };
            sender.send_if_modified(|current| {
                if current.as_ref().is_some_and(|current| current.rankings == rankings) {
                    false
                } else {
                    *current = Some(Arc::new(TrendFrame { rankings, frame: Arc::from(frame.as_str()) }));
                    true
                }
            });
        }
    }
}
