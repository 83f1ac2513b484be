//! The HTTP API of Ultimate Optimizer. [`AppState::build`] wires configuration, storage and
//! secrets together; [`router`] is the complete axum application (API, OpenAPI document,
//! dashboard); [`serve`] runs it on a listener until a shutdown future resolves, which is
//! how both the binary (signals) and the tests (a oneshot) drive it.

pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod listen;
pub mod rate_limit;
pub mod routes;
mod web;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrets::{EncryptionKey, Keyring};
use storage::Storage;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::tokens::AccessTokens;
use crate::config::{ConfigError, Settings};
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;

/// Origins of the Wix dashboard, which frames our app and calls our API.
const WIX_ORIGIN_SUFFIXES: [&str; 2] = [".wix.com", ".editorx.com"];

/// Login limits count attempts in this window.
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Registration limits count sign-ups in this window.
const REGISTRATION_WINDOW: Duration = Duration::from_secs(60 * 60);

/// The dashboard's content policy: its own scripts only; inline styles (the design
/// system's components set `style` attributes); the design system's fonts from Wix's CDN;
/// product images from anywhere over HTTPS; framed only by itself and the Wix dashboard. `X-Frame-Options` is deliberately not sent:
/// `SAMEORIGIN` would block the Wix dashboard iframe.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; \
     font-src 'self' data: https://static.parastorage.com; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'self' https://manage.wix.com https://*.wix.com https://*.editorx.com; \
     object-src 'none'; base-uri 'self'";

/// A year, as browsers expect HSTS to be set.
const HSTS: &str = "max-age=31536000; includeSubDomains";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("encryption key: {0}")]
    Secrets(#[from] secrets::SecretsError),
    #[error("AI provider: {0}")]
    Provider(#[from] ai::AiError),
    #[error("billing: {0}")]
    Billing(#[from] billing::BillingError),
}

/// The text provider the settings name: the offline rules, or an OpenAI-compatible API.
pub fn text_provider(settings: &Settings) -> Result<Arc<dyn ai::TextOptimizer>, ai::AiError> {
    use config::AiProviderKind;
    let jobs = &settings.jobs;
    match (jobs.provider, &jobs.openai_api_key) {
        (AiProviderKind::OpenAi, Some(key)) => {
            let mut config = ai::OpenAiConfig::new(key.expose().clone());
            config.base_url = jobs.openai_base_url.clone();
            config.model = jobs.openai_model.clone();
            Ok(Arc::new(ai::OpenAiOptimizer::new(config)?))
        }
        _ => Ok(Arc::new(ai::RulesOptimizer::new())),
    }
}

/// Shared, read-mostly state of one server process.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub settings: Settings,
    pub storage: Arc<dyn Storage>,
    pub keyring: Keyring,
    pub access_tokens: AccessTokens,
    pub api_limiter: RateLimiter,
    pub login_email_limiter: RateLimiter,
    pub login_ip_limiter: RateLimiter,
    pub registration_ip_limiter: RateLimiter,
    /// `serve --demo`: the demo account's login link may be used.
    pub demo_mode: bool,
    /// Wakes this process's sync worker when a request queues a sync.
    pub sync_wake: Arc<tokio::sync::Notify>,
    /// Writes job content; also what `/api/optimizer/options` describes.
    pub text_provider: Arc<dyn ai::TextOptimizer>,
    /// Plans and credits: billing webhooks, reconciliation, the billing page.
    pub billing: billing::Billing,
    /// Verifies Wix webhooks; `None` until `WIX_PUBLIC_KEY` is set.
    pub wix_webhooks: Option<billing::WixWebhookVerifier>,
    pub openapi_json: String,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Checks the settings, loads keys, connects to and migrates the database and seeds
    /// the configured plans.
    pub async fn build(settings: Settings, demo_mode: bool) -> Result<Self, StartupError> {
        settings.check_production_requirements()?;
        let keyring = load_keyring(&settings)?;
        let storage = storage::connect(
            &settings.resolved_database_url(),
            settings.database_max_connections,
        )
        .await?;
        storage.sync_plans(&settings.plans).await?;
        let provider = text_provider(&settings)?;
        // A public key that does not parse stops the start, instead of refusing every
        // webhook later.
        wix_webhook_verifier(&settings).transpose()?;
        Ok(Self::with_parts(
            settings, storage, keyring, provider, demo_mode,
        ))
    }

    pub fn with_parts(
        settings: Settings,
        storage: Arc<dyn Storage>,
        keyring: Keyring,
        text_provider: Arc<dyn ai::TextOptimizer>,
        demo_mode: bool,
    ) -> Self {
        let access_tokens = AccessTokens::new(&keyring.primary().derive("access-token-signing"));
        let (_, openapi) = routes::api();
        let openapi_json = serde_json::to_string_pretty(&openapi).unwrap_or_default();
        let wix_webhooks = wix_webhook_verifier(&settings).and_then(|verifier| {
            verifier
                .inspect_err(|err| tracing::error!(error.cause = %err, "Wix webhooks are refused"))
                .ok()
        });
        let billing = billing::Billing::new(storage.clone(), billing_config(&settings));
        AppState(Arc::new(AppInner {
            billing,
            wix_webhooks,
            api_limiter: RateLimiter::new(settings.rate_limit_per_minute, Duration::from_secs(60)),
            login_email_limiter: RateLimiter::new(settings.login_attempts_per_email, LOGIN_WINDOW),
            login_ip_limiter: RateLimiter::new(settings.login_attempts_per_ip, LOGIN_WINDOW),
            registration_ip_limiter: RateLimiter::new(
                settings.registrations_per_ip,
                REGISTRATION_WINDOW,
            ),
            settings,
            storage,
            keyring,
            access_tokens,
            demo_mode,
            sync_wake: Arc::default(),
            text_provider,
            openapi_json,
        }))
    }

    /// How the workers of this process reach the store platforms.
    pub fn connector_settings(&self) -> worker::sync::ConnectorSettings {
        worker::sync::ConnectorSettings {
            woocommerce: connectors::woocommerce::ClientOptions {
                allow_http: self.settings.woocommerce_allow_http,
                allow_private_addresses: self.settings.allow_private_store_addresses,
                ..Default::default()
            },
            wix: self.settings.wix.as_ref().and_then(|wix| {
                Some(worker::sync::WixApp {
                    app_id: wix.app_id.clone(),
                    app_secret: wix.app_secret.as_ref()?.expose().clone(),
                    api_base_url: wix.api_base_url.clone(),
                })
            }),
        }
    }

    /// A sync worker sharing this process's storage, keys and wake-up signal.
    /// The job engine of this process, as the settings configure it.
    pub fn job_engine(&self) -> worker::engine::JobEngine {
        let jobs = &self.settings.jobs;
        let config = worker::engine::EngineConfig {
            concurrency: jobs.concurrency,
            batch_size: jobs.batch_size,
            lease: Duration::from_secs(jobs.lease_secs),
            heartbeat: Duration::from_secs((jobs.lease_secs / 3).max(1)),
            retry: domain::RetryPolicy {
                max_attempts: jobs.max_attempts,
                base: Duration::from_millis(jobs.retry_base_ms),
                ..Default::default()
            },
            rate_limit_per_minute: Some(jobs.provider_rate_limit_per_minute).filter(|n| *n > 0),
            drain_deadline: Duration::from_secs(
                self.settings.shutdown_timeout_secs.saturating_sub(5).max(1),
            ),
            ..Default::default()
        };
        let processor = Arc::new(worker::text::TextProcessor {
            provider: self.text_provider.clone(),
        });
        worker::engine::JobEngine::new(self.storage.clone(), processor, config)
    }

    /// What the scheduler's retention task deletes and when, as the settings configure it.
    pub fn retention_policy(&self) -> worker::retention::RetentionPolicy {
        let retention = &self.settings.retention;
        worker::retention::RetentionPolicy::from_days(
            retention.completed_jobs_days,
            retention.failed_jobs_days,
            retention.publish_logs_days,
            retention.account_deletion_grace_days,
        )
    }

    /// Publishes and reverts job results through the store connectors.
    pub fn publisher(&self) -> worker::publish::Publisher {
        worker::publish::Publisher {
            storage: self.storage.clone(),
            keyring: self.keyring.clone(),
            settings: self.connector_settings(),
        }
    }

    pub fn sync_worker(&self) -> worker::sync::SyncWorker {
        worker::sync::SyncWorker {
            storage: self.storage.clone(),
            keyring: self.keyring.clone(),
            settings: self.connector_settings(),
            wake: self.sync_wake.clone(),
        }
    }
}

/// The verifier of Wix webhooks, when the app's public key is configured.
fn wix_webhook_verifier(
    settings: &Settings,
) -> Option<Result<billing::WixWebhookVerifier, billing::BillingError>> {
    let key = settings.wix.as_ref()?.public_key.as_ref()?;
    Some(billing::WixWebhookVerifier::new(key.expose()))
}

/// What billing needs from the settings.
fn billing_config(settings: &Settings) -> billing::BillingConfig {
    billing::BillingConfig {
        plan_aliases: settings.plan_aliases.clone(),
        wix: settings.wix.as_ref().and_then(|wix| {
            Some(billing::WixBillingApp {
                app_id: wix.app_id.clone(),
                app_secret: wix.app_secret.as_ref()?.expose().clone(),
                api_base_url: wix.api_base_url.clone(),
            })
        }),
        stripe: settings
            .stripe
            .as_ref()
            .map(|stripe| billing::StripeBillingApp {
                secret_key: stripe.secret_key.expose().clone(),
                webhook_secret: stripe
                    .webhook_secret
                    .as_ref()
                    .map(|secret| secret.expose().clone())
                    .unwrap_or_default(),
                api_base_url: stripe.api_base_url.clone(),
                prices: stripe.prices.clone(),
            }),
        public_url: settings.public_base_url(),
    }
}

/// The configured key, or in development the key file in the data folder (created on first
/// start, with a warning: such a key is only as safe as that folder).
fn load_keyring(settings: &Settings) -> Result<Keyring, StartupError> {
    let primary = match &settings.encryption_key {
        Some(key) => EncryptionKey::parse(key.expose())?,
        None => {
            let path = settings.data_dir.join("encryption.key");
            let (key, created) = secrets::load_or_create_key_file(&path)?;
            if created {
                tracing::warn!(
                    key.path = %path.display(),
                    key.id = key.id(),
                    "generated a development encryption key; set OPTIMIZER_ENCRYPTION_KEY in production"
                );
            }
            key
        }
    };
    let previous = settings
        .previous_encryption_keys
        .iter()
        .map(|key| EncryptionKey::parse(key.expose()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keyring::new(primary, previous))
}

/// The complete application: API routes, dashboard, and the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let (api, _) = routes::api();
    let cors = cors_layer(&state.settings.cors_origins);
    let hsts = state.settings.sends_hsts().then(|| {
        SetResponseHeaderLayer::overriding(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        )
    });
    api.fallback(web::static_or_app)
        // Every body extractor is held to the JSON limit; the routes that take more (a
        // catalog CSV) read their body themselves with their own limit.
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_deadline,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            json_error_bodies,
        ))
        .layer(axum::middleware::map_response(no_store_for_api))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(tower::util::option_layer(hsts))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(cors)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    // The path only: query strings can carry a Wix instance.
                    tracing::info_span!(
                        "request",
                        http.method = %request.method(),
                        http.path = %request.uri().path(),
                        request.id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn cors_layer(extra_origins: &[String]) -> CorsLayer {
    let extra: Vec<String> = extra_origins
        .iter()
        .map(|origin| origin.trim_end_matches('/').to_owned())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            if extra.iter().any(|allowed| allowed == origin) {
                return true;
            }
            origin.strip_prefix("https://").is_some_and(|host| {
                WIX_ORIGIN_SUFFIXES
                    .iter()
                    .any(|suffix| host.ends_with(suffix) || host == &suffix[1..])
            })
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("x-wix-instance"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            axum::http::header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}

/// Routes whose answer is a stream that lives as long as its session, not a request.
const STREAMING_PATHS: &[&str] = &["/api/jobs/events"];

/// Answers 408 when a request (its body upload included) takes longer than the request
/// timeout; a slow client cannot hold a connection and a handler forever. Streams are
/// exempt: they end with their session.
async fn request_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if STREAMING_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let limit = Duration::from_secs(state.settings.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout {
            limit_secs: limit.as_secs(),
        }
        .into_response(),
    }
}

/// API answers carry sessions, credits and store data: no cache may keep them.
async fn no_store_for_api(uri: axum::http::Uri, mut response: Response) -> Response {
    if uri.path().starts_with("/api/") && !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Gives error answers produced outside our handlers (axum's 405, a layer's 413) the same
/// JSON shape as ours.
async fn json_error_bodies(
    axum::extract::State(state): axum::extract::State<AppState>,
    response: Response,
) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::RouteNotFound,
        // Only the extractors' shared limit (the JSON limit) answers 413 outside our code.
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: state.settings.max_body_bytes,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        other if other.is_client_error() => {
            ApiError::InvalidJson(format!("request refused ({other})"))
        }
        other => ApiError::Internal(format!("upstream layer answered {other}")),
    };
    let mut replaced = error.into_response();
    for name in ["allow", "x-request-id"] {
        if let Some(value) = response.headers().get(name) {
            replaced
                .headers_mut()
                .insert(HeaderName::from_static(name), value.clone());
        }
    }
    replaced
}

/// Serves `state` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweep = tokio::spawn(sweep_billing_backlog(state.billing.clone()));
    let settings = &state.settings;
    let limits = listen::ConnectionLimits {
        header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
        max_connections: settings.max_connections,
        shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_secs),
    };
    let app = router(state);
    let served = listen::serve_connections(listener, app, limits, shutdown).await;
    sweep.abort();
    served
}

/// How long a recorded webhook may stay unprocessed before the sweep takes it: longer
/// than any request that is still processing it.
const BACKLOG_GRACE: chrono::Duration = chrono::Duration::minutes(1);

/// Processes billing deliveries whose request stopped between recording and applying
/// them (a crash, a restart). Runs in every serving process; applying twice is harmless.
async fn sweep_billing_backlog(billing: billing::Billing) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        match billing
            .process_wix_backlog(chrono::Utc::now(), BACKLOG_GRACE)
            .await
        {
            Ok(0) => {}
            Ok(processed) => tracing::info!(
                billing.processed = processed,
                "processed recorded Wix webhooks"
            ),
            Err(err) => {
                tracing::error!(error.cause = %err, "processing recorded Wix webhooks failed")
            }
        }
    }
}
