//! Serves the built dashboard (`web/dist`): hashed assets with long caching, and
//! `index.html` for every other page path so the single-page app's router can take over.
//! API paths never fall through to the app: an unknown `/api/…` path is a JSON 404.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::error::ApiError;
use crate::AppState;

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Ultimate Optimizer</title>\
<p>The dashboard has not been built. Run <code>make run</code> (or <code>npm --prefix web run build</code>).</p>";

pub async fn static_or_app(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::RouteNotFound.into_response();
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return ApiError::MethodNotAllowed.into_response();
    }
    if let Some(file) = path.strip_prefix(crate::demo::IMAGE_PREFIX) {
        return match crate::demo::image(file).filter(|_| file.ends_with(".svg")) {
            Some(bytes) => (
                [
                    (CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
                    (
                        CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=86400"),
                    ),
                ],
                bytes,
            )
                .into_response(),
            None => ApiError::NotFound("image").into_response(),
        };
    }
    let web_dir = state.settings.web_dir.clone();
    let served = ServeDir::new(&web_dir)
        .precompressed_gzip()
        .oneshot(request)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(|never| match never {});
    let last_segment = path.rsplit('/').next().unwrap_or_default();
    if served.status() == StatusCode::NOT_FOUND && !last_segment.contains('.') {
        return index_html(&web_dir).await;
    }
    let mut served = served;
    if served.status().is_success() {
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        served
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    served
}

async fn index_html(web_dir: &std::path::Path) -> Response {
    let (status, body) = match tokio::fs::read(web_dir.join("index.html")).await {
        Ok(bytes) => (StatusCode::OK, Body::from(bytes)),
        Err(_) => (StatusCode::OK, Body::from(NOT_BUILT)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
