//! The OpenAPI 3.1 document of the platform API, generated from
//! [`Op::ALL`](super::endpoints::Op) and the model types' JSON Schemas.
//!
//! `runbook schema platform-api` prints it; `schemas/platform-api.yaml` is
//! that output, checked in and compared with it by a test so that the
//! document cannot drift from the server and the client.

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoint, In, Method, Op};
use super::wire::ErrorBody;

/// The header that makes a repeated POST answer with the first answer.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The error responses every operation may give, with why.
const ERRORS: [(&str, &str); 6] = [
    (
        "400",
        "The request is malformed: body, path or query parameter.",
    ),
    ("401", "No bearer token, or the wrong one."),
    (
        "404",
        "The named service, pod, task or database does not exist.",
    ),
    (
        "409",
        "A platform rule refuses the operation; retrying will not help.",
    ),
    (
        "422",
        "The operation was tried and did not work; retrying may help.",
    ),
    (
        "503",
        "The platform's state could not be read or written; retry later.",
    ),
];

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    }));
    let error = serde_json::to_value(generator.subschema_for::<ErrorBody>()).unwrap_or_default();
    let mut paths = Map::new();
    for op in Op::ALL {
        let e = op.endpoint();
        let entry = paths
            .entry(e.path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[e.method.as_str()] = operation(&e, &mut generator, &error);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "runbook platform API",
            "version": "1.0.0",
            "description": DESCRIPTION,
        },
        "servers": [{ "url": "http://127.0.0.1:8480", "description": "`runbook sim serve` (default port)" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token `runbook sim serve` prints (or was given).",
                }
            },
            "schemas": schemas,
        },
    })
}

const DESCRIPTION: &str = "Every operation of runbook's `Platform` trait as an endpoint. \
`runbook sim serve` serves it from the simulator; the `http` platform is its client. \
Errors answer with `{kind, message}`: the platform error's kind and message. \
Every POST accepts an `Idempotency-Key` header: a repeated key (within the server's \
recent memory) gets the first answer without the operation being done again, so a \
client can resend after a lost answer. `x-idempotent` tells which operations are \
harmless to repeat even without it.";

fn operation(e: &Endpoint, generator: &mut SchemaGenerator, error: &Value) -> Value {
    let mut parameters: Vec<Value> = e
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": match p.location { In::Path => "path", In::Query => "query" },
                "required": p.location == In::Path,
                "description": p.description,
                "schema": (p.schema)(generator),
            })
        })
        .collect();
    if e.method == Method::Post {
        parameters.push(json!({
            "name": IDEMPOTENCY_KEY,
            "in": "header",
            "required": false,
            "description": "Any unique string per logical request; a repeat gets the first answer.",
            "schema": { "type": "string", "maxLength": 200 },
        }));
    }
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({
            "description": "Done.",
            "content": { "application/json": { "schema": (e.response)(generator) } },
        }),
    );
    for (status, why) in ERRORS {
        responses.insert(
            status.into(),
            json!({
                "description": why,
                "content": { "application/json": { "schema": error } },
            }),
        );
    }
    let mut op = json!({
        "operationId": e.id,
        "summary": e.summary,
        "x-idempotent": e.idempotent,
        "responses": responses,
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(request) = e.request {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": request(generator) } },
        });
    }
    op
}

/// The document as checked in: YAML, in the usual key order (`openapi`
/// first). Words YAML 1.1 readers take for booleans (`on`, `yes`...) are
/// avoided as names, since not every tool reads YAML 1.2.
pub fn to_yaml(document: &Value) -> String {
    #[derive(serde::Serialize)]
    struct Ordered<'a> {
        openapi: &'a Value,
        info: &'a Value,
        servers: &'a Value,
        security: &'a Value,
        paths: &'a Value,
        components: &'a Value,
    }
    let ordered = Ordered {
        openapi: &document["openapi"],
        info: &document["info"],
        servers: &document["servers"],
        security: &document["security"],
        paths: &document["paths"],
        components: &document["components"],
    };
    let body = crate::yaml::to_string(&ordered).unwrap_or_default();
    format!("# Generated by `runbook schema platform-api`; do not edit.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/platform-api.yaml");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == to_yaml(&document()),
            "schemas/platform-api.yaml is out of date with the API; regenerate it with \
             `cargo run -- schema platform-api -o schemas/platform-api.yaml`"
        );
    }

    #[test]
    fn every_operation_is_documented_with_its_bodies_and_errors() {
        let doc = document();
        for op in Op::ALL {
            let e = op.endpoint();
            let entry = &doc["paths"][e.path][e.method.as_str()];
            assert_eq!(entry["operationId"], e.id, "{op:?}");
            for status in ["200", "400", "401", "404", "409", "422", "503"] {
                assert!(entry["responses"][status].is_object(), "{op:?} {status}");
            }
            assert_eq!(
                entry["requestBody"].is_object(),
                e.request.is_some(),
                "{op:?}"
            );
        }
        // Every reference resolves to a component.
        let text = doc.to_string();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
