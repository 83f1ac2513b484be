//! Liveness and readiness probes for load balancers and orchestrators.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    pub version: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness: the database answers, so requests can be served.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The database does not answer", body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Readiness>> {
    state
        .storage
        .ping()
        .await
        .map_err(|err| ApiError::Unavailable(format!("database: {err}")))?;
    let database = match state.storage.backend() {
        storage::Backend::Sqlite => "sqlite",
        storage::Backend::Postgres => "postgres",
    };
    Ok(Json(Readiness {
        status: "ready".into(),
        database: database.into(),
    }))
}
