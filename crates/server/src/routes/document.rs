//! What the OpenAPI document says about many operations at once, stated here once instead of
//! on every handler, so it cannot drift from the extractors that cause it:
//! - an operation that needs a login ([`crate::auth::Authenticated`]) can answer 401 (no,
//!   malformed, expired or revoked credential) and 429 (the per-account rate limit);
//! - an operation with a request body can answer 413; one whose body is JSON read by
//!   [`crate::error::ApiJson`] also 400 (not JSON, or not the shape) and 415;
//! - an operation with a path id answers 404 for an id that does not exist in the account
//!   (an id that is not a UUID names nothing, so it is a 404 too, see [`crate::error::ApiPath`]);
//! - an operation with query parameters answers 400 for one that is malformed or out of range;
//! - every operation but the event stream answers 408 past the request timeout;
//! - no text contains a NUL character;
//! - the links from an operation that creates or lists a resource to the operations that
//!   read and act on it, so a client (or a stateful API fuzzer) can chain them.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, ParameterStyle, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayItems, KnownFormat, SchemaFormat, SchemaType};
use utoipa::openapi::Required;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, Schema, Type};
use utoipa::Modify;

/// Tag of the operations the store platforms and billing systems call: they read their raw
/// body and verify its signature, so they neither check the content type nor answer 415.
const RAW_BODY_TAG: &str = "webhooks";

/// Adds the responses every operation of a kind can give; an operation's own description of
/// the same status is kept.
pub struct CrossCuttingResponses;

impl Modify for CrossCuttingResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|requirements| !requirements.is_empty());
                if secured {
                    add_error(
                        operation,
                        "401",
                        "Not signed in: the credential is missing, malformed, expired or revoked",
                    );
                    add_rate_limited(operation);
                }
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                if parameters
                    .iter()
                    .any(|parameter| parameter.parameter_in == ParameterIn::Path)
                {
                    add_error(
                        operation,
                        "404",
                        "Not found in this account (an id that is not a UUID names nothing either)",
                    );
                }
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in == ParameterIn::Query {
                        describe_query_parameter(parameter);
                    }
                }
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                if parameters
                    .iter()
                    .any(|parameter| parameter.parameter_in == ParameterIn::Query)
                {
                    add_error(
                        operation,
                        "400",
                        "A query parameter is malformed or out of range (`details.fields` names it)",
                    );
                }
                name_retry_after(operation);
                if !is_event_stream(operation) {
                    add_error(
                        operation,
                        "408",
                        "The request, its body included, took longer than the request timeout",
                    );
                }
                if operation.request_body.is_some() {
                    add_error(
                        operation,
                        "413",
                        "The body is larger than the limit (`details.limitBytes`)",
                    );
                    let raw = operation
                        .tags
                        .as_ref()
                        .is_some_and(|tags| tags.iter().any(|tag| tag == RAW_BODY_TAG));
                    let json = operation.request_body.as_ref().is_some_and(|body| {
                        body.content.keys().any(|mime| mime == "application/json")
                    });
                    if json && !raw {
                        add_error(
                            operation,
                            "400",
                            "The body is not JSON, or not the shape described (`details.fields` names the field)",
                        );
                        add_error(
                            operation,
                            "415",
                            "The body's Content-Type is not application/json",
                        );
                    }
                }
            }
        }
    }
}

/// Whether the operation answers an event stream, which the request timeout leaves alone.
fn is_event_stream(operation: &Operation) -> bool {
    operation
        .responses
        .responses
        .values()
        .any(|response| match response {
            RefOr::T(response) => response.content.contains_key("text/event-stream"),
            RefOr::Ref(_) => false,
        })
}

/// How [`crate::error::ApiQuery`] reads a query parameter: empty is absent
/// (`allowEmptyValue`), and a list is one comma-separated value (`status=pending,running`).
fn describe_query_parameter(parameter: &mut Parameter) {
    if parameter.required == Required::False {
        // utoipa has no field for `allowEmptyValue`; extensions are flattened into the
        // parameter object.
        parameter
            .extensions
            .get_or_insert_with(Default::default)
            .insert("allowEmptyValue".to_owned(), true.into());
    }
    let is_list = match &parameter.schema {
        Some(RefOr::T(Schema::Array(_))) => true,
        Some(RefOr::T(Schema::OneOf(one_of))) => one_of
            .items
            .iter()
            .any(|item| matches!(item, RefOr::T(Schema::Array(_)))),
        _ => false,
    };
    if is_list {
        parameter.style = Some(ParameterStyle::Form);
        parameter.explode = Some(false);
    }
}

/// No text the API takes or gives contains a NUL character (U+0000): the extractors refuse
/// one with 400 naming the field, and PostgreSQL could not store it. Every JSON string and
/// query parameter without a pattern of its own, a format or an enum says so with
/// [`NO_NUL`]; the patterns written on fields exclude it already. (A NUL in a property the
/// API does not read is refused too, which the document's description states.) Raw bodies
/// (a catalog CSV, a webhook) are not JSON and keep their own rules.
pub struct NoNulText;

/// Any text without a NUL character.
pub const NO_NUL: &str = "^[^\\u0000]*$";

impl Modify for NoNulText {
    fn modify(&self, openapi: &mut OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            for schema in components.schemas.values_mut() {
                refuse_nul(schema);
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter.schema.as_mut() {
                        refuse_nul(schema);
                    }
                }
            }
        }
    }
}

fn refuse_nul(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            let is_text = match &object.schema_type {
                SchemaType::Type(kind) => *kind == Type::String,
                SchemaType::Array(kinds) => kinds.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            // A format such as `uuid` or `email` leaves no room for a NUL; `password` does.
            let any_text = match &object.format {
                None | Some(SchemaFormat::KnownFormat(KnownFormat::Password)) => true,
                Some(SchemaFormat::Custom(name)) => name == "password",
                Some(_) => false,
            };
            if is_text && any_text && object.pattern.is_none() && object.enum_values.is_none() {
                object.pattern = Some(NO_NUL.to_owned());
            }
            for property in object.properties.values_mut() {
                refuse_nul(property);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                refuse_nul(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(refuse_nul),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(refuse_nul),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(refuse_nul),
        _ => {}
    }
}

/// One link: from the `status` answer of `from`, to `to`, with `parameters` taken from the
/// answer (runtime expressions such as `$response.body#/id`).
struct LinkRule {
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const STORE_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const FIRST_STORE_ID: &[(&str, &str)] = &[("id", "$response.body#/stores/0/id")];
const JOB_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

const LINKS: &[LinkRule] = &[
    // A created store: read, change, sync, import into, export, browse, delete.
    LinkRule {
        from: "create_store",
        status: "201",
        name: "GetStore",
        to: "get_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "UpdateStore",
        to: "update_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "ImportCatalog",
        to: "import_catalog",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "ExportCatalog",
        to: "export_catalog",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "SyncStatus",
        to: "sync_status",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "SyncHistory",
        to: "sync_history",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "ListProducts",
        to: "list_products",
        parameters: &[("storeId", "$response.body#/id")],
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "ListCollections",
        to: "list_collections",
        parameters: &[("storeId", "$response.body#/id")],
    },
    LinkRule {
        from: "create_store",
        status: "201",
        name: "DeleteStore",
        to: "delete_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "get_store",
        status: "200",
        name: "UpdateStore",
        to: "update_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "get_store",
        status: "200",
        name: "DeleteStore",
        to: "delete_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "update_store",
        status: "200",
        name: "GetStore",
        to: "get_store",
        parameters: STORE_ID,
    },
    LinkRule {
        from: "list_stores",
        status: "200",
        name: "GetStore",
        to: "get_store",
        parameters: FIRST_STORE_ID,
    },
    LinkRule {
        from: "list_stores",
        status: "200",
        name: "SyncStatus",
        to: "sync_status",
        parameters: FIRST_STORE_ID,
    },
    LinkRule {
        from: "list_stores",
        status: "200",
        name: "ExportCatalog",
        to: "export_catalog",
        parameters: FIRST_STORE_ID,
    },
    // A queued sync: follow it.
    LinkRule {
        from: "sync_store",
        status: "202",
        name: "GetSyncRequest",
        to: "get_sync_request",
        parameters: &[
            ("id", "$response.body#/storeId"),
            ("requestId", "$response.body#/id"),
        ],
    },
    // Products and collections: read one, optimize it.
    LinkRule {
        from: "list_products",
        status: "200",
        name: "GetProduct",
        to: "get_product",
        parameters: &[("id", "$response.body#/items/0/id")],
    },
    LinkRule {
        from: "get_product",
        status: "200",
        name: "GetStore",
        to: "get_store",
        parameters: &[("id", "$response.body#/storeId")],
    },
    LinkRule {
        from: "list_products",
        status: "200",
        name: "OptimizeProduct",
        to: "create_job",
        parameters: &[],
    },
    LinkRule {
        from: "list_collections",
        status: "200",
        name: "OptimizeCollection",
        to: "create_job",
        parameters: &[],
    },
    // A created job: read it, its items, cancel it, retry it.
    LinkRule {
        from: "create_job",
        status: "201",
        name: "GetJob",
        to: "get_job",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "create_job",
        status: "201",
        name: "ListJobItems",
        to: "list_job_items",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "create_job",
        status: "201",
        name: "CancelJob",
        to: "cancel_job",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "create_job",
        status: "201",
        name: "RetryJob",
        to: "retry_job",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "get_job",
        status: "200",
        name: "ListJobItems",
        to: "list_job_items",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "cancel_job",
        status: "200",
        name: "GetJob",
        to: "get_job",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "retry_job",
        status: "200",
        name: "GetJob",
        to: "get_job",
        parameters: JOB_ID,
    },
    LinkRule {
        from: "list_jobs",
        status: "200",
        name: "GetJob",
        to: "get_job",
        parameters: &[("id", "$response.body#/items/0/id")],
    },
    // A job's items: publish them, revert them.
    LinkRule {
        from: "list_job_items",
        status: "200",
        name: "Publish",
        to: "publish",
        parameters: &[],
    },
    LinkRule {
        from: "list_job_items",
        status: "200",
        name: "Revert",
        to: "revert",
        parameters: &[],
    },
    // A session: refresh it.
    LinkRule {
        from: "register",
        status: "201",
        name: "Refresh",
        to: "refresh",
        parameters: &[],
    },
    LinkRule {
        from: "login",
        status: "200",
        name: "Refresh",
        to: "refresh",
        parameters: &[],
    },
    LinkRule {
        from: "refresh",
        status: "200",
        name: "Refresh",
        to: "refresh",
        parameters: &[],
    },
];

/// The request body a link passes, when it passes one.
fn link_body(rule: &LinkRule) -> Option<serde_json::Value> {
    use serde_json::json;
    let first = "$response.body#/items/0/id";
    match (rule.from, rule.to) {
        (_, "refresh") => Some(json!({ "refreshToken": "$response.body#/refreshToken" })),
        ("list_products", "create_job") => Some(json!({
            "sourceScope": "products",
            "sourceIds": [first],
            "storeId": "$response.body#/items/0/storeId",
            "attributes": ["title"],
        })),
        ("list_collections", "create_job") => Some(json!({
            "sourceScope": "collections",
            "sourceIds": [first],
            "storeId": "$response.body#/items/0/storeId",
            "attributes": ["description"],
        })),
        (_, "publish" | "revert") => Some(json!({ "itemIds": [first] })),
        _ => None,
    }
}

/// Adds [`LINKS`] to the answers they start from.
pub struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let Some(id) = operation.operation_id.clone() else {
                    continue;
                };
                for rule in LINKS.iter().filter(|rule| rule.from == id) {
                    let Some(RefOr::T(response)) =
                        operation.responses.responses.get_mut(rule.status)
                    else {
                        continue;
                    };
                    let parameters: serde_json::Map<String, serde_json::Value> = rule
                        .parameters
                        .iter()
                        .map(|(name, expression)| ((*name).to_owned(), (*expression).into()))
                        .collect();
                    let mut link = serde_json::json!({ "operationId": rule.to });
                    if !parameters.is_empty() {
                        link["parameters"] = parameters.into();
                    }
                    if let Some(body) = link_body(rule) {
                        link["requestBody"] = body;
                        // The body is the whole request, not a part to mix with made-up
                        // fields (an extension Schemathesis reads; other readers ignore it).
                        link["x-schemathesis"] = serde_json::json!({ "merge_body": false });
                    }
                    // utoipa's `Link` serializes its fields in snake case (`operation_id`),
                    // which no OpenAPI reader understands; the links are written as JSON
                    // through the response's extensions, which are flattened into it.
                    let extensions = response.extensions.get_or_insert_with(Default::default);
                    let links = extensions
                        .entry("links".to_owned())
                        .or_insert_with(|| serde_json::json!({}));
                    links[rule.name] = link;
                }
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn add_error(operation: &mut Operation, status: &str, description: &str) {
    add(operation, status, error_response(description).build());
}

/// Adds the 429 of the per-account limit; every 429 (the login limits' too) names its
/// `Retry-After` header.
fn add_rate_limited(operation: &mut Operation) {
    add(
        operation,
        "429",
        error_response("Too many requests for this account; retry after `Retry-After` seconds")
            .build(),
    );
}

fn name_retry_after(operation: &mut Operation) {
    let Some(RefOr::T(response)) = operation.responses.responses.get_mut("429") else {
        return;
    };
    let retry_after = HeaderBuilder::new()
        .schema(Schema::Object(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build(),
        ))
        .description(Some("Seconds to wait before the next request"))
        .build();
    response
        .headers
        .entry("Retry-After".to_owned())
        .or_insert(retry_after);
}

fn add(operation: &mut Operation, status: &str, response: Response) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert(RefOr::T(response));
}
