//! Liveness, readiness, the OpenAPI document and the browsable API page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use projections::projector::ProjectionStatus;
use serde::Serialize;
use utoipa::OpenApi;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/docs", get(docs_page))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, or `not_ready` when the database does not answer or a projection stopped.
    pub status: &'static str,
    pub database: &'static str,
    pub projections: Vec<ProjectionStatus>,
}

/// The database answers; each projection's position and lag.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Response {
    let database = state.db.ping().await;
    let projections = match &database {
        Ok(()) => projections::projector::status(&state.db)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let stopped = projections
        .iter()
        .any(|projection| projection.error.is_some());
    let ok = database.is_ok() && !stopped;
    let body = Readiness {
        status: if ok { "ready" } else { "not_ready" },
        database: if database.is_ok() {
            "ok"
        } else {
            "unreachable"
        },
        projections,
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}

/// A small self-contained page listing every operation in the OpenAPI
/// document; no third-party scripts, so it works on a closed network.
#[utoipa::path(get, path = "/api/v1/docs", tag = "operations",
    responses((status = 200, description = "The browsable API page", content_type = "text/html", body = String)))]
async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs_page.html"))
}
