//! A fake of OpenAI's Chat Completions API (`POST /v1/chat/completions`, streamed as
//! server-sent events with `stream: true`) and models (`GET /v1/models`,
//! `GET /v1/models/{model}`) for tests that drive the real client over HTTP. Protocol facts follow
//! the official SDK, `openai/openai-python@e43b422` (`src/openai/_base_client.py`,
//! `types/shared/response_format_json_schema.py`); sections are those of docs/protocols.md,
//! OpenAI:
//!
//! * Every answer, errors included, carries `x-request-id` and the rate-limit headers
//!   `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, with reset values written as
//!   duration strings such as `120ms` or `6m0s`, not epochs (§3.1).
//! * 429 answers carry `retry-after` (seconds) and/or `retry-after-ms`, as configured, with
//!   `x-ratelimit-remaining-requests: 0` (§3.1), and OpenAI's error body
//!   `{"error": {"message", "type", "param", "code"}}` with `code: "rate_limit_exceeded"`;
//!   a quota 429 has `code: "insufficient_quota"`. 500/503 answers are the transient
//!   failures the SDK retries (§3.2).
//! * `response_format: {type: "json_schema", json_schema: {name, strict, schema}}` is
//!   validated: `name` matches `[a-zA-Z0-9_-]{1,64}`, and with `strict: true` every object
//!   needs `additionalProperties: false` and all its properties in `required` (§3.4). The
//!   error wording is modelled on OpenAI's answers and not byte-exact.
//! * Answers are `chat.completion` objects: `id`, `object`, `created`, `model`,
//!   `choices[{index, message{role, content, refusal}, logprobs, finish_reason}]`,
//!   `usage`. Switches produce a `refusal` (content null) and a `finish_reason` of
//!   `length` with cut-off content (§3.4).
//!
//! What the "model" writes is deterministic and derived from the request, so tests can
//! tell it came from their product: the fake reads the `<product>` JSON block of the last
//! user message (the product data block the client sends; `</` may be written `<\/`, as
//! JSON allows) and answers, in the requested schema (`product_<attribute>`):
//!
//! * `title`: the current value (else the title) with every word capitalised;
//! * `seo_title`: that title, then ` | ` and the brand when there is one;
//! * `seo_description`: `"<title> – <description text>"`, cut to 155 characters at a space;
//! * `description`: `<p>` + the current value's text (tags removed) or the title + `</p>`,
//!   then `<ul><li>Name: values</li>…</ul>` for the attributes;
//! * `info_sections`: the current sections, then a `Details` section listing the
//!   attributes (or the title).
//!
//! Without a `json_schema` response format the content is the plain text of the title.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The key the fake accepts unless told otherwise.
pub const FAKE_API_KEY: &str = "sk-test-ultimate-optimizer-fake-0123456789";

/// The requests-per-minute budget the fake reports.
const LIMIT_REQUESTS: u64 = 500;
/// The tokens-per-minute budget the fake reports.
const LIMIT_TOKENS: u64 = 200_000;

/// What the "model" answers to valid requests, until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// JSON in the requested schema, derived from the request (module docs).
    Normal,
    /// Content that is not JSON at all.
    Malformed,
    /// The value repeated far beyond any field limit (over 70,000 characters).
    OverLong,
    /// The value wrapped in chat: `Here is your title: "…"` (valid JSON around it).
    Preamble,
    /// `message.refusal` set, `content` null.
    Refusal,
    /// `finish_reason: "length"` with the JSON cut off halfway.
    Truncated,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RateLimited {
        retry_after_secs: Option<u64>,
        retry_after_ms: Option<u64>,
    },
    QuotaExceeded,
    ServerError(StatusCode),
}

struct OpenAiState {
    api_key: String,
    faults: VecDeque<Fault>,
    delay: Duration,
    down: bool,
    answer: Answer,
    bodies: Vec<Value>,
    headers: Vec<HeaderMap>,
    served: u64,
}

type Shared = Arc<Mutex<OpenAiState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, OpenAiState> {
    state.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running fake; dropped, it stops.
pub struct FakeOpenAi {
    base_url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOpenAi {
    /// Starts on a random loopback port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts on `port` of the loopback interface (0: any free port).
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(OpenAiState {
            api_key: FAKE_API_KEY.to_owned(),
            faults: VecDeque::new(),
            delay: Duration::ZERO,
            down: false,
            answer: Answer::Normal,
            bodies: Vec::new(),
            headers: Vec::new(),
            served: 0,
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(list_models))
            .route("/v1/models/{*model}", get(retrieve_model))
            .fallback(no_route)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeOpenAi {
            base_url: format!("http://{address}/v1"),
            state,
            server,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the root clients append `/chat/completions` to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The key the fake accepts.
    pub fn api_key(&self) -> String {
        lock(&self.state).api_key.clone()
    }

    /// Accepts `key` instead of [`FAKE_API_KEY`].
    pub fn set_api_key(&self, key: &str) {
        lock(&self.state).api_key = key.to_owned();
    }

    /// The next `n` authenticated requests get 429 `rate_limit_exceeded`, with
    /// `retry-after: secs` and/or `retry-after-ms: ms` when given.
    pub fn rate_limit_next(
        &self,
        n: usize,
        retry_after_secs: Option<u64>,
        retry_after_ms: Option<u64>,
    ) {
        let fault = Fault::RateLimited {
            retry_after_secs,
            retry_after_ms,
        };
        lock(&self.state)
            .faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` authenticated requests get 429 `insufficient_quota` (billing, not
    /// pacing: waiting does not help).
    pub fn quota_exceeded_next(&self, n: usize) {
        lock(&self.state)
            .faults
            .extend(std::iter::repeat_n(Fault::QuotaExceeded, n));
    }

    /// The next `n` authenticated requests fail with `status` (500, 502, 503…) and
    /// OpenAI's server-error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).expect("a status code");
        lock(&self.state)
            .faults
            .extend(std::iter::repeat_n(Fault::ServerError(status), n));
    }

    /// Every request waits this long before it is answered (zero: no wait).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// While down, every request gets 503 before authentication, as from an overloaded
    /// front end.
    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// What valid requests are answered with from now on.
    pub fn set_answer(&self, answer: Answer) {
        lock(&self.state).answer = answer;
    }

    /// The JSON bodies received so far, in order (a body that was not JSON is recorded as
    /// a JSON string of its text).
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).bodies.clone()
    }

    /// Requests received so far, failed ones included.
    pub fn request_count(&self) -> usize {
        lock(&self.state).bodies.len()
    }

    /// A header of the `index`-th request (0-based).
    pub fn request_header(&self, index: usize, name: &str) -> Option<String> {
        lock(&self.state)
            .headers
            .get(index)?
            .get(name)?
            .to_str()
            .ok()
            .map(str::to_owned)
    }
}

/// The rate-limit and request-id headers every answer carries (§3.1).
fn standard_headers(
    served: u64,
    remaining_requests: Option<u64>,
    reset_requests: &str,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let remaining =
        remaining_requests.unwrap_or_else(|| LIMIT_REQUESTS - 1 - (served % LIMIT_REQUESTS));
    let pairs = [
        (
            "x-request-id",
            format!("req_{:032x}", served.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        ),
        ("openai-version", "2020-10-01".to_owned()),
        ("openai-processing-ms", (120 + served % 40).to_string()),
        ("x-ratelimit-limit-requests", LIMIT_REQUESTS.to_string()),
        ("x-ratelimit-limit-tokens", LIMIT_TOKENS.to_string()),
        ("x-ratelimit-remaining-requests", remaining.to_string()),
        (
            "x-ratelimit-remaining-tokens",
            (LIMIT_TOKENS - 350 * (1 + served % 100)).to_string(),
        ),
        ("x-ratelimit-reset-requests", reset_requests.to_owned()),
        ("x-ratelimit-reset-tokens", "105ms".to_owned()),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_str(&value).expect("header"));
    }
    headers
}

fn error_response(
    status: StatusCode,
    headers: HeaderMap,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    (status, headers, Json(body)).into_response()
}

async fn no_route(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        standard_headers(0, None, "120ms"),
        &format!("Invalid URL ({method} {})", uri.path()),
        "invalid_request_error",
        None,
        None,
    )
}

/// `sk-…abcd` as OpenAI echoes a wrong key: the ends kept, the middle starred.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn bad_request(
    headers: HeaderMap,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        headers,
        message,
        "invalid_request_error",
        param,
        code,
    )
}

/// With `strict: true`, why the schema is not allowed (§3.4), if it is not.
fn strict_schema_problem(schema: &Value, context: &str) -> Option<String> {
    let object = schema.as_object()?;
    let is_object = object.get("type").and_then(Value::as_str) == Some("object")
        || object.contains_key("properties");
    if is_object {
        if object.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Some(format!(
                "In context=({context}), 'additionalProperties' is required to be supplied and to be false."
            ));
        }
        let properties = object.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = properties {
            for (key, property) in properties {
                if !required.contains(&key.as_str()) {
                    return Some(format!(
                        "In context=({context}), 'required' is required to be supplied and to be an array including every key in properties. Missing '{key}'."
                    ));
                }
                let inner = format!(
                    "{context}{}'properties', '{key}'",
                    if context.is_empty() { "" } else { ", " }
                );
                if let Some(problem) = strict_schema_problem(property, &inner) {
                    return Some(problem);
                }
            }
        }
    }
    if let Some(items) = object.get("items") {
        let inner = format!(
            "{context}{}'items'",
            if context.is_empty() { "" } else { ", " }
        );
        return strict_schema_problem(items, &inner);
    }
    None
}

fn valid_schema_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The text of a message: a string, or the `text` parts of a content array.
fn message_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The JSON inside `<product>…</product>` of the last user message, or `{}`.
fn product_block(messages: &[Value]) -> Value {
    let Some(user) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return json!({});
    };
    let text = message_text(user);
    let Some(start) = text.find("<product>") else {
        return json!({});
    };
    let after = &text[start + "<product>".len()..];
    let Some(end) = after.find("</product>") else {
        return json!({});
    };
    serde_json::from_str(after[..end].trim()).unwrap_or_else(|_| json!({}))
}

fn capitalize_words(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tags removed, whitespace collapsed: enough to turn a description into a sentence.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut_at_space(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        let extra = if out.is_empty() { 0 } else { 1 };
        if out.chars().count() + extra + word.chars().count() > max {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn attribute_list(product: &Value) -> Vec<String> {
    product["attributes"]
        .as_array()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|a| {
                    let name = a["name"].as_str()?;
                    let values: Vec<&str> = a["values"]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    Some(format!("{name}: {}", values.join(", ")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The "model's" value for `field`, derived from the product block (module docs).
fn derive(field: &str, product: &Value) -> Value {
    let title = product["title"].as_str().unwrap_or_default();
    let current_text = product["current"].as_str().unwrap_or_default();
    let nice_title = capitalize_words(if field == "title" && !current_text.trim().is_empty() {
        current_text
    } else {
        title
    });
    let attributes = attribute_list(product);
    match field {
        "info_sections" => {
            let mut sections: Vec<Value> =
                product["current"].as_array().cloned().unwrap_or_default();
            let html = if attributes.is_empty() {
                format!("<p>{nice_title}</p>")
            } else {
                let items: String = attributes.iter().map(|a| format!("<li>{a}</li>")).collect();
                format!("<ul>{items}</ul>")
            };
            sections.push(json!({"title": "Details", "html": html}));
            json!({"sections": sections})
        }
        "description" => {
            let text = strip_tags(current_text);
            let mut html = format!(
                "<p>{}</p>",
                if text.is_empty() {
                    nice_title.clone()
                } else {
                    text
                }
            );
            if !attributes.is_empty() {
                let items: String = attributes.iter().map(|a| format!("<li>{a}</li>")).collect();
                html.push_str(&format!("<ul>{items}</ul>"));
            }
            json!({"value": html})
        }
        "seo_title" => {
            let value = match product["brand"].as_str() {
                Some(brand) if !brand.is_empty() => format!("{nice_title} | {brand}"),
                _ => nice_title,
            };
            json!({"value": value})
        }
        "seo_description" => {
            let description = product["description"].as_str().unwrap_or_default();
            let value = cut_at_space(&format!("{nice_title} – {}", strip_tags(description)), 155);
            json!({"value": value})
        }
        _ => json!({"value": nice_title}),
    }
}

/// `value` adjusted for an [`Answer`] mode other than `Normal`/`Malformed`/`Refusal`.
fn distort(answer: Answer, field: &str, mut value: Value) -> Value {
    match answer {
        Answer::OverLong => {
            let stretch = |text: &str| {
                let mut long = String::new();
                while long.len() < 70_000 {
                    if !long.is_empty() {
                        long.push(' ');
                    }
                    long.push_str(text);
                }
                long
            };
            if let Some(text) = value["value"].as_str() {
                value["value"] = json!(stretch(text));
            }
            if let Some(sections) = value["sections"].as_array_mut() {
                for section in sections {
                    let html = section["html"].as_str().unwrap_or_default().to_owned();
                    section["html"] = json!(stretch(&html));
                    let title = section["title"].as_str().unwrap_or_default().to_owned();
                    section["title"] = json!(format!("{title} {}", "and more ".repeat(20)));
                }
            }
            value
        }
        Answer::Preamble => {
            if let Some(text) = value["value"].as_str() {
                let label = field.replace('_', " ");
                value["value"] = json!(if field == "description" {
                    format!("Sure! Here is the optimized {label}:\n\n{text}\n\nLet me know if you'd like any changes.")
                } else {
                    format!("Here is your {label}: \"{text}\"")
                });
            }
            if let Some(sections) = value["sections"].as_array_mut() {
                for section in sections {
                    let title = section["title"].as_str().unwrap_or_default().to_owned();
                    section["title"] = json!(format!("Title: \"{title}\""));
                }
            }
            value
        }
        _ => value,
    }
}

/// The Bearer key check every endpoint makes first, with OpenAI's 401 answers.
// Fails with the finished OpenAI answer, as the handlers do.
#[allow(clippy::result_large_err)]
fn authenticate(headers: &HeaderMap, api_key: &str, standard: &HeaderMap) -> Result<(), Response> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(given) = authorization.strip_prefix("Bearer ").map(str::trim) else {
        return Err(error_response(
            StatusCode::UNAUTHORIZED,
            standard.clone(),
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
        ));
    };
    if given != api_key {
        return Err(error_response(
            StatusCode::UNAUTHORIZED,
            standard.clone(),
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask_key(given)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    Ok(())
}

/// The models the fake lists: `(id, created, owned_by)` as OpenAI's `GET /v1/models` shows
/// them.
const MODELS: [(&str, u64, &str); 5] = [
    ("gpt-4o-mini", 1_721_172_741, "system"),
    ("gpt-4o", 1_715_367_049, "system"),
    ("gpt-4.1-mini", 1_744_318_173, "system"),
    ("gpt-4.1", 1_744_316_542, "system"),
    ("gpt-5-mini", 1_754_425_928, "system"),
];

fn model_json((id, created, owned_by): (&str, u64, &str)) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

/// `GET /v1/models`: `{"object": "list", "data": [model…]}`.
async fn list_models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let (served, api_key) = {
        let s = lock(&state);
        (s.served, s.api_key.clone())
    };
    let standard = standard_headers(served, None, "120ms");
    if let Err(refusal) = authenticate(&headers, &api_key, &standard) {
        return refusal;
    }
    let data: Vec<Value> = MODELS.into_iter().map(model_json).collect();
    (
        StatusCode::OK,
        standard,
        Json(json!({"object": "list", "data": data})),
    )
        .into_response()
}

/// `GET /v1/models/{model}`: the model, or OpenAI's 404 `model_not_found`.
async fn retrieve_model(
    State(state): State<Shared>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (served, api_key) = {
        let s = lock(&state);
        (s.served, s.api_key.clone())
    };
    let standard = standard_headers(served, None, "120ms");
    if let Err(refusal) = authenticate(&headers, &api_key, &standard) {
        return refusal;
    }
    match MODELS.into_iter().find(|(id, _, _)| *id == model) {
        Some(found) => (StatusCode::OK, standard, Json(model_json(found))).into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            standard,
            &format!("The model '{model}' does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ),
    }
}

/// A completion as OpenAI streams it with `stream: true` (server-sent events): a first
/// chunk with the assistant role, the content (or refusal) in pieces as `delta`s, a last
/// chunk with an empty delta and the `finish_reason`, then, with
/// `stream_options.include_usage`, a chunk with no choices and the usage (every other chunk
/// carrying `"usage": null`), and `data: [DONE]`.
fn stream_completion(completion: &Value, include_usage: bool, headers: HeaderMap) -> Response {
    let choice = &completion["choices"][0];
    let chunk = |delta: Value, finish_reason: Value| {
        let mut chunk = json!({
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "service_tier": completion["service_tier"],
            "system_fingerprint": completion["system_fingerprint"],
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    let (field, text) = match choice["message"]["content"].as_str() {
        Some(content) => ("content", content),
        None => (
            "refusal",
            choice["message"]["refusal"].as_str().unwrap_or_default(),
        ),
    };
    for piece in text.split_inclusive(' ') {
        chunks.push(chunk(json!({ field: piece }), Value::Null));
    }
    chunks.push(chunk(json!({}), choice["finish_reason"].clone()));
    if include_usage {
        let mut usage = chunk(json!({}), Value::Null);
        usage["choices"] = json!([]);
        usage["usage"] = completion["usage"].clone();
        chunks.push(usage);
    }
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    let mut response = (StatusCode::OK, headers, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

async fn chat_completions(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let (served, delay, down, api_key, answer) = {
        let mut s = lock(&state);
        s.bodies.push(match &parsed {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
        });
        s.headers.push(headers.clone());
        s.served += 1;
        (s.served, s.delay, s.down, s.api_key.clone(), s.answer)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let standard = standard_headers(served, None, "120ms");
    if down {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            standard,
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
            None,
        );
    }
    // Authentication comes first, as on the real API.
    if let Err(refusal) = authenticate(&headers, &api_key, &standard) {
        return refusal;
    }
    let fault = lock(&state).faults.pop_front();
    let model_name = parsed
        .as_ref()
        .ok()
        .and_then(|b| b["model"].as_str())
        .unwrap_or("gpt-4o-mini")
        .to_owned();
    match fault {
        Some(Fault::RateLimited {
            retry_after_secs,
            retry_after_ms,
        }) => {
            let wait = retry_after_ms
                .map(|ms| format!("{ms}ms"))
                .or_else(|| retry_after_secs.map(|s| format!("{s}s")))
                .unwrap_or_else(|| "1s".to_owned());
            let mut headers = standard_headers(served, Some(0), &wait);
            if let Some(secs) = retry_after_secs {
                headers.insert("retry-after", HeaderValue::from(secs));
            }
            if let Some(ms) = retry_after_ms {
                headers.insert("retry-after-ms", HeaderValue::from(ms));
            }
            return error_response(
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                &format!(
                    "Rate limit reached for {model_name} in organization org-fake on requests per min (RPM): Limit {LIMIT_REQUESTS}, Used {LIMIT_REQUESTS}, Requested 1. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more."
                ),
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
        }
        Some(Fault::QuotaExceeded) => {
            return error_response(
                StatusCode::TOO_MANY_REQUESTS,
                standard,
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                None,
                Some("insufficient_quota"),
            );
        }
        Some(Fault::ServerError(status)) => {
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "The server is overloaded or not ready yet."
            } else {
                "The server had an error while processing your request. Sorry about that!"
            };
            return error_response(status, standard, message, "server_error", None, None);
        }
        None => {}
    }
    let Ok(request) = parsed else {
        return bad_request(
            standard,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            None,
            None,
        );
    };
    if !request["model"].is_string() {
        return bad_request(standard, "you must provide a model parameter", None, None);
    }
    let stream = match &request["stream"] {
        Value::Null => false,
        Value::Bool(stream) => *stream,
        other => {
            let kind = match other {
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                _ => "an object",
            };
            return bad_request(
                standard,
                &format!("Invalid type for 'stream': expected a boolean, but got {kind} instead."),
                Some("stream"),
                Some("invalid_type"),
            );
        }
    };
    if !stream && !request["stream_options"].is_null() {
        return bad_request(
            standard,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options"),
            Some("invalid_value"),
        );
    }
    let include_usage = request["stream_options"]["include_usage"] == true;
    let messages = match request["messages"].as_array() {
        None => {
            return bad_request(
                standard,
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            )
        }
        Some(messages) if messages.is_empty() => {
            return bad_request(
                standard,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            )
        }
        Some(messages) => messages.clone(),
    };
    // Which field, from the schema name (`product_<attribute>`) or its properties.
    let format = &request["response_format"];
    let mut field: Option<String> = None;
    if format["type"] == "json_schema" {
        let schema = &format["json_schema"];
        if !schema.is_object() {
            return bad_request(
                standard,
                "Missing required parameter: 'response_format.json_schema'.",
                Some("response_format.json_schema"),
                Some("missing_required_parameter"),
            );
        }
        let Some(name) = schema["name"].as_str() else {
            return bad_request(
                standard,
                "Missing required parameter: 'response_format.json_schema.name'.",
                Some("response_format.json_schema.name"),
                Some("missing_required_parameter"),
            );
        };
        if !valid_schema_name(name) {
            return bad_request(
                standard,
                "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                Some("response_format.json_schema.name"),
                Some("invalid_value"),
            );
        }
        if schema["strict"] == true {
            if let Some(problem) = strict_schema_problem(&schema["schema"], "") {
                return bad_request(
                    standard,
                    &format!("Invalid schema for response_format '{name}': {problem}"),
                    Some("response_format"),
                    None,
                );
            }
        }
        let has_sections = schema["schema"]["properties"].get("sections").is_some();
        field = Some(match name.strip_prefix("product_") {
            Some(attribute) => attribute.to_owned(),
            None if has_sections => "info_sections".to_owned(),
            None => "title".to_owned(),
        });
    }
    let product = product_block(&messages);
    let (content, refusal, finish_reason) = match (answer, &field) {
        (Answer::Refusal, _) => (
            Value::Null,
            json!("I'm sorry, but I can't assist with that request."),
            "stop",
        ),
        (Answer::Malformed, _) => (
            json!("Sure! Here is the optimized content: value = Linen Shirt"),
            Value::Null,
            "stop",
        ),
        (answer, Some(field)) => {
            let value = distort(answer, field, derive(field, &product));
            let text = value.to_string();
            if answer == Answer::Truncated {
                let half: String = text.chars().take(text.chars().count() / 2).collect();
                (json!(half), Value::Null, "length")
            } else {
                (json!(text), Value::Null, "stop")
            }
        }
        (answer, None) => {
            let title = capitalize_words(product["title"].as_str().unwrap_or("Untitled"));
            if answer == Answer::Truncated {
                let half: String = title.chars().take(title.chars().count() / 2).collect();
                (json!(half), Value::Null, "length")
            } else {
                (json!(title), Value::Null, "stop")
            }
        }
    };
    let prompt_text: String = messages.iter().map(message_text).collect();
    let prompt_tokens = tokens(&prompt_text);
    let completion_tokens = tokens(content.as_str().or(refusal.as_str()).unwrap_or_default());
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let completion = json!({
        "id": format!("chatcmpl-fake{served:012}"),
        "object": "chat.completion",
        "created": created,
        "model": model_name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake0001"
    });
    if stream {
        return stream_completion(&completion, include_usage, standard);
    }
    (StatusCode::OK, standard, Json(completion)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(fake: &FakeOpenAi, key: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/chat/completions", fake.base_url()))
            .json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    fn body(name: &str, product: Value) -> Value {
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "rules"},
                {"role": "user", "content": format!("<product>\n{}\n</product>\nGo.", product.to_string().replace("</", "<\\/"))}
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": true, "schema": {
                "type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"], "additionalProperties": false
            }}}
        })
    }

    #[tokio::test]
    async fn answers_derive_from_the_product_block() {
        let fake = FakeOpenAi::start().await;
        assert!(fake.base_url().ends_with("/v1"));
        let product =
            json!({"current": "linen shirt</b>", "title": "linen shirt", "brand": "Acme"});
        let response = post(
            &fake,
            Some(FAKE_API_KEY),
            body("product_seo_title", product),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "500");
        let completion: Value = response.json().await.unwrap();
        assert_eq!(completion["object"], "chat.completion");
        assert_eq!(completion["choices"][0]["finish_reason"], "stop");
        assert_eq!(completion["choices"][0]["message"]["refusal"], Value::Null);
        let content: Value = serde_json::from_str(
            completion["choices"][0]["message"]["content"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(content, json!({"value": "Linen Shirt | Acme"}));
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn bad_keys_and_bad_requests_get_openai_errors() {
        let fake = FakeOpenAi::start().await;
        let response = post(
            &fake,
            Some("sk-wrong-key-12345678"),
            body("product_title", json!({})),
        )
        .await;
        assert_eq!(response.status(), 401);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_api_key");
        assert!(error["error"]["message"].as_str().unwrap().contains("sk-*"));
        assert!(!error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong-key"));
        assert_eq!(
            post(&fake, None, body("product_title", json!({})))
                .await
                .status(),
            401
        );
        let bad_name = post(&fake, Some(FAKE_API_KEY), body("product title!", json!({}))).await;
        assert_eq!(bad_name.status(), 400);
        let mut loose = body("product_title", json!({}));
        loose["response_format"]["json_schema"]["schema"]["additionalProperties"] = json!(true);
        let response = post(&fake, Some(FAKE_API_KEY), loose).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("additionalProperties"));
        let response = post(&fake, Some(FAKE_API_KEY), json!({"messages": []})).await;
        assert_eq!(response.status(), 400);
        let response = post(&fake, Some(FAKE_API_KEY), json!({"model": "m"})).await;
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], "messages");
    }

    #[tokio::test]
    async fn faults_come_in_order_then_answers_resume() {
        let fake = FakeOpenAi::start().await;
        fake.rate_limit_next(1, Some(2), Some(1500));
        fake.fail_next(1, 503);
        let limited = post(
            &fake,
            Some(FAKE_API_KEY),
            body("product_title", json!({"title": "x"})),
        )
        .await;
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "2");
        assert_eq!(limited.headers()["retry-after-ms"], "1500");
        assert_eq!(limited.headers()["x-ratelimit-remaining-requests"], "0");
        let error: Value = limited.json().await.unwrap();
        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
        let down = post(
            &fake,
            Some(FAKE_API_KEY),
            body("product_title", json!({"title": "x"})),
        )
        .await;
        assert_eq!(down.status(), 503);
        let ok = post(
            &fake,
            Some(FAKE_API_KEY),
            body("product_title", json!({"title": "x"})),
        )
        .await;
        assert_eq!(ok.status(), 200);
        fake.set_down(true);
        let down = post(&fake, Some("any"), body("product_title", json!({}))).await;
        assert_eq!(down.status(), 503);
        fake.set_down(false);
        fake.set_answer(Answer::Truncated);
        let cut: Value = post(
            &fake,
            Some(FAKE_API_KEY),
            body("product_title", json!({"title": "linen shirt"})),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(cut["choices"][0]["finish_reason"], "length");
        assert!(serde_json::from_str::<Value>(
            cut["choices"][0]["message"]["content"].as_str().unwrap()
        )
        .is_err());
        assert_eq!(fake.request_count(), 5);
    }

    /// The `data:` payloads of a server-sent event stream.
    fn events(text: &str) -> Vec<String> {
        text.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn streamed_completions_arrive_as_deltas_then_done() {
        let fake = FakeOpenAi::start().await;
        let mut request = body(
            "product_seo_title",
            json!({"title": "linen shirt", "brand": "Acme"}),
        );
        request["stream"] = json!(true);
        request["stream_options"] = json!({"include_usage": true});
        let response = post(&fake, Some(FAKE_API_KEY), request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let events = events(&response.text().await.unwrap());
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|event| serde_json::from_str(event).unwrap())
            .collect();
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, r#"{"value":"Linen Shirt | Acme"}"#);
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert_eq!(finish["usage"], Value::Null);
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);

        let mut wrong = body("product_title", json!({"title": "x"}));
        wrong["stream"] = json!("yes");
        let refused = post(&fake, Some(FAKE_API_KEY), wrong).await;
        assert_eq!(refused.status(), 400);
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["param"], "stream");
        let mut options_alone = body("product_title", json!({"title": "x"}));
        options_alone["stream_options"] = json!({"include_usage": true});
        let refused = post(&fake, Some(FAKE_API_KEY), options_alone).await;
        assert_eq!(refused.status(), 400);
    }

    #[tokio::test]
    async fn models_are_listed_and_retrieved() {
        let fake = FakeOpenAi::start().await;
        let http = reqwest::Client::new();
        let get = |path: &str| {
            http.get(format!("{}{path}", fake.base_url()))
                .bearer_auth(FAKE_API_KEY)
                .send()
        };
        let list: Value = get("/models").await.unwrap().json().await.unwrap();
        assert_eq!(list["object"], "list");
        assert!(list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|model| model["id"] == "gpt-4o-mini" && model["object"] == "model"));
        let one = get("/models/gpt-4o-mini").await.unwrap();
        assert_eq!(one.status(), 200);
        assert_eq!(one.json::<Value>().await.unwrap()["owned_by"], "system");
        let missing = get("/models/gpt-nope").await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.json::<Value>().await.unwrap()["error"]["code"],
            "model_not_found"
        );
        let anonymous = http
            .get(format!("{}/models", fake.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }
}
