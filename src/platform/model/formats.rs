//! The JSON Schema of the time types the model borrows from `jiff`, which
//! `schemars` does not describe: RFC 3339 strings, as `jiff` writes them.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An instant: `2026-11-25T18:00:00Z`.
pub fn timestamp(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// A calendar date (a data timestamp): `2026-11-24`.
pub fn date(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date" })
}
