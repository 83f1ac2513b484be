//! Settings. Precedence, lowest first: built-in defaults, the optional TOML file
//! (`--config` or `OPTIMIZER_CONFIG`), environment variables, command-line flags. Every
//! setting is listed once in [`SETTINGS`], which the README's configuration table mirrors
//! (a test keeps the two in step).

use std::path::{Path, PathBuf};

use domain::{default_plans, Plan};
use secrets::Secret;
use serde::Deserialize;

/// Documentation of one setting: its environment variable, TOML key, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    pub env: &'static str,
    pub key: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every setting the service reads.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc { env: "OPTIMIZER_CONFIG", key: "-", default: "(none)", description: "Path of an optional TOML file with any of the keys below." },
    SettingDoc { env: "OPTIMIZER_ENV", key: "environment", default: "development", description: "`development` or `production`. Production refuses to start without its secrets instead of using development defaults." },
    SettingDoc { env: "OPTIMIZER_HOST", key: "host", default: "127.0.0.1", description: "Address to listen on (`0.0.0.0` to accept outside connections)." },
    SettingDoc { env: "OPTIMIZER_PORT", key: "port", default: "3000", description: "Port to listen on (`0` picks a free one); `--port` overrides." },
    SettingDoc { env: "OPTIMIZER_PUBLIC_URL", key: "public_url", default: "http://<host>:<port>", description: "The address merchants reach the service at; used in links the service prints or sends." },
    SettingDoc { env: "OPTIMIZER_DATA_DIR", key: "data_dir", default: "./data", description: "Folder for the SQLite database and the development encryption key." },
    SettingDoc { env: "DATABASE_URL", key: "database_url", default: "sqlite://<data_dir>/optimizer.db", description: "`sqlite://…` (embedded) or `postgres://…` (production, several processes)." },
    SettingDoc { env: "OPTIMIZER_DATABASE_MAX_CONNECTIONS", key: "database_max_connections", default: "10", description: "Connection pool size per process." },
    SettingDoc { env: "OPTIMIZER_WEB_DIR", key: "web_dir", default: "web/dist", description: "Folder of the built dashboard that the server serves." },
    SettingDoc { env: "OPTIMIZER_ENCRYPTION_KEY", key: "encryption_key", default: "(development: generated into <data_dir>/encryption.key)", description: "32-byte key, base64 or hex, for AES-256-GCM encryption of stored credentials; also keys access tokens. Required in production." },
    SettingDoc { env: "OPTIMIZER_PREVIOUS_ENCRYPTION_KEYS", key: "previous_encryption_keys", default: "(none)", description: "Comma-separated older keys that still decrypt existing data after a key rotation." },
    SettingDoc { env: "WIX_APP_ID", key: "wix_app_id", default: "(none: Wix disabled)", description: "The Wix app id; setting it enables the Wix integration." },
    SettingDoc { env: "WIX_APP_SECRET", key: "wix_app_secret", default: "(none)", description: "The Wix app secret; verifies dashboard instances. Required in production when Wix is enabled." },
    SettingDoc { env: "WIX_PUBLIC_KEY", key: "wix_public_key", default: "(none)", description: "The Wix app public key (PEM or base64 PEM); verifies Wix webhooks. Required in production when Wix is enabled." },
    SettingDoc { env: "WIX_API_BASE_URL", key: "wix_api_base_url", default: "https://www.wixapis.com", description: "The Wix REST API the Wix connector calls (changed only to test against a stand-in)." },
    SettingDoc { env: "OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP", key: "woocommerce_allow_http", default: "false", description: "Accept `http://` WooCommerce stores (local development only; real stores need HTTPS for API keys)." },
    SettingDoc { env: "STRIPE_SECRET_KEY", key: "stripe_secret_key", default: "(none: Stripe disabled)", description: "Stripe secret key (`sk_...`); setting it lets standalone accounts buy plans through Stripe Checkout. Needs STRIPE_WEBHOOK_SECRET and STRIPE_PRICES." },
    SettingDoc { env: "STRIPE_WEBHOOK_SECRET", key: "stripe_webhook_secret", default: "(none)", description: "Signing secret (`whsec_...`) of the Stripe webhook endpoint `<public URL>/api/webhooks/stripe`; create the endpoint pinned to the API version the client uses (see README)." },
    SettingDoc { env: "STRIPE_PRICES", key: "stripe_prices", default: "(none)", description: "Comma-separated `plan=price_id` pairs: the Stripe price that sells each paid plan (e.g. `starter=price_123,pro=price_456`)." },
    SettingDoc { env: "STRIPE_API_BASE_URL", key: "stripe_api_base_url", default: "https://api.stripe.com", description: "The Stripe API the client calls (changed only to test against a stand-in)." },
    SettingDoc { env: "OPTIMIZER_ALLOW_PRIVATE_STORE_ADDRESSES", key: "allow_private_store_addresses", default: "false", description: "Connect stores on private or local networks (an intranet WooCommerce of a self-hosted installation). Off, store addresses that are or resolve to private, loopback or link-local addresses are refused; `OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP` implies it." },
    SettingDoc { env: "OPTIMIZER_CORS_ORIGINS", key: "cors_origins", default: "(none)", description: "Comma-separated extra origins allowed by CORS, besides the Wix dashboard origins." },
    SettingDoc { env: "OPTIMIZER_MAX_BODY_BYTES", key: "max_body_bytes", default: "1048576", description: "Largest JSON request body accepted (413 above)." },
    SettingDoc { env: "OPTIMIZER_MAX_IMPORT_BYTES", key: "max_import_bytes", default: "20971520", description: "Largest catalog CSV upload accepted (413 above)." },
    SettingDoc { env: "OPTIMIZER_MAX_PRODUCTS_PER_STORE", key: "max_products_per_store", default: "100000", description: "Most products a local catalog holds: an import that would go past it is refused whole (400 `too_many_products`), nothing written." },
    SettingDoc { env: "OPTIMIZER_RATE_LIMIT_PER_MINUTE", key: "rate_limit_per_minute", default: "600", description: "API requests per account per minute (429 with Retry-After above)." },
    SettingDoc { env: "OPTIMIZER_LOGIN_ATTEMPTS_PER_EMAIL", key: "login_attempts_per_email", default: "10", description: "Login attempts per email address per 15 minutes." },
    SettingDoc { env: "OPTIMIZER_LOGIN_ATTEMPTS_PER_IP", key: "login_attempts_per_ip", default: "30", description: "Login attempts per client IP per 15 minutes." },
    SettingDoc { env: "OPTIMIZER_REGISTRATIONS_PER_IP", key: "registrations_per_ip", default: "5", description: "Standalone sign-ups per client IP per hour (429 with Retry-After above)." },
    SettingDoc { env: "OPTIMIZER_STANDALONE_FREE_CREDITS", key: "standalone_free_credits", default: "(the Free plan's credits: 200)", description: "Monthly credits of standalone accounts (not billed through Wix) on the Free plan, new sign-ups included; `0` gives them none until they buy a plan. Wix accounts keep the Free plan's credits." },
    SettingDoc { env: "OPTIMIZER_HEADER_READ_TIMEOUT_SECS", key: "header_read_timeout_secs", default: "10", description: "A connection must send a complete request head within this long (also the idle time of a kept-alive connection); slower ones are closed." },
    SettingDoc { env: "OPTIMIZER_REQUEST_TIMEOUT_SECS", key: "request_timeout_secs", default: "120", description: "Longest time from a request's head to its answer, body upload included (408 above); the job event stream is exempt and ends with its session." },
    SettingDoc { env: "OPTIMIZER_MAX_CONNECTIONS", key: "max_connections", default: "10000", description: "Open client connections per process; further ones wait to be accepted. Held below the process's file-descriptor limit." },
    SettingDoc { env: "OPTIMIZER_TRUST_PROXY", key: "trust_proxy", default: "false", description: "Take the client IP from `X-Forwarded-For` (only behind a proxy you run)." },
    SettingDoc { env: "OPTIMIZER_LOG_FORMAT", key: "log_format", default: "json", description: "`json` or `pretty`. Level filter from `RUST_LOG` (default `info`)." },
    SettingDoc { env: "OPTIMIZER_SHUTDOWN_TIMEOUT_SECS", key: "shutdown_timeout_secs", default: "30", description: "How long a stopping process waits for in-flight work." },
    SettingDoc { env: "OPTIMIZER_AI_PROVIDER", key: "ai_provider", default: "openai when OPENAI_API_KEY is set, else rules", description: "Text provider of optimization jobs: `rules` (offline, deterministic cleanup; cannot translate) or `openai` (any OpenAI-compatible API)." },
    SettingDoc { env: "OPENAI_API_KEY", key: "openai_api_key", default: "(none)", description: "API key of the OpenAI-compatible provider; setting it switches jobs to the `openai` provider." },
    SettingDoc { env: "OPENAI_BASE_URL", key: "openai_base_url", default: "https://api.openai.com/v1", description: "Base URL of the OpenAI-compatible API (a local server works too)." },
    SettingDoc { env: "OPENAI_MODEL", key: "openai_model", default: "gpt-4o-mini", description: "Model the `openai` provider asks for." },
    SettingDoc { env: "OPTIMIZER_JOB_CONCURRENCY", key: "job_concurrency", default: "16", description: "Job items a worker process works on at once." },
    SettingDoc { env: "OPTIMIZER_JOB_BATCH_SIZE", key: "job_batch_size", default: "32", description: "Most items one claim takes from the queue." },
    SettingDoc { env: "OPTIMIZER_JOB_LEASE_SECS", key: "job_lease_secs", default: "60", description: "Lease of a claimed item; a worker that stops heartbeating loses its items after this long." },
    SettingDoc { env: "OPTIMIZER_JOB_MAX_ATTEMPTS", key: "job_max_attempts", default: "8", description: "Attempts per item before it fails for good (and is refunded)." },
    SettingDoc { env: "OPTIMIZER_JOB_RETRY_BASE_MS", key: "job_retry_base_ms", default: "2000", description: "Wait after an item's first retryable failure; each further failure doubles it (with jitter, up to 5 minutes, never sooner than the provider's Retry-After)." },
    SettingDoc { env: "OPTIMIZER_PROVIDER_RATE_LIMIT_PER_MINUTE", key: "provider_rate_limit_per_minute", default: "0 (no cap; 429s still slow it down)", description: "AI provider calls per minute per worker process; halves on a 429 and grows back." },
    SettingDoc { env: "OPTIMIZER_MAX_PRODUCTS_PER_JOB", key: "max_products_per_job", default: "5000", description: "Largest selection one job accepts." },
    SettingDoc { env: "OPTIMIZER_RETENTION_COMPLETED_JOBS_DAYS", key: "retention_completed_jobs_days", default: "90", description: "Done and canceled jobs (with their items) are deleted this many days after they finished; a job with a published, unreverted item is kept while its publish log is. `0` keeps them forever." },
    SettingDoc { env: "OPTIMIZER_RETENTION_FAILED_JOBS_DAYS", key: "retention_failed_jobs_days", default: "30", description: "Failed jobs (every item failed) are deleted this many days after they finished. `0` keeps them forever." },
    SettingDoc { env: "OPTIMIZER_RETENTION_PUBLISH_LOGS_DAYS", key: "retention_publish_logs_days", default: "365", description: "Publish logs (the audit record of every write to a store, needed to revert) are deleted this many days after the write. `0` keeps them forever." },
    SettingDoc { env: "OPTIMIZER_ACCOUNT_DELETION_GRACE_DAYS", key: "account_deletion_grace_days", default: "30", description: "An account marked inactive (the app was removed) is deleted with all its data this many days later. `0` never deletes automatically." },
    SettingDoc { env: "OPTIMIZER_PLAN_ALIASES", key: "plan_aliases", default: "(none)", description: "Comma-separated `name=plan` pairs naming our plan for a billing system's plan name (a Wix `vendorProductId`). Names like `starter`, `Starter-Plan`, `starter-monthly`, `starter-yearly` are understood without it; an unknown plan falls back to free, with a warning." },
    SettingDoc { env: "-", key: "[[plans]]", default: "free 0/200, starter 900/1000, pro 1900/5000, scale 4900/25000", description: "TOML only: plan `id`, `name`, `price_monthly_cents`, `monthly_credits`, replacing the built-in plan of the same id." },
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("{name} has an invalid value {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("production mode needs {0}; refusing to start with development defaults")]
    MissingInProduction(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Wix app credentials; present when the Wix integration is enabled.
#[derive(Debug, Clone)]
pub struct WixSettings {
    pub app_id: String,
    pub app_secret: Option<Secret<String>>,
    pub public_key: Option<Secret<String>>,
    /// Where the Wix REST API is (`https://www.wixapis.com`; a fake in tests).
    pub api_base_url: String,
}

/// Stripe, for standalone accounts; present when `STRIPE_SECRET_KEY` is set.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub secret_key: Secret<String>,
    pub webhook_secret: Option<Secret<String>>,
    /// Our plan id → the Stripe price that sells it.
    pub prices: std::collections::HashMap<String, String>,
    pub api_base_url: String,
}

/// The resolved configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub host: String,
    pub port: u16,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    pub web_dir: PathBuf,
    pub encryption_key: Option<Secret<String>>,
    pub previous_encryption_keys: Vec<Secret<String>>,
    pub wix: Option<WixSettings>,
    pub stripe: Option<StripeSettings>,
    pub woocommerce_allow_http: bool,
    pub allow_private_store_addresses: bool,
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub max_import_bytes: usize,
    /// Most products a catalog import may leave in a store.
    pub max_products_per_store: u64,
    pub rate_limit_per_minute: u32,
    pub login_attempts_per_email: u32,
    pub login_attempts_per_ip: u32,
    /// Sign-ups per client IP per hour.
    pub registrations_per_ip: u32,
    pub header_read_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub max_connections: usize,
    pub trust_proxy: bool,
    pub log_format: LogFormat,
    pub shutdown_timeout_secs: u64,
    pub plans: Vec<Plan>,
    /// Billing-system plan names → plan ids.
    pub plan_aliases: std::collections::HashMap<String, String>,
    pub jobs: JobSettings,
    pub retention: RetentionSettings,
}

/// How long data is kept, in days; `0` switches that deletion off. The scheduler's leader
/// applies them (see `worker::retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub completed_jobs_days: u32,
    pub failed_jobs_days: u32,
    pub publish_logs_days: u32,
    pub account_deletion_grace_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            completed_jobs_days: 90,
            failed_jobs_days: 30,
            publish_logs_days: 365,
            account_deletion_grace_days: 30,
        }
    }
}

/// Which AI provider writes content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiProviderKind {
    Rules,
    OpenAi,
}

/// The optimization jobs' provider and engine settings.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub provider: AiProviderKind,
    pub openai_api_key: Option<Secret<String>>,
    pub openai_base_url: String,
    pub openai_model: String,
    pub concurrency: usize,
    pub batch_size: usize,
    pub lease_secs: u64,
    pub max_attempts: i64,
    /// Backoff after the first retryable failure, in milliseconds.
    pub retry_base_ms: u64,
    /// `0`: no cap.
    pub provider_rate_limit_per_minute: u32,
    pub max_products_per_job: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            provider: AiProviderKind::Rules,
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_model: "gpt-4o-mini".into(),
            concurrency: 16,
            batch_size: 32,
            lease_secs: 60,
            max_attempts: 8,
            retry_base_ms: 2000,
            provider_rate_limit_per_minute: 0,
            max_products_per_job: 5000,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            environment: Environment::Development,
            host: "127.0.0.1".into(),
            port: 3000,
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            web_dir: PathBuf::from("web/dist"),
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
            wix: None,
            stripe: None,
            woocommerce_allow_http: false,
            allow_private_store_addresses: false,
            cors_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 20 * 1024 * 1024,
            max_products_per_store: 100_000,
            rate_limit_per_minute: 600,
            login_attempts_per_email: 10,
            login_attempts_per_ip: 30,
            registrations_per_ip: 5,
            header_read_timeout_secs: 10,
            request_timeout_secs: 120,
            max_connections: 10_000,
            trust_proxy: false,
            log_format: LogFormat::Json,
            shutdown_timeout_secs: 30,
            plans: default_plans(),
            plan_aliases: Default::default(),
            jobs: JobSettings::default(),
            retention: RetentionSettings::default(),
        }
    }
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    environment: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    web_dir: Option<PathBuf>,
    encryption_key: Option<String>,
    previous_encryption_keys: Option<Vec<String>>,
    wix_app_id: Option<String>,
    wix_app_secret: Option<String>,
    wix_public_key: Option<String>,
    wix_api_base_url: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_webhook_secret: Option<String>,
    stripe_prices: Option<std::collections::HashMap<String, String>>,
    stripe_api_base_url: Option<String>,
    woocommerce_allow_http: Option<bool>,
    allow_private_store_addresses: Option<bool>,
    cors_origins: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    max_import_bytes: Option<usize>,
    max_products_per_store: Option<u64>,
    rate_limit_per_minute: Option<u32>,
    login_attempts_per_email: Option<u32>,
    login_attempts_per_ip: Option<u32>,
    registrations_per_ip: Option<u32>,
    standalone_free_credits: Option<i64>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    trust_proxy: Option<bool>,
    log_format: Option<String>,
    shutdown_timeout_secs: Option<u64>,
    plans: Option<Vec<Plan>>,
    plan_aliases: Option<std::collections::HashMap<String, String>>,
    ai_provider: Option<String>,
    openai_api_key: Option<String>,
    openai_base_url: Option<String>,
    openai_model: Option<String>,
    job_concurrency: Option<usize>,
    job_batch_size: Option<usize>,
    job_lease_secs: Option<u64>,
    job_max_attempts: Option<i64>,
    job_retry_base_ms: Option<u64>,
    provider_rate_limit_per_minute: Option<u32>,
    max_products_per_job: Option<usize>,
    retention_completed_jobs_days: Option<u32>,
    retention_failed_jobs_days: Option<u32>,
    retention_publish_logs_days: Option<u32>,
    account_deletion_grace_days: Option<u32>,
}

impl Settings {
    /// Loads settings from the optional file and the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(config_file, |name| std::env::var(name).ok())
    }

    /// Loads settings with `env` standing in for the environment (tests pass a map).
    pub fn load_from(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = |name: &'static str| {
            debug_assert!(
                SETTINGS.iter().any(|doc| doc.env == name),
                "{name} is undocumented"
            );
            env(name).filter(|value| !value.trim().is_empty())
        };
        let file_path = config_file
            .map(Path::to_path_buf)
            .or_else(|| env("OPTIMIZER_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                toml::from_str::<FileSettings>(&text).map_err(|err| ConfigError::ParseFile {
                    path: path.clone(),
                    message: err.message().to_owned(),
                })?
            }
            None => FileSettings::default(),
        };
        let defaults = Settings::default();

        let environment = match env("OPTIMIZER_ENV").or(file.environment).as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(invalid("OPTIMIZER_ENV", other, "development or production"))
            }
        };
        let log_format = match env("OPTIMIZER_LOG_FORMAT").or(file.log_format).as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => return Err(invalid("OPTIMIZER_LOG_FORMAT", other, "json or pretty")),
        };
        let wix_app_secret = env("WIX_APP_SECRET")
            .or(file.wix_app_secret)
            .map(Secret::new);
        let wix_public_key = env("WIX_PUBLIC_KEY")
            .or(file.wix_public_key)
            .map(Secret::new);
        let wix_api_base_url = env("WIX_API_BASE_URL")
            .or(file.wix_api_base_url)
            .unwrap_or_else(|| connectors::wix::DEFAULT_BASE_URL.to_owned());
        let wix = env("WIX_APP_ID")
            .or(file.wix_app_id)
            .map(|app_id| WixSettings {
                app_id,
                app_secret: wix_app_secret,
                public_key: wix_public_key,
                api_base_url: wix_api_base_url,
            });
        let mut plans = defaults.plans.clone();
        for plan in file.plans.unwrap_or_default() {
            match plans.iter_mut().find(|existing| existing.id == plan.id) {
                Some(existing) => *existing = plan,
                None => plans.push(plan),
            }
        }

        let standalone_free_credits = match env("OPTIMIZER_STANDALONE_FREE_CREDITS") {
            Some(text) => Some(
                text.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|credits| *credits >= 0)
                    .ok_or_else(|| {
                        invalid(
                            "OPTIMIZER_STANDALONE_FREE_CREDITS",
                            &text,
                            "a number of credits, 0 or more",
                        )
                    })?,
            ),
            None => file.standalone_free_credits,
        };
        if let Some(credits) = standalone_free_credits {
            if let Some(free) = plans
                .iter_mut()
                .find(|plan| plan.id == domain::plan::FREE_PLAN_ID)
            {
                free.standalone_monthly_credits = Some(credits.max(0));
            }
        }

        let plan_aliases = match env("OPTIMIZER_PLAN_ALIASES") {
            Some(list) => parse_plan_pairs("OPTIMIZER_PLAN_ALIASES", &list, &plans)?,
            None => file.plan_aliases.unwrap_or_default(),
        };
        if let Some((name, plan)) = plan_aliases
            .iter()
            .find(|(_, plan)| !plans.iter().any(|known| &known.id == *plan))
        {
            return Err(invalid(
                "OPTIMIZER_PLAN_ALIASES",
                &format!("{name}={plan}"),
                "a known plan id",
            ));
        }
        let stripe_prices = match env("STRIPE_PRICES") {
            Some(list) => parse_plan_pairs("STRIPE_PRICES", &list, &plans)?,
            None => file.stripe_prices.clone().unwrap_or_default(),
        };
        let stripe = env("STRIPE_SECRET_KEY")
            .or(file.stripe_secret_key)
            .map(|key| StripeSettings {
                secret_key: Secret::new(key),
                webhook_secret: env("STRIPE_WEBHOOK_SECRET")
                    .or(file.stripe_webhook_secret)
                    .map(Secret::new),
                prices: stripe_prices,
                api_base_url: env("STRIPE_API_BASE_URL")
                    .or(file.stripe_api_base_url)
                    .map(|url| url.trim_end_matches('/').to_owned())
                    .unwrap_or_else(|| connectors::stripe::DEFAULT_BASE_URL.to_owned()),
            });
        let job_defaults = JobSettings::default();
        let openai_api_key = env("OPENAI_API_KEY")
            .or(file.openai_api_key)
            .map(Secret::new);
        let provider = match env("OPTIMIZER_AI_PROVIDER").or(file.ai_provider).as_deref() {
            None if openai_api_key.is_some() => AiProviderKind::OpenAi,
            None | Some("rules") => AiProviderKind::Rules,
            Some("openai") if openai_api_key.is_some() => AiProviderKind::OpenAi,
            Some("openai") => {
                return Err(invalid(
                    "OPTIMIZER_AI_PROVIDER",
                    "openai",
                    "openai needs OPENAI_API_KEY",
                ))
            }
            Some(other) => return Err(invalid("OPTIMIZER_AI_PROVIDER", other, "rules or openai")),
        };
        let jobs = JobSettings {
            provider,
            openai_api_key,
            openai_base_url: env("OPENAI_BASE_URL")
                .or(file.openai_base_url)
                .map(|url| url.trim_end_matches('/').to_owned())
                .unwrap_or(job_defaults.openai_base_url),
            openai_model: env("OPENAI_MODEL")
                .or(file.openai_model)
                .unwrap_or(job_defaults.openai_model),
            concurrency: parse_or(
                "OPTIMIZER_JOB_CONCURRENCY",
                env("OPTIMIZER_JOB_CONCURRENCY"),
                file.job_concurrency,
                job_defaults.concurrency,
            )?
            .max(1),
            batch_size: parse_or(
                "OPTIMIZER_JOB_BATCH_SIZE",
                env("OPTIMIZER_JOB_BATCH_SIZE"),
                file.job_batch_size,
                job_defaults.batch_size,
            )?
            .max(1),
            lease_secs: parse_or(
                "OPTIMIZER_JOB_LEASE_SECS",
                env("OPTIMIZER_JOB_LEASE_SECS"),
                file.job_lease_secs,
                job_defaults.lease_secs,
            )?
            .max(3),
            max_attempts: parse_or(
                "OPTIMIZER_JOB_MAX_ATTEMPTS",
                env("OPTIMIZER_JOB_MAX_ATTEMPTS"),
                file.job_max_attempts,
                job_defaults.max_attempts,
            )?
            .max(1),
            retry_base_ms: parse_or(
                "OPTIMIZER_JOB_RETRY_BASE_MS",
                env("OPTIMIZER_JOB_RETRY_BASE_MS"),
                file.job_retry_base_ms,
                job_defaults.retry_base_ms,
            )?
            .max(1),
            provider_rate_limit_per_minute: parse_or(
                "OPTIMIZER_PROVIDER_RATE_LIMIT_PER_MINUTE",
                env("OPTIMIZER_PROVIDER_RATE_LIMIT_PER_MINUTE"),
                file.provider_rate_limit_per_minute,
                job_defaults.provider_rate_limit_per_minute,
            )?,
            max_products_per_job: parse_or(
                "OPTIMIZER_MAX_PRODUCTS_PER_JOB",
                env("OPTIMIZER_MAX_PRODUCTS_PER_JOB"),
                file.max_products_per_job,
                job_defaults.max_products_per_job,
            )?
            .max(1),
        };

        let retention_defaults = RetentionSettings::default();
        let retention = RetentionSettings {
            completed_jobs_days: parse_or(
                "OPTIMIZER_RETENTION_COMPLETED_JOBS_DAYS",
                env("OPTIMIZER_RETENTION_COMPLETED_JOBS_DAYS"),
                file.retention_completed_jobs_days,
                retention_defaults.completed_jobs_days,
            )?,
            failed_jobs_days: parse_or(
                "OPTIMIZER_RETENTION_FAILED_JOBS_DAYS",
                env("OPTIMIZER_RETENTION_FAILED_JOBS_DAYS"),
                file.retention_failed_jobs_days,
                retention_defaults.failed_jobs_days,
            )?,
            publish_logs_days: parse_or(
                "OPTIMIZER_RETENTION_PUBLISH_LOGS_DAYS",
                env("OPTIMIZER_RETENTION_PUBLISH_LOGS_DAYS"),
                file.retention_publish_logs_days,
                retention_defaults.publish_logs_days,
            )?,
            account_deletion_grace_days: parse_or(
                "OPTIMIZER_ACCOUNT_DELETION_GRACE_DAYS",
                env("OPTIMIZER_ACCOUNT_DELETION_GRACE_DAYS"),
                file.account_deletion_grace_days,
                retention_defaults.account_deletion_grace_days,
            )?,
        };

        let settings = Settings {
            environment,
            host: env("OPTIMIZER_HOST").or(file.host).unwrap_or(defaults.host),
            port: parse_or(
                "OPTIMIZER_PORT",
                env("OPTIMIZER_PORT"),
                file.port,
                defaults.port,
            )?,
            public_url: env("OPTIMIZER_PUBLIC_URL")
                .or(file.public_url)
                .map(|url| url.trim_end_matches('/').to_owned()),
            data_dir: env("OPTIMIZER_DATA_DIR")
                .map(PathBuf::from)
                .or(file.data_dir)
                .unwrap_or(defaults.data_dir),
            database_url: env("DATABASE_URL").or(file.database_url),
            database_max_connections: parse_or(
                "OPTIMIZER_DATABASE_MAX_CONNECTIONS",
                env("OPTIMIZER_DATABASE_MAX_CONNECTIONS"),
                file.database_max_connections,
                defaults.database_max_connections,
            )?,
            web_dir: env("OPTIMIZER_WEB_DIR")
                .map(PathBuf::from)
                .or(file.web_dir)
                .unwrap_or(defaults.web_dir),
            encryption_key: env("OPTIMIZER_ENCRYPTION_KEY")
                .or(file.encryption_key)
                .map(Secret::new),
            previous_encryption_keys: env("OPTIMIZER_PREVIOUS_ENCRYPTION_KEYS")
                .map(|list| split_list(&list))
                .or(file.previous_encryption_keys)
                .unwrap_or_default()
                .into_iter()
                .map(Secret::new)
                .collect(),
            wix,
            stripe,
            woocommerce_allow_http: parse_or(
                "OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP",
                env("OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP"),
                file.woocommerce_allow_http,
                defaults.woocommerce_allow_http,
            )?,
            allow_private_store_addresses: parse_or(
                "OPTIMIZER_ALLOW_PRIVATE_STORE_ADDRESSES",
                env("OPTIMIZER_ALLOW_PRIVATE_STORE_ADDRESSES"),
                file.allow_private_store_addresses,
                defaults.allow_private_store_addresses,
            )?,
            cors_origins: env("OPTIMIZER_CORS_ORIGINS")
                .map(|list| split_list(&list))
                .or(file.cors_origins)
                .unwrap_or_default(),
            max_body_bytes: parse_or(
                "OPTIMIZER_MAX_BODY_BYTES",
                env("OPTIMIZER_MAX_BODY_BYTES"),
                file.max_body_bytes,
                defaults.max_body_bytes,
            )?,
            max_import_bytes: parse_or(
                "OPTIMIZER_MAX_IMPORT_BYTES",
                env("OPTIMIZER_MAX_IMPORT_BYTES"),
                file.max_import_bytes,
                defaults.max_import_bytes,
            )?,
            max_products_per_store: parse_or(
                "OPTIMIZER_MAX_PRODUCTS_PER_STORE",
                env("OPTIMIZER_MAX_PRODUCTS_PER_STORE"),
                file.max_products_per_store,
                defaults.max_products_per_store,
            )?,
            rate_limit_per_minute: parse_or(
                "OPTIMIZER_RATE_LIMIT_PER_MINUTE",
                env("OPTIMIZER_RATE_LIMIT_PER_MINUTE"),
                file.rate_limit_per_minute,
                defaults.rate_limit_per_minute,
            )?,
            login_attempts_per_email: parse_or(
                "OPTIMIZER_LOGIN_ATTEMPTS_PER_EMAIL",
                env("OPTIMIZER_LOGIN_ATTEMPTS_PER_EMAIL"),
                file.login_attempts_per_email,
                defaults.login_attempts_per_email,
            )?,
            login_attempts_per_ip: parse_or(
                "OPTIMIZER_LOGIN_ATTEMPTS_PER_IP",
                env("OPTIMIZER_LOGIN_ATTEMPTS_PER_IP"),
                file.login_attempts_per_ip,
                defaults.login_attempts_per_ip,
            )?,
            registrations_per_ip: parse_or(
                "OPTIMIZER_REGISTRATIONS_PER_IP",
                env("OPTIMIZER_REGISTRATIONS_PER_IP"),
                file.registrations_per_ip,
                defaults.registrations_per_ip,
            )?,
            header_read_timeout_secs: parse_or(
                "OPTIMIZER_HEADER_READ_TIMEOUT_SECS",
                env("OPTIMIZER_HEADER_READ_TIMEOUT_SECS"),
                file.header_read_timeout_secs,
                defaults.header_read_timeout_secs,
            )?
            .max(1),
            request_timeout_secs: parse_or(
                "OPTIMIZER_REQUEST_TIMEOUT_SECS",
                env("OPTIMIZER_REQUEST_TIMEOUT_SECS"),
                file.request_timeout_secs,
                defaults.request_timeout_secs,
            )?
            .max(1),
            max_connections: parse_or(
                "OPTIMIZER_MAX_CONNECTIONS",
                env("OPTIMIZER_MAX_CONNECTIONS"),
                file.max_connections,
                defaults.max_connections,
            )?
            .max(1),
            trust_proxy: parse_or(
                "OPTIMIZER_TRUST_PROXY",
                env("OPTIMIZER_TRUST_PROXY"),
                file.trust_proxy,
                defaults.trust_proxy,
            )?,
            log_format,
            shutdown_timeout_secs: parse_or(
                "OPTIMIZER_SHUTDOWN_TIMEOUT_SECS",
                env("OPTIMIZER_SHUTDOWN_TIMEOUT_SECS"),
                file.shutdown_timeout_secs,
                defaults.shutdown_timeout_secs,
            )?,
            plans,
            plan_aliases,
            jobs,
            retention,
        };
        Ok(settings)
    }

    /// In production every secret must be configured explicitly.
    pub fn check_production_requirements(&self) -> Result<(), ConfigError> {
        if self.environment != Environment::Production {
            return Ok(());
        }
        if self.encryption_key.is_none() {
            return Err(ConfigError::MissingInProduction("OPTIMIZER_ENCRYPTION_KEY"));
        }
        if let Some(wix) = &self.wix {
            if wix.app_secret.is_none() {
                return Err(ConfigError::MissingInProduction(
                    "WIX_APP_SECRET (Wix is enabled)",
                ));
            }
            if wix.public_key.is_none() {
                return Err(ConfigError::MissingInProduction(
                    "WIX_PUBLIC_KEY (Wix is enabled)",
                ));
            }
        }
        if let Some(stripe) = &self.stripe {
            if stripe.webhook_secret.is_none() {
                return Err(ConfigError::MissingInProduction(
                    "STRIPE_WEBHOOK_SECRET (Stripe is enabled)",
                ));
            }
            if stripe.prices.is_empty() {
                return Err(ConfigError::MissingInProduction(
                    "STRIPE_PRICES (Stripe is enabled)",
                ));
            }
        }
        Ok(())
    }

    /// The database to use: the configured URL or the SQLite file in the data folder.
    /// The address merchants and platforms reach this service at, without a trailing `/`.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }

    pub fn resolved_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("optimizer.db").display()))
    }

    /// HSTS is sent only where the service is certainly reached over HTTPS: in production,
    /// with an `https://` public address. A development server on plain HTTP must not make
    /// browsers refuse `http://localhost` for a year.
    pub fn sends_hsts(&self) -> bool {
        self.environment == Environment::Production
            && self
                .public_url
                .as_deref()
                .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://"))
    }

    /// The secret that verifies Wix dashboard instances, if any is configured.
    pub fn wix_app_secret(&self) -> Option<&Secret<String>> {
        self.wix.as_ref().and_then(|wix| wix.app_secret.as_ref())
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        expected,
    }
}

fn parse_or<T: std::str::FromStr>(
    name: &'static str,
    from_env: Option<String>,
    from_file: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match from_env {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| invalid(name, &text, "a value of the documented type")),
        None => Ok(from_file.unwrap_or(default)),
    }
}

/// `name=plan,name=plan` (`OPTIMIZER_PLAN_ALIASES`) or `plan=price,…` (`STRIPE_PRICES`):
/// a map keyed by the left side; the plan side must name a known plan.
fn parse_plan_pairs(
    setting: &'static str,
    list: &str,
    plans: &[Plan],
) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let plan_on_left = setting == "STRIPE_PRICES";
    let mut pairs = std::collections::HashMap::new();
    for pair in split_list(list) {
        let Some((left, right)) = pair.split_once('=') else {
            return Err(invalid(setting, &pair, "name=value pairs"));
        };
        let (left, right) = (left.trim(), right.trim());
        let plan = if plan_on_left { left } else { right };
        if !plans.iter().any(|known| known.id == plan) || left.is_empty() || right.is_empty() {
            return Err(invalid(setting, &pair, "pairs naming a known plan id"));
        }
        pairs.insert(left.to_owned(), right.to_owned());
    }
    Ok(pairs)
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)], file: Option<&Path>) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(file, |name| vars.get(name).cloned())
    }

    #[test]
    fn standalone_free_credits_set_the_free_plan_for_standalone_accounts() {
        let free = |settings: &Settings| {
            settings
                .plans
                .iter()
                .find(|plan| plan.id == domain::plan::FREE_PLAN_ID)
                .cloned()
                .unwrap()
        };
        let default = load(&[], None).unwrap();
        assert_eq!(free(&default).standalone_monthly_credits, None);
        let none = load(&[("OPTIMIZER_STANDALONE_FREE_CREDITS", "0")], None).unwrap();
        let plan = free(&none);
        assert_eq!(plan.credits_for(domain::BillingSource::None), 0);
        assert_eq!(plan.credits_for(domain::BillingSource::Stripe), 0);
        assert_eq!(plan.credits_for(domain::BillingSource::Wix), 200);
        assert!(load(&[("OPTIMIZER_STANDALONE_FREE_CREDITS", "-5")], None).is_err());
        assert!(load(&[("OPTIMIZER_STANDALONE_FREE_CREDITS", "many")], None).is_err());
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let settings = load(&[], None).unwrap();
        assert_eq!(settings.port, 3000);
        assert_eq!(settings.environment, Environment::Development);
        assert_eq!(
            settings.resolved_database_url(),
            "sqlite://./data/optimizer.db"
        );
        assert_eq!(settings.plans.len(), 4);
        assert!(settings.wix.is_none());
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.toml");
        std::fs::write(
            &path,
            "port = 4000\nhost = \"0.0.0.0\"\n[[plans]]\nid = \"starter\"\nname = \"Starter\"\nprice_monthly_cents = 1000\nmonthly_credits = 1200\n",
        )
        .unwrap();
        let settings = load(&[("OPTIMIZER_PORT", "5000")], Some(&path)).unwrap();
        assert_eq!(settings.port, 5000);
        assert_eq!(settings.host, "0.0.0.0");
        let starter = settings.plans.iter().find(|p| p.id == "starter").unwrap();
        assert_eq!(starter.monthly_credits, 1200);
    }

    #[test]
    fn bad_values_and_unknown_file_keys_are_reported() {
        assert!(matches!(
            load(&[("OPTIMIZER_PORT", "eighty")], None),
            Err(ConfigError::Invalid {
                name: "OPTIMIZER_PORT",
                ..
            })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "prot = 1\n").unwrap();
        assert!(matches!(
            load(&[], Some(&path)),
            Err(ConfigError::ParseFile { .. })
        ));
    }

    #[test]
    fn production_refuses_missing_secrets() {
        let prod = load(&[("OPTIMIZER_ENV", "production")], None).unwrap();
        assert!(matches!(
            prod.check_production_requirements(),
            Err(ConfigError::MissingInProduction("OPTIMIZER_ENCRYPTION_KEY"))
        ));
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let wix_without_secret = load(
            &[
                ("OPTIMIZER_ENV", "production"),
                ("OPTIMIZER_ENCRYPTION_KEY", key),
                ("WIX_APP_ID", "app"),
            ],
            None,
        )
        .unwrap();
        assert!(wix_without_secret.check_production_requirements().is_err());
        let complete = load(
            &[
                ("OPTIMIZER_ENV", "production"),
                ("OPTIMIZER_ENCRYPTION_KEY", key),
                ("WIX_APP_ID", "app"),
                ("WIX_APP_SECRET", "s"),
                ("WIX_PUBLIC_KEY", "k"),
            ],
            None,
        )
        .unwrap();
        assert!(complete.check_production_requirements().is_ok());
        assert!(
            !format!("{complete:?}").contains("\"s\""),
            "secrets must not print"
        );
    }

    #[test]
    fn retention_windows_come_from_file_and_environment() {
        assert_eq!(
            load(&[], None).unwrap().retention,
            RetentionSettings::default()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.toml");
        std::fs::write(
            &path,
            "retention_completed_jobs_days = 120\naccount_deletion_grace_days = 0\n",
        )
        .unwrap();
        let settings = load(
            &[
                ("OPTIMIZER_RETENTION_FAILED_JOBS_DAYS", "7"),
                ("OPTIMIZER_RETENTION_PUBLISH_LOGS_DAYS", "730"),
            ],
            Some(&path),
        )
        .unwrap();
        assert_eq!(
            settings.retention,
            RetentionSettings {
                completed_jobs_days: 120,
                failed_jobs_days: 7,
                publish_logs_days: 730,
                account_deletion_grace_days: 0,
            }
        );
        assert!(matches!(
            load(&[("OPTIMIZER_ACCOUNT_DELETION_GRACE_DAYS", "-1")], None),
            Err(ConfigError::Invalid {
                name: "OPTIMIZER_ACCOUNT_DELETION_GRACE_DAYS",
                ..
            })
        ));
    }

    #[test]
    fn readme_documents_every_setting() {
        let readme = include_str!("../../../README.md");
        for doc in SETTINGS {
            let name = if doc.env == "-" { doc.key } else { doc.env };
            assert!(readme.contains(name), "README.md does not document {name}");
        }
    }
}
