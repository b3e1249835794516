//! Rollcall's HTTP service and command-line tool.
//!
//! This is the only crate that knows HTTP, JSON request shapes,
//! configuration and pools. [`app`] builds the router the binary serves and
//! the tests drive; [`cli::main`] is the binary.

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod routes;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use domain::{CaseServices, PolicyBook, SchoolCalendar};
use projections::{Database, Store};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub store: Arc<Store>,
    pub calendar: Arc<SchoolCalendar>,
    pub policies: Arc<PolicyBook>,
}

impl AppState {
    pub fn new(db: Database, calendar: SchoolCalendar, policies: PolicyBook) -> Self {
        Self {
            store: Arc::new(Store::new(db.clone())),
            db,
            calendar: Arc::new(calendar),
            policies: Arc::new(policies),
        }
    }

    /// Today's date for the rules (UTC).
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive()
    }

    pub fn services(&self) -> CaseServices {
        CaseServices::new(self.today(), self.calendar.clone(), self.policies.clone())
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Rollcall", description = "Event-sourced case tracking to stop children going missing from education. Errors are application/problem+json with a stable `code` (docs/api.md)."),
    paths(
        routes::health::health, routes::health::ready, routes::health::openapi,
        routes::health::docs_page,
        routes::children::register, routes::children::find_by_upn, routes::children::show,
        routes::children::command, routes::children::history, routes::children::access_log,
        routes::reports::watchlist, routes::reports::destination_changes,
        routes::reports::day_one_no_shows, routes::reports::incoming,
    ),
    components(schemas(error::Problem, domain::ChildCommand, domain::ChildEvent)),
    modifiers(&BearerAuth),
    tags((name = "children"), (name = "reports"), (name = "schools"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Every error body is a problem document: say so in each response.
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                // Any route can refuse a malformed query, path or header.
                if !operation.responses.responses.contains_key("400")
                    && !operation
                        .tags
                        .iter()
                        .flatten()
                        .any(|tag| tag == "operations")
                {
                    let problem = utoipa::openapi::ResponseBuilder::new()
                        .description("A malformed query string, path or header")
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                                .build(),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .insert("400".to_owned(), problem.into());
                }
                for (status, response) in operation.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, utoipa::openapi::RefOr::T(response)) = (is_error, response) {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response
                                .content
                                .insert("application/problem+json".to_owned(), content);
                        }
                    }
                }
            }
        }
    }
}

/// The whole HTTP service.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(routes::health::router())
        .merge(routes::children::router())
        .merge(routes::reports::router())
        .fallback(|| async { error::ApiError::NotFound })
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(wire::BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let path = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", axum::extract::MatchedPath::as_str);
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("");
                // The matched route, never the raw URI: paths and queries can carry UPNs.
                tracing::info_span!("request", method = %request.method(), path, request_id = id, actor = tracing::field::Empty)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
