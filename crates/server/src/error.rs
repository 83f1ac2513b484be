//! The API's one error type and its one mapping to HTTP. Every error answer has the shape
//! `{"error": {"code": "…", "message": "…", "details": …}}`; `code` is stable and
//! machine-readable, `message` is for people. Server-side failures are logged with their
//! cause and answered with a generic 500 that leaks nothing.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use domain::FieldErrors;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use storage::StorageError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{0}")]
    InvalidCsv(String),
    #[error("request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("the request took longer than {limit_secs} s")]
    RequestTimeout { limit_secs: u64 },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// A well-formed request the service cannot carry out as asked (e.g. a translation
    /// the provider cannot write).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("this needs {required} credits but {remaining} remain")]
    InsufficientCredits { required: i64, remaining: i64 },
    /// An import that would take a store past `OPTIMIZER_MAX_PRODUCTS_PER_STORE`.
    #[error("the store would hold {total} products; at most {max} are allowed per store (OPTIMIZER_MAX_PRODUCTS_PER_STORE)")]
    TooManyProducts { total: u64, max: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route for this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The store platform failed or refused; its own code and message are passed on.
    #[error("the store answered with an error: {0}")]
    Store(connectors::http::ConnectorError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The documented error envelope (for the OpenAPI document).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `invalid_token`.
    pub code: String,
    pub message: String,
    /// Extra structured information, e.g. `{"fields": {"email": "…"}}`; `null` if none.
    #[schema(value_type = Object, nullable)]
    pub details: Value,
}

impl ApiError {
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), message.into());
        ApiError::Validation(fields)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidJson(_) | ApiError::InvalidCsv(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BadRequest { .. } | ApiError::TooManyProducts { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::InsufficientCredits { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(connectors::http::ConnectorError::Conflict { .. }) => {
                StatusCode::CONFLICT
            }
            ApiError::Store(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidCsv(_) => "invalid_csv",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::Unauthorized { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::BadRequest { code, .. } => code,
            ApiError::InsufficientCredits { .. } => "insufficient_credits",
            ApiError::TooManyProducts { .. } => "too_many_products",
            ApiError::NotFound(_) => "not_found",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Store(_) => "store_error",
            ApiError::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Validation(fields) => json!({ "fields": fields }),
            ApiError::PayloadTooLarge { limit } => json!({ "limitBytes": limit }),
            ApiError::RequestTimeout { limit_secs } => json!({ "limitSeconds": limit_secs }),
            ApiError::InsufficientCredits {
                required,
                remaining,
            } => json!({ "required": required, "remaining": remaining }),
            ApiError::RateLimited { retry_after_secs } => {
                json!({ "retryAfterSeconds": retry_after_secs })
            }
            ApiError::TooManyProducts { total, max } => {
                json!({ "total": total, "maxProductsPerStore": max })
            }
            ApiError::Store(err) => {
                use connectors::http::ConnectorError as E;
                match err {
                    E::Unauthorized { code, message } => {
                        json!({ "platformStatus": 401, "platformCode": code, "platformMessage": message })
                    }
                    E::Platform {
                        status,
                        code,
                        message,
                    } => {
                        json!({ "platformStatus": status, "platformCode": code, "platformMessage": message })
                    }
                    E::Conflict {
                        code,
                        message,
                        current_revision,
                    } => {
                        json!({ "platformStatus": 409, "platformCode": code, "platformMessage": message, "currentRevision": current_revision })
                    }
                    other => json!({ "platformMessage": other.to_string() }),
                }
            }
            _ => Value::Null,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound { entity } => ApiError::NotFound(entity),
            StorageError::StoreExists => ApiError::Conflict {
                code: "store_exists",
                message: "this store is already connected".into(),
            },
            StorageError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists".into(),
            },
            StorageError::InsufficientCredits {
                required,
                remaining,
            } => ApiError::InsufficientCredits {
                required,
                remaining,
            },
            StorageError::EmptySelection => ApiError::BadRequest {
                code: "empty_selection",
                message: "the selected collections contain no products".into(),
            },
            err @ StorageError::SelectionTooLarge { .. } => ApiError::BadRequest {
                code: "selection_too_large",
                message: err.to_string(),
            },
            StorageError::InvalidState(message) => ApiError::Conflict {
                code: "invalid_state",
                message,
            },
            StorageError::InvalidText { field, problem } => {
                ApiError::field(&field, problem.to_string())
            }
            StorageError::TooManyProducts { total, max } => {
                ApiError::TooManyProducts { total, max }
            }
            err if err.is_missing_reference() => ApiError::Conflict {
                code: "reference_gone",
                message: "a record this request refers to no longer exists".into(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<billing::BillingError> for ApiError {
    fn from(err: billing::BillingError) -> Self {
        use billing::BillingError as E;
        match err {
            E::Storage(err) => err.into(),
            E::Connector(err) => ApiError::Store(err),
            err @ E::NotConfigured(_) => ApiError::BadRequest {
                code: "billing_not_configured",
                message: err.to_string(),
            },
            E::NotApplicable(message) => ApiError::BadRequest {
                code: "not_applicable",
                message,
            },
            err @ E::UnknownPlan(_) => ApiError::field("plan", err.to_string()),
            err @ (E::Config(_) | E::Event(_)) => ApiError::Internal(err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error.cause = %cause, "request failed");
                "something went wrong on our side; it has been logged".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "service unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = json!({
            "error": { "code": self.code(), "message": message, "details": self.details() }
        });
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        if matches!(
            self,
            ApiError::PayloadTooLarge { .. } | ApiError::RequestTimeout { .. }
        ) {
            // Part of the body may still be on its way: the connection cannot carry another
            // request, and a client that knows it will not reuse it.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, WixInstance"),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Reads a raw body of at most `limit` bytes, for routes whose limit is not the JSON one
/// (a catalog CSV) or that check what they can before reading (webhooks). A declared
/// length above the limit is refused before anything is kept.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(refuse_too_large(body, limit).await);
    }
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BadRequest {
            code: "body_unreadable",
            message: "the request body could not be read to its end".into(),
        })?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                return Err(refuse_too_large(body, limit).await);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// What a refused upload may still send, and for how long, before the connection is
/// closed on it: reading (and dropping) that much lets an ordinary client receive the 413
/// instead of a reset, without keeping anything in memory.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

async fn refuse_too_large(mut body: axum::body::Body, limit: usize) -> ApiError {
    use http_body_util::BodyExt;
    let drain = async {
        let mut drained = 0;
        while let Some(Ok(frame)) = body.frame().await {
            drained += frame.data_ref().map_or(0, |data| data.len());
            if drained > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    ApiError::PayloadTooLarge { limit }
}

/// A JSON request body whose every failure is an [`ApiError`]: wrong content type (415),
/// too large (413), not JSON (400 `invalid_json`), or the wrong shape (400
/// `validation_failed` naming the field, e.g. `{"fields": {"email": "invalid type…"}}`).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    crate::AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = crate::AppState::from_ref(state).settings.max_body_bytes;
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(inner)
                    if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::PayloadTooLarge { limit }
                }
                other => ApiError::InvalidJson(other.body_text()),
            })?;
        if bytes.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Whether the request says its body is JSON (`application/json` or `…+json`).
pub(crate) fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
}

/// Parses a JSON body; a value of the wrong shape is a 400 naming the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul_in_json(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                let message = strip_position(&inner.to_string());
                ApiError::field(&field, message)
            }
            _ => ApiError::InvalidJson(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::InvalidJson(err.to_string()))?;
    Ok(value)
}

/// Refuses a JSON body with a NUL character in any string, naming the first one's field
/// (`userPrompt`, `items[2].name`) the way shape errors do. JSON can carry a NUL only
/// escaped (`\u0000`; a raw one is a syntax error), so bodies without that escape are
/// not walked. No text with a NUL reaches storage: PostgreSQL cannot store it.
pub(crate) fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    const ESCAPED_NUL: &[u8] = b"\\u0000";
    if !bytes
        .windows(ESCAPED_NUL.len())
        .any(|window| window == ESCAPED_NUL)
    {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        // Not JSON: the parser that follows says so.
        return Ok(());
    };
    match nul_field(&value, String::new()) {
        Some(field) => Err(ApiError::field(
            if field.is_empty() { "body" } else { &field },
            domain::TextProblem::Nul.to_string(),
        )),
        None => Ok(()),
    }
}

/// The path of the first string (or object key) in `value` holding a NUL.
fn nul_field(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_field(item, format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(path)
            } else {
                nul_field(item, path)
            }
        }),
        _ => None,
    }
}

/// serde's messages end in " at line 1 column 7"; the field name says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// A path parameter; a value that does not parse (e.g. not a UUID) names nothing that
/// exists, so it is a 404 like any unknown id. A value with a NUL character is a 400
/// naming the parameter, as everywhere.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
                return Err(ApiError::field(name, domain::TextProblem::Nul.to_string()));
            }
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// Query-string parameters; a malformed one, or one with a NUL character, is a 400 naming
/// the parameter. A parameter with an empty value (`?cursor=`, as a form sends an empty
/// field) is the same as an absent one; the OpenAPI document says so with `allowEmptyValue`.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            let name = if name.contains('\0') {
                "query".to_owned()
            } else {
                name.into_owned()
            };
            return Err(ApiError::field(&name, domain::TextProblem::Nul.to_string()));
        }
        let present = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes()).filter(|(_, value)| !value.is_empty()),
            )
            .finish();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(present.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                let field = if field == "." {
                    "query".to_owned()
                } else {
                    field
                };
                ApiError::field(&field, err.into_inner().to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn shape_errors_name_the_field() {
        match parse_json::<Login>(br#"{"email": 5, "password": "x"}"#) {
            Err(ApiError::Validation(fields)) => {
                assert!(fields["email"].contains("invalid type"), "{fields:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse_json::<Login>(br#"{"email": "a@b.co"}"#) {
            Err(ApiError::Validation(fields)) => {
                assert!(
                    fields["body"].contains("missing field `password`"),
                    "{fields:?}"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        assert!(matches!(
            parse_json::<Login>(b"{\"email\": "),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<Login>(b"not json"),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<Login>(br#"{"email":"a","password":"b"} trailing"#),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
