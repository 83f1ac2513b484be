//! Every route of the API. Routes are registered through `utoipa_axum::routes!`, which adds
//! each handler's `#[utoipa::path]` to the OpenAPI document as it adds the route: a route
//! cannot exist without being documented.

pub mod account;
pub mod auth;
pub mod billing;
pub mod catalog;
mod document;
pub mod health;
pub mod jobs;
pub mod webhooks;
pub mod woocommerce_auth;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ultimate Optimizer API",
        description = "Optimize e-commerce catalogs with AI. Every error answers \
            `{\"error\": {\"code\", \"message\", \"details\"}}`. Text never contains the \
            NUL character (U+0000): a request with one is refused with 400 naming the field \
            (the string schemas say so with a pattern).",
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Probes"),
        (name = "auth", description = "Standalone accounts and sessions"),
        (name = "account", description = "The signed-in account"),
        (name = "catalog", description = "Stores, products and collections"),
        (name = "jobs", description = "Content optimization jobs, publishing and reverting"),
        (name = "billing", description = "Plan, credits and usage history"),
        (name = "webhooks", description = "Deliveries from the store platforms and billing systems"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "wixInstance",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Wix-Instance",
                "The signed instance Wix passes to the dashboard iframe; \
                 `Authorization: WixInstance <instance>` is accepted too. When a request \
                 carries both an `Authorization` header and `X-Wix-Instance`, the \
                 `Authorization` header alone counts; an empty header counts as absent.",
            ))),
        );
    }
}

/// The page size a list request asks for: `default` when absent, refused (400 naming
/// `limit`) outside 1 to `max`, as the document states with `minimum` and `maximum`.
pub(crate) fn page_size(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        state.openapi_json.clone(),
    )
}

/// The API routes and the OpenAPI document describing exactly them.
pub fn api() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(openapi_document))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::demo_login))
        .routes(routes!(auth::me))
        .routes(routes!(account::me))
        .routes(routes!(account::update_account))
        .routes(routes!(catalog::list_stores, catalog::create_store))
        .routes(routes!(
            catalog::get_store,
            catalog::update_store,
            catalog::delete_store
        ))
        .routes(routes!(catalog::import_catalog))
        .routes(routes!(catalog::sync_store, catalog::sync_status))
        .routes(routes!(catalog::get_sync_request))
        .routes(routes!(webhooks::woocommerce_webhook))
        .routes(routes!(webhooks::wix_webhook))
        .routes(routes!(billing::get_billing))
        .routes(routes!(billing::billing_history))
        .routes(routes!(billing::sync_credits))
        .routes(routes!(billing::checkout))
        .routes(routes!(billing::portal))
        .routes(routes!(webhooks::stripe_webhook))
        .routes(routes!(woocommerce_auth::start_authorization))
        .routes(routes!(woocommerce_auth::receive_keys))
        .routes(routes!(catalog::sync_history))
        .routes(routes!(catalog::export_catalog))
        .routes(routes!(catalog::list_products))
        .routes(routes!(catalog::get_product))
        .routes(routes!(catalog::list_collections))
        .routes(routes!(jobs::optimizer_options))
        .routes(routes!(jobs::list_jobs, jobs::create_job))
        .routes(routes!(jobs::job_events))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::list_job_items))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(jobs::publish))
        .routes(routes!(jobs::revert))
        .split_for_parts();
    // The route-wide rules need the operations, which exist only once the routes are added.
    document::CrossCuttingResponses.modify(&mut openapi);
    document::NoNulText.modify(&mut openapi);
    document::Links.modify(&mut openapi);
    (router, openapi)
}
