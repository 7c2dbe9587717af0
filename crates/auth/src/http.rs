//! The HTTP face of the accounts role: `/api/auth/*`, `/api/me/deck` and
//! `/api/stream/ticket`. Handlers only translate; the rules live in [`AuthService`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::deck::Deck;
use crate::error::AuthError;
use crate::service::AuthService;
use crate::tokens::Claims;
use api::account::{
    EmailRequest, LoginRequest, PasswordChangeRequest, RefreshRequest, ResetConfirmRequest, SignupRequest,
    StatusResponse, VerifyRequest,
};
use api::client::{bearer_token, client_ip};

/// Largest body any of these routes reads (the deck is the largest).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The routes of the accounts role, with the service as state.
pub fn router(service: Arc<AuthService>) -> Router {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/verify", post(verify))
        .route("/api/auth/resend", post(resend))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/logout-all", post(logout_all))
        .route("/api/auth/reset/request", post(reset_request))
        .route("/api/auth/reset/confirm", post(reset_confirm))
        .route("/api/auth/password", post(change_password))
        .route("/api/me/deck", get(get_deck).put(put_deck))
        .route("/api/stream/ticket", post(issue_ticket))
        .with_state(service)
}

/// The client address: the connection's peer (from `ConnectInfo<SocketAddr>`), or the
/// `X-Forwarded-For` entry our trusted proxies appended when the peer is one of them.
/// Without `ConnectInfo` (a router served without `into_make_service_with_connect_info`)
/// every request counts as `0.0.0.0`, which shares one bucket rather than none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<AuthService>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, service: &Arc<AuthService>) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientIp(client_ip(peer, &parts.headers, &service.config().trusted_proxies)))
    }
}

/// Claims of a required access token; 401 without a valid one.
struct Authenticated(Claims);

impl FromRequestParts<Arc<AuthService>> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, service: &Arc<AuthService>) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(http::header::AUTHORIZATION).ok_or(AuthError::Unauthorized)?;
        let token = bearer_token(header).ok_or(AuthError::Unauthorized)?;
        service.authenticate(token).await.map(Authenticated)
    }
}

/// Claims of an optional access token: none without the header, 401 with a bad one
/// (a client that meant to sign in should not silently get an anonymous stream).
struct MaybeAuthenticated(Option<Claims>);

impl FromRequestParts<Arc<AuthService>> for MaybeAuthenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, service: &Arc<AuthService>) -> Result<Self, Self::Rejection> {
        match parts.headers.get(http::header::AUTHORIZATION) {
            None => Ok(MaybeAuthenticated(None)),
            Some(header) => {
                let token = bearer_token(header).ok_or(AuthError::Unauthorized)?;
                service.authenticate(token).await.map(|claims| MaybeAuthenticated(Some(claims)))
            }
        }
    }
}

/// A JSON body read with a size cap; malformed input answers 400 naming the field.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AuthError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(request.headers()) {
            return Err(AuthError::UnsupportedMediaType);
        }
        let bytes =
            axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await.map_err(|_| AuthError::BodyTooLarge)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Whether the request declares a JSON body (`application/json` or `application/*+json`,
/// parameters allowed). Anything else is refused with 415: a cross-site page can send a
/// "simple" `text/plain` or form POST without a CORS preflight, but never a JSON one.
pub fn is_json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let message = error.to_string();
        // serde names the culprit as `field`; pass it on so the client can point at it.
        let field = message
            .split('`')
            .nth(1)
            .and_then(|name| KNOWN_FIELDS.iter().find(|known| **known == name))
            .copied()
            .unwrap_or("body");
        let message = match message.find(" at line") {
            Some(cut) => message[..cut].to_owned(),
            None => message,
        };
        AuthError::invalid(field, message)
    })
}

/// Fields of the request bodies, for naming them in errors with a `&'static str`.
const KNOWN_FIELDS: &[&str] = &[
    "email",
    "password",
    "token",
    "refresh_token",
    "refresh_cookie",
    "current_password",
    "new_password",
    "columns",
    "id",
    "title",
    "query",
    "width",
    "filters",
];

/// The refresh cookie: `HttpOnly` (no script reads it), `Secure` (browsers also accept it
/// from `http://localhost` and `http://127.0.0.1`), `SameSite=Strict` (never sent from
/// another site) and scoped to `/api/auth`, where refresh and logout live. Every route
/// that reads it also requires a JSON body, which no cross-site form can send.
pub const REFRESH_COOKIE: &str = "deck_refresh";

fn refresh_cookie(token: &str, max_age_secs: u64) -> http::HeaderValue {
    let cookie =
        format!("{REFRESH_COOKIE}={token}; Path=/api/auth; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict");
    http::HeaderValue::from_str(&cookie).unwrap_or_else(|_| http::HeaderValue::from_static("deck_refresh=; Max-Age=0"))
}

fn cleared_refresh_cookie() -> http::HeaderValue {
    http::HeaderValue::from_static("deck_refresh=; Path=/api/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The refresh cookie's value, if the request carries one. Tokens are URL-safe base64,
/// so the value needs no decoding; anything else simply fails the lookup.
fn refresh_cookie_value(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == REFRESH_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// The tokens as JSON; with `cookie`, the refresh token moves out of the body into the
/// `HttpOnly` cookie.
fn session_response(mut tokens: crate::service::SessionTokens, cookie: bool) -> Response {
    let set_cookie = match (cookie, tokens.refresh_token.take()) {
        (true, Some(token)) => Some(refresh_cookie(&token, tokens.refresh_expires_in)),
        (false, token) => {
            tokens.refresh_token = token;
            None
        }
        (true, None) => None,
    };
    let mut response = no_store(Json(tokens).into_response());
    if let Some(set_cookie) = set_cookie {
        response.headers_mut().insert(http::header::SET_COOKIE, set_cookie);
    }
    response
}

/// Marks a response that carries a secret (tokens, tickets) as never to be cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response.headers_mut().insert(http::header::PRAGMA, http::HeaderValue::from_static("no-cache"));
    response
}

fn accepted(status: &str) -> Response {
    (StatusCode::ACCEPTED, Json(StatusResponse { status: status.to_owned() })).into_response()
}

fn ok(status: &str) -> Response {
    (StatusCode::OK, Json(StatusResponse { status: status.to_owned() })).into_response()
}

async fn signup(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<SignupRequest>,
) -> Result<Response, AuthError> {
    service.signup(&body.email, &body.password, ip).await?;
    Ok(accepted("verification_sent"))
}

async fn verify(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Response, AuthError> {
    service.verify_email(&body.token, body.password.as_deref(), ip).await?;
    Ok(ok("verified"))
}

async fn resend(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<EmailRequest>,
) -> Result<Response, AuthError> {
    service.resend_verification(&body.email, ip).await?;
    Ok(accepted("verification_sent"))
}

async fn login(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, AuthError> {
    let tokens = service.login(&body.email, &body.password, ip).await?;
    Ok(session_response(tokens, body.refresh_cookie))
}

async fn refresh(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    headers: http::HeaderMap,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Response, AuthError> {
    let (token, cookie) = match body.refresh_token {
        Some(token) => (token, false),
        None => (refresh_cookie_value(&headers).ok_or(AuthError::InvalidRefreshToken)?, true),
    };
    match service.refresh(&token, ip).await {
        Ok(tokens) => Ok(session_response(tokens, cookie)),
        // A dead cookie is cleared, so that the browser stops sending it.
        Err(error) if cookie => {
            let mut response = error.into_response();
            response.headers_mut().insert(http::header::SET_COOKIE, cleared_refresh_cookie());
            Ok(response)
        }
        Err(error) => Err(error),
    }
}

async fn logout(
    State(service): State<Arc<AuthService>>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AuthError> {
    let empty_body = body.iter().all(u8::is_ascii_whitespace);
    let refresh_token = if empty_body {
        None
    } else if !is_json_content_type(&headers) {
        return Err(AuthError::UnsupportedMediaType);
    } else {
        parse_json::<RefreshRequest>(&body)?.refresh_token
    };
    // The cookie names the session only with a JSON body or a bearer token, neither of
    // which a cross-site form can send.
    let from_cookie = !empty_body || headers.contains_key(http::header::AUTHORIZATION);
    let refresh_token = refresh_token.or_else(|| refresh_cookie_value(&headers).filter(|_| from_cookie));
    // A bad access token is ignored when a refresh token names the session anyway.
    let claims = headers
        .get(http::header::AUTHORIZATION)
        .and_then(bearer_token)
        .and_then(|token| service.authenticate_sync(token).ok());
    service.logout(refresh_token.as_deref(), claims.as_ref()).await?;
    let mut response = ok("logged_out");
    response.headers_mut().insert(http::header::SET_COOKIE, cleared_refresh_cookie());
    Ok(response)
}

async fn logout_all(
    State(service): State<Arc<AuthService>>,
    Authenticated(claims): Authenticated,
) -> Result<Response, AuthError> {
    service.logout_everywhere(&claims).await?;
    Ok(ok("logged_out_everywhere"))
}

async fn reset_request(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<EmailRequest>,
) -> Result<Response, AuthError> {
    service.request_reset(&body.email, ip).await?;
    Ok(accepted("reset_sent"))
}

async fn reset_confirm(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ResetConfirmRequest>,
) -> Result<Response, AuthError> {
    service.confirm_reset(&body.token, &body.password, ip).await?;
    Ok(ok("password_reset"))
}

async fn change_password(
    State(service): State<Arc<AuthService>>,
    Authenticated(claims): Authenticated,
    JsonBody(body): JsonBody<PasswordChangeRequest>,
) -> Result<Response, AuthError> {
    service.change_password(&claims, &body.current_password, &body.new_password).await?;
    Ok(ok("password_changed"))
}

async fn get_deck(
    State(service): State<Arc<AuthService>>,
    Authenticated(claims): Authenticated,
) -> Result<Response, AuthError> {
    let deck = service.load_deck(&claims).await?.unwrap_or_default();
    Ok(Json(deck).into_response())
}

async fn put_deck(
    State(service): State<Arc<AuthService>>,
    Authenticated(claims): Authenticated,
    JsonBody(deck): JsonBody<Deck>,
) -> Result<Response, AuthError> {
    service.save_deck(&claims, &deck).await?;
    Ok(Json(deck).into_response())
}

async fn issue_ticket(
    State(service): State<Arc<AuthService>>,
    ClientIp(ip): ClientIp,
    MaybeAuthenticated(claims): MaybeAuthenticated,
) -> Result<Response, AuthError> {
    let issued = service.issue_ticket(claims.as_ref(), ip).await?;
    Ok(no_store(Json(issued).into_response()))
}
