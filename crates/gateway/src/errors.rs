//! The closed set of errors handlers answer with, and their HTTP statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error a client sees. Internal details are logged, never sent.
#[derive(Debug)]
pub enum ApiError {
    BadQuery {
        message: String,
        position: usize,
    },
    BadRequest {
        code: &'static str,
        message: String,
    },
    Unauthorized(&'static str),
    Forbidden(&'static str),
    NotFound(&'static str),
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// A body over the route's limit (413).
    PayloadTooLarge,
    /// The gateway's upstream node did not answer (502), or no node is
    /// configured (503): `code` says which.
    Upstream {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = match self {
            ApiError::BadQuery { message, position } => (
                StatusCode::BAD_REQUEST,
                api::ErrorResponse {
                    error: message,
                    code: Some("bad_query".into()),
                    position: Some(position),
                    field: Some("q".into()),
                },
                None,
            ),
            ApiError::BadRequest { code, message } => (
                StatusCode::BAD_REQUEST,
                api::ErrorResponse { error: message, code: Some(code.into()), position: None, field: None },
                None,
            ),
            ApiError::Unauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                api::ErrorResponse {
                    error: message.into(),
                    code: Some("unauthorized".into()),
                    position: None,
                    field: None,
                },
                None,
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                api::ErrorResponse {
                    error: message.into(),
                    code: Some("forbidden".into()),
                    position: None,
                    field: None,
                },
                None,
            ),
            ApiError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                api::ErrorResponse {
                    error: message.into(),
                    code: Some("not_found".into()),
                    position: None,
                    field: None,
                },
                None,
            ),
            ApiError::TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                api::ErrorResponse {
                    error: "too many requests".into(),
                    code: Some("rate_limited".into()),
                    position: None,
                    field: None,
                },
                Some(retry_after_secs),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                api::ErrorResponse {
                    error: "body too large".into(),
                    code: Some("body_too_large".into()),
                    position: None,
                    field: None,
                },
                None,
            ),
            ApiError::Upstream { status, code, message } => (
                status,
                api::ErrorResponse { error: message.into(), code: Some(code.into()), position: None, field: None },
                None,
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    api::ErrorResponse {
                        error: "internal error".into(),
                        code: Some("internal".into()),
                        position: None,
                        field: None,
                    },
                    None,
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<store_api::StoreError> for ApiError {
    fn from(error: store_api::StoreError) -> Self {
        match error {
            // Every read slot stayed busy for a whole read deadline.
            store_api::StoreError::Busy => ApiError::TooManyRequests { retry_after_secs: 1 },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<trends::TrendsError> for ApiError {
    fn from(error: trends::TrendsError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// `axum::extract::Query` whose rejection (a query string that does not
/// deserialize, such as `limit=abc`) answers like every other error: 400
/// `{error, code: "bad_params"}`, not axum's plain text.
pub struct QueryParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(ApiError::BadRequest { code: "bad_params", message: rejection.body_text() }),
        }
    }
}
