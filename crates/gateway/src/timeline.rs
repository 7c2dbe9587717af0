//! `GET /api/timeline`: a column's history, newest first, paged by cursor.

use std::time::Instant;

use axum::extract::State;
use axum::{Extension, Json};

use crate::errors::QueryParams;
use model::Cursor;
use serde::Deserialize;
use store_api::{Range, Reader};

use crate::ratelimit::ReadCost;
use crate::{ApiError, AppState};

/// Posts per page when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Deserialize)]
pub struct TimelineParams {
    q: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

pub async fn timeline(
    State(state): State<AppState>,
    reader: Option<Extension<Reader>>,
    QueryParams(params): QueryParams<TimelineParams>,
) -> Result<(Extension<ReadCost>, Json<api::TimelineResponse>), ApiError> {
    let text = params.q.unwrap_or_default();
    let query = search::Query::parse(&text)
        .map_err(|error| ApiError::BadQuery { message: error.message.clone(), position: error.position })?;
    let before = match params.before.as_deref().filter(|before| !before.is_empty()) {
        Some(before) => Some(Cursor::decode(before).map_err(|_| ApiError::BadRequest {
            code: "bad_cursor",
            message: "`before` is not a cursor this server made".into(),
        })?),
        None => None,
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let started = Instant::now();
    // The rate-limit middleware names the reader; without it (a route
    // mounted elsewhere), the request's reads share one anonymous reader.
    let reader = reader.map_or_else(|| Reader::new("ip:unknown"), |Extension(reader)| reader);
    let page = state.store.timeline(&reader, &query, Range { before, after: None }, limit).await?;
    state.metrics.query_seconds.observe(started.elapsed().as_secs_f64());
    Ok((
        Extension(ReadCost(page.work)),
        Json(api::TimelineResponse {
            posts: page.posts.iter().map(api::Post::from).collect(),
            next: page.next.map(|cursor| cursor.encode()),
        }),
    ))
}
