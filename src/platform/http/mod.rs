//! The platform over HTTP: the REST API that `runbook sim serve` serves
//! from the simulator, and the `http` platform that is its client.
//!
//! `endpoints` is the one list of operations both sides and the OpenAPI
//! document (`schemas/platform-api.yaml`) are built from; `wire` holds the
//! request and response bodies that are not model types.

pub mod client;
mod client_ops;
pub mod config;
pub mod endpoints;
pub mod openapi;
mod routes;
pub mod server;
pub mod token;
pub mod wire;

pub use client::{HttpPlatform, HttpSettings};
pub use server::{ServeOptions, Server};
pub use token::Token;
